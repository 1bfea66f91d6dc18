import NeuralEngine
import VisionCore

/// A rectangle of whole source pixels: columns x ..< x + width, rows y ..< y + height.
public struct PixelRegion: Sendable, Hashable {
    public var x: Int
    public var y: Int
    public var width: Int
    public var height: Int

    public init(x: Int, y: Int, width: Int, height: Int) {
        self.x = x
        self.y = y
        self.width = width
        self.height = height
    }
}

/// PyTorch's `F.interpolate(mode="area")`, which facenet-pytorch's `imresample` uses for the pyramid and the
/// crops: adaptive average pooling. Output index i along an axis of n inputs and m outputs averages inputs
/// floor(i * n / m) ..< ceil((i + 1) * n / m) with equal weights (windows overlap or repeat when m does not
/// divide n). Values come out normalised for the networks: (mean - 127.5) * 0.0078125.
///
/// Works from a summed-area table of the bytes, built once per frame: every window sum is exact in Int32
/// (the table wraps past 2^31 on frames above 4K, and wrapping differences still give the exact sums), so
/// each level and crop costs a few lookups per output pixel, and the means equal PyTorch's (whose float sums
/// of whole bytes are exact too) up to its single division by the window area.
public struct AreaResampler: Sendable {
    public let width: Int
    public let height: Int
    /// (height + 1) x (width + 1) x 3 running sums, zero first row and column; gray is repeated.
    private let sums: [Int32]

    public init(_ image: Image) {
        width = image.width
        height = image.height
        let rowLength = (width + 1) * 3
        var sums = [Int32](repeating: 0, count: (height + 1) * rowLength)
        let channels = image.format.channels
        let (width, height) = (width, height)
        image.pixels.withUnsafeBufferPointer { pixels in
            sums.withUnsafeMutableBufferPointer { sums in
                for y in 0..<height {
                    let above = sums.baseAddress! + y * rowLength
                    let row = above + rowLength
                    let source = pixels.baseAddress! + y * width * channels
                    var red: Int32 = 0, green: Int32 = 0, blue: Int32 = 0
                    for x in 0..<width {
                        let pixel = source + x * channels
                        red &+= Int32(pixel[0])
                        green &+= Int32(pixel[channels == 3 ? 1 : 0])
                        blue &+= Int32(pixel[channels == 3 ? 2 : 0])
                        let at = (x + 1) * 3
                        row[at] = above[at] &+ red
                        row[at + 1] = above[at + 1] &+ green
                        row[at + 2] = above[at + 2] &+ blue
                    }
                }
            }
        }
        self.sums = sums
    }

    /// Window bounds along one axis: for output i, inputs start[i] ..< end[i] (PyTorch's start_index and
    /// end_index in integer arithmetic).
    static func windows(input: Int, output: Int) -> (start: [Int], end: [Int]) {
        let start = (0..<output).map { ($0 * input) / output }
        let end = (0..<output).map { (($0 + 1) * input + output - 1) / output }
        return (start, end)
    }

    /// `region` resampled to outputWidth x outputHeight into image `index` of `tensor` ([N, 3, H, W]).
    public func resample(_ region: PixelRegion, into tensor: inout Tensor, index: Int) {
        let (outputHeight, outputWidth) = (tensor.shape[2], tensor.shape[3])
        precondition(tensor.rank == 4 && tensor.shape[1] == 3 && index < tensor.shape[0], "bad target \(tensor.shape)")
        precondition(region.x >= 0 && region.y >= 0 && region.width > 0 && region.height > 0
                     && region.x + region.width <= width && region.y + region.height <= height,
                     "region \(region) outside the \(width) x \(height) image")
        let rows = Self.windows(input: region.height, output: outputHeight)
        let columns = Self.windows(input: region.width, output: outputWidth)
        let rowLength = (width + 1) * 3
        let plane = outputHeight * outputWidth
        sums.withUnsafeBufferPointer { sums in
            tensor.storage.withUnsafeMutableBufferPointer { out in
                let base = out.baseAddress! + index * 3 * plane
                for oy in 0..<outputHeight {
                    let top = sums.baseAddress! + (region.y + rows.start[oy]) * rowLength
                    let bottom = sums.baseAddress! + (region.y + rows.end[oy]) * rowLength
                    let windowHeight = rows.end[oy] - rows.start[oy]
                    for ox in 0..<outputWidth {
                        let left = (region.x + columns.start[ox]) * 3, right = (region.x + columns.end[ox]) * 3
                        let area = Float(windowHeight * (columns.end[ox] - columns.start[ox]))
                        let at = oy * outputWidth + ox
                        for c in 0..<3 {
                            let sum = bottom[right + c] &- bottom[left + c] &- top[right + c] &+ top[left + c]
                            base[c * plane + at] = (Float(sum) / area - 127.5) * 0.0078125
                        }
                    }
                }
            }
        }
    }

    /// The whole image resampled to width x height, as a [1, 3, height, width] network input.
    public func resampled(width outputWidth: Int, height outputHeight: Int) -> Tensor {
        var tensor = Tensor(zeros: [1, 3, outputHeight, outputWidth])
        resample(PixelRegion(x: 0, y: 0, width: width, height: height), into: &tensor, index: 0)
        return tensor
    }

    /// Each region resampled to size x size, as an [N, 3, size, size] batch.
    public func crops(_ regions: [PixelRegion], size: Int) -> Tensor {
        var tensor = Tensor(zeros: [regions.count, 3, size, size])
        for (index, region) in regions.enumerated() { resample(region, into: &tensor, index: index) }
        return tensor
    }
}
