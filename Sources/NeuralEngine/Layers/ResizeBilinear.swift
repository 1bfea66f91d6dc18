/// Bilinear resampling of NCHW tensors to a fixed size, with TensorFlow's conventions (tf.image.resize /
/// TFLite RESIZE_BILINEAR): source coordinate = out * scale, or (out + 0.5) * scale - 0.5 with half-pixel
/// centres; scale = in / out, or (in - 1) / (out - 1) with aligned corners. Neighbours are clamped to the image.
public final class ResizeBilinear: Layer {
    public let outputHeight: Int
    public let outputWidth: Int
    public let alignCorners: Bool
    public let halfPixelCenters: Bool
    private var inputShape: [Int] = []
    private var rows = Taps(), columns = Taps()
    /// One row of the input, blended between its two source rows (forward).
    private var blended: [Float] = []

    /// For one axis: the two source indices and the weight of the second, per output index.
    private struct Taps {
        var size = -1
        var lower: [Int] = [], upper: [Int] = [], fraction: [Float] = []
    }

    public init(height: Int, width: Int, alignCorners: Bool = false, halfPixelCenters: Bool = false) {
        precondition(height > 0 && width > 0, "output size must be positive")
        self.outputHeight = height
        self.outputWidth = width
        self.alignCorners = alignCorners
        self.halfPixelCenters = halfPixelCenters
    }

    private func taps(from inSize: Int, to outSize: Int) -> Taps {
        let scale = alignCorners && outSize > 1 ? Float(inSize - 1) / Float(outSize - 1) : Float(inSize) / Float(outSize)
        var taps = Taps(size: inSize)
        for index in 0..<outSize {
            let source = halfPixelCenters ? (Float(index) + 0.5) * scale - 0.5 : Float(index) * scale
            let lower = max(Int(source.rounded(.down)), 0)
            taps.lower.append(lower)
            taps.upper.append(min(Int(source.rounded(.up)), inSize - 1))
            // TFLite weighs by source - lower even where lower was clamped (lower == upper there, so it cancels).
            taps.fraction.append(source - Float(lower))
        }
        return taps
    }

    private func prepare(_ shape: [Int]) {
        precondition(shape.count == 4, "ResizeBilinear expects [N, C, H, W], got \(shape)")
        if rows.size != shape[2] { rows = taps(from: shape[2], to: outputHeight) }
        if columns.size != shape[3] { columns = taps(from: shape[3], to: outputWidth) }
    }

    public func forward(_ input: Tensor, training: Bool) -> Tensor {
        var output = Tensor(zeros: [input.shape[0], input.shape[1], outputHeight, outputWidth])
        forward(input, into: &output)
        inputShape = input.shape
        return output
    }

    /// Inference into a caller-owned tensor, reusing its storage when it already has the output's shape.
    public func forward(_ input: Tensor, into output: inout Tensor) {
        prepare(input.shape)
        let shape = [input.shape[0], input.shape[1], outputHeight, outputWidth]
        if output.shape != shape { output = Tensor(zeros: shape) }
        let (height, width) = (input.shape[2], input.shape[3])
        let (rows, columns) = (self.rows, self.columns)
        if blended.count != width { blended = [Float](repeating: 0, count: width) }
        // Separably: the two source rows blended once per output row (a contiguous, vectorised pass), then
        // two taps per output pixel instead of four. The same weights as TFLite's reference kernel, products
        // grouped differently (float rounding apart, the same values; exact where a weight is 0 or 1).
        input.storage.withUnsafeBufferPointer { x in
            output.storage.withUnsafeMutableBufferPointer { y in
                blended.withUnsafeMutableBufferPointer { row in
                    let line = row.baseAddress!
                    for plane in 0..<(shape[0] * shape[1]) {
                        let from = x.baseAddress! + plane * height * width
                        let to = y.baseAddress! + plane * outputHeight * outputWidth
                        for oy in 0..<outputHeight {
                            let top = from + rows.lower[oy] * width, bottom = from + rows.upper[oy] * width
                            let dy = rows.fraction[oy]
                            for ix in 0..<width { line[ix] = top[ix] * (1 - dy) + bottom[ix] * dy }
                            let out = to + oy * outputWidth
                            for ox in 0..<outputWidth {
                                let dx = columns.fraction[ox]
                                out[ox] = line[columns.lower[ox]] * (1 - dx) + line[columns.upper[ox]] * dx
                            }
                        }
                    }
                }
            }
        }
    }

    /// Scatters each output gradient onto its four source pixels with the forward weights.
    public func backward(_ dOutput: Tensor) -> Tensor {
        precondition(dOutput.shape == [inputShape[0], inputShape[1], outputHeight, outputWidth],
                     "dOutput shape \(dOutput.shape)")
        prepare(inputShape)
        let (height, width) = (inputShape[2], inputShape[3])
        var dInput = Tensor(zeros: inputShape)
        dOutput.storage.withUnsafeBufferPointer { dY in
            dInput.storage.withUnsafeMutableBufferPointer { dX in
                for plane in 0..<(inputShape[0] * inputShape[1]) {
                    let to = dX.baseAddress! + plane * height * width
                    let from = dY.baseAddress! + plane * outputHeight * outputWidth
                    for oy in 0..<outputHeight {
                        let top = to + rows.lower[oy] * width, bottom = to + rows.upper[oy] * width
                        let dy = rows.fraction[oy]
                        for ox in 0..<outputWidth {
                            let (left, right, dx) = (columns.lower[ox], columns.upper[ox], columns.fraction[ox])
                            let g = from[oy * outputWidth + ox]
                            top[left] += g * (1 - dy) * (1 - dx)
                            bottom[left] += g * dy * (1 - dx)
                            top[right] += g * (1 - dy) * dx
                            bottom[right] += g * dy * dx
                        }
                    }
                }
            }
        }
        return dInput
    }
}
