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
/// Every window sum is exact in Int32, so the means equal PyTorch's (whose float sums of whole bytes are exact
/// too) up to its single division by the window area. Two ways to the same sums, chosen by frame size:
/// - up to `largestTable` pixels, a summed-area table of the frame, built once (the table wraps past 2^31 on
///   large frames, and wrapping differences still give the exact sums): a few lookups per output pixel;
/// - above, straight from the frame, separably: per output row the window's rows are added into one row of
///   sums (a loop the compiler vectorises) whose running sums give every window along the row. That reads the
///   frame once per pyramid level: 4% slower per MTCNN call at 720p, where the table takes 11 MB, but the
///   table would take 25 MB at 1080p and 100 MB at 4K.
public struct AreaResampler: Sendable {
    public let width: Int
    public let height: Int
    /// Frames up to this many pixels (1280 x 720) get a summed-area table.
    static let largestTable = 1280 * 720

    private enum Sums {
        /// (height + 1) x (width + 1) x 3 running sums, zero first row and column; gray is repeated.
        case table([Int32])
        case direct(Image)
    }
    private let sums: Sums

    /// `useTable`: nil picks by size (see the type's description); tests force either.
    public init(_ image: Image, useTable: Bool? = nil) {
        width = image.width
        height = image.height
        sums = useTable ?? (image.width * image.height <= Self.largestTable)
            ? .table(Self.summedAreaTable(image)) : .direct(image)
    }

    private static func summedAreaTable(_ image: Image) -> [Int32] {
        let (width, height) = (image.width, image.height)
        let rowLength = (width + 1) * 3
        var sums = [Int32](repeating: 0, count: (height + 1) * rowLength)
        let channels = image.format.channels
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
        return sums
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
        tensor.storage.withUnsafeMutableBufferPointer { out in
            let target = out.baseAddress! + index * 3 * outputHeight * outputWidth
            switch sums {
            case .table(let table):
                Self.resample(region, rows: rows, columns: columns, table: table, imageWidth: width, into: target)
            case .direct(let image):
                Self.resample(region, rows: rows, columns: columns, image: image, into: target)
            }
        }
    }

    /// Output row `oy` of the three planes: each window's sum, `sum(left, right)` with the window's first and
    /// past-the-end columns as offsets into rows of interleaved running sums, over its area, normalised.
    @inline(__always)
    private static func writeRow(_ oy: Int, windowHeight: Int, columns: (start: [Int], end: [Int]),
                                 sum: (Int, Int) -> Int32, into target: UnsafeMutablePointer<Float>,
                                 outputWidth: Int, plane: Int) {
        for ox in 0..<outputWidth {
            let left = columns.start[ox] * 3, right = columns.end[ox] * 3
            let area = Float(windowHeight * (columns.end[ox] - columns.start[ox]))
            let at = oy * outputWidth + ox
            for c in 0..<3 {
                target[c * plane + at] = (Float(sum(left + c, right + c)) / area - 127.5) * 0.0078125
            }
        }
    }

    private static func resample(_ region: PixelRegion, rows: (start: [Int], end: [Int]), columns: (start: [Int], end: [Int]),
                                 table: [Int32], imageWidth: Int, into target: UnsafeMutablePointer<Float>) {
        let (outputHeight, outputWidth) = (rows.start.count, columns.start.count)
        let rowLength = (imageWidth + 1) * 3
        let regionOffset = region.x * 3
        table.withUnsafeBufferPointer { sums in
            for oy in 0..<outputHeight {
                let top = sums.baseAddress! + (region.y + rows.start[oy]) * rowLength + regionOffset
                let bottom = sums.baseAddress! + (region.y + rows.end[oy]) * rowLength + regionOffset
                writeRow(oy, windowHeight: rows.end[oy] - rows.start[oy], columns: columns,
                         sum: { left, right in bottom[right] &- bottom[left] &- top[right] &+ top[left] },
                         into: target, outputWidth: outputWidth, plane: outputHeight * outputWidth)
            }
        }
    }

    private static func resample(_ region: PixelRegion, rows: (start: [Int], end: [Int]), columns: (start: [Int], end: [Int]),
                                 image: Image, into target: UnsafeMutablePointer<Float>) {
        let (outputHeight, outputWidth) = (rows.start.count, columns.start.count)
        let channels = image.format.channels
        let sourceRowLength = image.width * channels
        let regionRowLength = region.width * channels
        // One row of window sums (the region's columns x channels), and its running sums per channel with a
        // zero first column.
        var windowRow = [Int32](repeating: 0, count: regionRowLength)
        var running = [Int32](repeating: 0, count: (region.width + 1) * 3)
        image.pixels.withUnsafeBufferPointer { pixels in
            windowRow.withUnsafeMutableBufferPointer { windowRow in
                running.withUnsafeMutableBufferPointer { running in
                    let regionStart = pixels.baseAddress! + region.y * sourceRowLength + region.x * channels
                    for oy in 0..<outputHeight {
                        let windowHeight = rows.end[oy] - rows.start[oy]
                        var source = regionStart + rows.start[oy] * sourceRowLength
                        for i in 0..<regionRowLength { windowRow[i] = Int32(source[i]) }
                        for _ in 1..<windowHeight {
                            source += sourceRowLength
                            for i in 0..<regionRowLength { windowRow[i] &+= Int32(source[i]) }
                        }
                        var red: Int32 = 0, green: Int32 = 0, blue: Int32 = 0
                        for x in 0..<region.width {
                            let pixel = x * channels
                            red &+= windowRow[pixel]
                            green &+= windowRow[channels == 3 ? pixel + 1 : pixel]
                            blue &+= windowRow[channels == 3 ? pixel + 2 : pixel]
                            let at = (x + 1) * 3
                            running[at] = red
                            running[at + 1] = green
                            running[at + 2] = blue
                        }
                        let sums = UnsafePointer(running.baseAddress!)
                        writeRow(oy, windowHeight: windowHeight, columns: columns,
                                 sum: { left, right in sums[right] &- sums[left] },
                                 into: target, outputWidth: outputWidth, plane: outputHeight * outputWidth)
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
