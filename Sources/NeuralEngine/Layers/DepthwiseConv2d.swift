/// Depthwise 2-D convolution over NCHW tensors: output channel o filters input channel o / multiplier with its
/// own kernel. The same arithmetic as `Conv2d` with groups == inChannels, but as direct loops: im2col + sgemm
/// with one-row matrices spends its time copying. Rows are processed as runs of valid output pixels per tap,
/// so the inner loops have no bounds checks and vectorise at stride 1.
public final class DepthwiseConv2d: Layer {
    public let inChannels: Int
    public let outChannels: Int
    public let kernelHeight: Int
    public let kernelWidth: Int
    public let stride: Int
    public let padding: Padding
    /// [outChannels, 1, kernelHeight, kernelWidth], the layout `Conv2d` uses for groups == inChannels.
    public let weight: Parameter
    public let bias: Parameter?

    private var input: Tensor?
    /// One zero-padded input plane (see forward), reused between calls.
    private var scratch: [Float] = []
    private var scratchGeometry: [Int] = []

    /// `weight` is [outChannels, 1, kh, kw]; `multiplier` output channels per input channel.
    public init(weight: Tensor, bias: Tensor?, stride: Int, padding: Padding, multiplier: Int = 1) {
        precondition(weight.rank == 4 && weight.shape[1] == 1, "depthwise weight must be [out, 1, kh, kw]")
        precondition(multiplier >= 1 && weight.shape[0] % multiplier == 0, "channels must divide by the multiplier")
        precondition(bias == nil || bias!.shape == [weight.shape[0]], "bias must be [outChannels]")
        self.outChannels = weight.shape[0]
        self.inChannels = weight.shape[0] / multiplier
        self.kernelHeight = weight.shape[2]
        self.kernelWidth = weight.shape[3]
        self.stride = stride
        self.padding = padding
        self.weight = Parameter(weight, decays: true)
        self.bias = bias.map { Parameter($0) }
    }

    public var namedParameters: [(name: String, parameter: Parameter)] { weightAndBias(weight, bias) }

    public func outputSize(height: Int, width: Int) -> (height: Int, width: Int) {
        padding.outputSize(height: height, width: width, kernelHeight: kernelHeight, kernelWidth: kernelWidth, stride: stride)
    }

    public func outputShape(for inputShape: [Int]) -> [Int] {
        let (height, width) = outputSize(height: inputShape[2], width: inputShape[3])
        return [inputShape[0], outChannels, height, width]
    }

    public func forward(_ input: Tensor, training: Bool) -> Tensor {
        var output = Tensor(zeros: outputShape(for: input.shape))
        forward(input, into: &output)
        self.input = training ? input : nil
        return output
    }

    /// Inference into a caller-owned tensor, reusing its storage when it already has the output's shape.
    public func forward(_ input: Tensor, into output: inout Tensor) {
        precondition(input.rank == 4 && input.shape[1] == inChannels,
                     "DepthwiseConv2d expects [N, \(inChannels), H, W], got \(input.shape)")
        let shape = outputShape(for: input.shape)
        precondition(shape[2] > 0 && shape[3] > 0, "input \(input.shape) too small for the kernel")
        if output.shape != shape { output = Tensor(zeros: shape) }
        let (height, width, outHeight, outWidth) = (input.shape[2], input.shape[3], shape[2], shape[3])
        let multiplier = outChannels / inChannels
        let taps = kernelHeight * kernelWidth
        // Each input plane is copied once into a zero-padded scratch plane whose rows are split into `stride`
        // phases (phase p holds padded columns p, p + stride, ...): every tap then reads a contiguous run, with
        // no bounds checks, at any stride.
        let paddedHeight = height + padding.top + padding.bottom
        let phaseWidth = (width + padding.left + padding.right + stride - 1) / stride
        let rowLength = stride * phaseWidth
        // Only the image positions are ever written, so the padding stays zero while the geometry does.
        if scratchGeometry != [height, width] {
            scratch = [Float](repeating: 0, count: paddedHeight * rowLength)
            scratchGeometry = [height, width]
        }
        let biases = bias?.value.storage ?? [Float](repeating: 0, count: outChannels)
        input.storage.withUnsafeBufferPointer { x in
            weight.value.storage.withUnsafeBufferPointer { w in
                output.storage.withUnsafeMutableBufferPointer { y in
                    scratch.withUnsafeMutableBufferPointer { padded in
                        let plane = padded.baseAddress!
                        for n in 0..<input.shape[0] {
                            for c in 0..<inChannels {
                                let source = x.baseAddress! + (n * inChannels + c) * height * width
                                for row in 0..<height {
                                    let from = source + row * width
                                    let to = plane + (row + padding.top) * rowLength
                                    if stride == 1 {
                                        (to + padding.left).update(from: from, count: width)
                                        continue
                                    }
                                    for phase in 0..<stride {
                                        // Image columns landing in this phase: (column + left) % stride == phase.
                                        let first = ((phase - padding.left) % stride + stride) % stride
                                        let target = to + phase * phaseWidth + (first + padding.left) / stride
                                        let source = from + first
                                        for j in 0..<((width - first + stride - 1) / stride) { target[j] = source[j * stride] }
                                    }
                                }
                                for m in 0..<multiplier {
                                    let o = c * multiplier + m
                                    let out = y.baseAddress! + (n * outChannels + o) * outHeight * outWidth
                                    let kernel = w.baseAddress! + o * taps
                                    /// The input run of tap (ky, kx) for output row oy.
                                    func run(_ oy: Int, _ ky: Int, _ kx: Int) -> UnsafeMutablePointer<Float> {
                                        plane + (oy * stride + ky) * rowLength + (kx % stride) * phaseWidth + kx / stride
                                    }
                                    for oy in 0..<outHeight {
                                        let line = out + oy * outWidth
                                        if kernelHeight == 3 && kernelWidth == 3 {
                                            // All nine taps in one pass over the row.
                                            let (a0, a1, a2) = (run(oy, 0, 0), run(oy, 0, 1), run(oy, 0, 2))
                                            let (b0, b1, b2) = (run(oy, 1, 0), run(oy, 1, 1), run(oy, 1, 2))
                                            let (c0, c1, c2) = (run(oy, 2, 0), run(oy, 2, 1), run(oy, 2, 2))
                                            let (k0, k1, k2, k3, k4) = (kernel[0], kernel[1], kernel[2], kernel[3], kernel[4])
                                            let (k5, k6, k7, k8) = (kernel[5], kernel[6], kernel[7], kernel[8])
                                            let shift = biases[o]
                                            for ox in 0..<outWidth {
                                                let top = k0 * a0[ox] + k1 * a1[ox] + k2 * a2[ox]
                                                let middle = k3 * b0[ox] + k4 * b1[ox] + k5 * b2[ox]
                                                let bottom = k6 * c0[ox] + k7 * c1[ox] + k8 * c2[ox]
                                                line[ox] = shift + top + middle + bottom
                                            }
                                        } else {
                                            line.update(repeating: biases[o], count: outWidth)
                                            for ky in 0..<kernelHeight {
                                                for kx in 0..<kernelWidth {
                                                    let k = kernel[ky * kernelWidth + kx]
                                                    let from = run(oy, ky, kx)
                                                    for ox in 0..<outWidth { line[ox] += k * from[ox] }
                                                }
                                            }
                                        }
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
    }

    /// Calls body(ky, kx, oy, output columns, input column offset) for every kernel tap and output row whose
    /// input row lies inside the image, with the run of output columns whose input column does too
    /// (input column = ox * stride + offset).
    @inline(__always)
    private func forEachTap(height: Int, width: Int, outHeight: Int, outWidth: Int,
                            _ body: (Int, Int, Int, Range<Int>, Int) -> Void) {
        for oy in 0..<outHeight {
            for ky in 0..<kernelHeight {
                let iy = oy * stride - padding.top + ky
                if iy < 0 || iy >= height { continue }
                for kx in 0..<kernelWidth {
                    let offset = kx - padding.left
                    // ox * stride + offset in [0, width)
                    let first = offset >= 0 ? 0 : (-offset + stride - 1) / stride
                    let last = min(outWidth, (width - 1 - offset) >= 0 ? (width - 1 - offset) / stride + 1 : 0)
                    if first < last { body(ky, kx, oy, first..<last, offset) }
                }
            }
        }
    }

    public func backward(_ dOutput: Tensor) -> Tensor {
        guard let input else { preconditionFailure("DepthwiseConv2d.backward needs a training-mode forward") }
        let shape = outputShape(for: input.shape)
        precondition(dOutput.shape == shape, "dOutput shape \(dOutput.shape), expected \(shape)")
        let (height, width, outHeight, outWidth) = (input.shape[2], input.shape[3], shape[2], shape[3])
        let multiplier = outChannels / inChannels
        let taps = kernelHeight * kernelWidth
        var dInput = Tensor(zeros: input.shape)
        input.storage.withUnsafeBufferPointer { x in
            weight.value.storage.withUnsafeBufferPointer { w in
                weight.gradient.storage.withUnsafeMutableBufferPointer { dW in
                    dOutput.storage.withUnsafeBufferPointer { dY in
                        dInput.storage.withUnsafeMutableBufferPointer { dX in
                            for n in 0..<input.shape[0] {
                                for o in 0..<outChannels {
                                    let planeOffset = (n * inChannels + o / multiplier) * height * width
                                    let plane = x.baseAddress! + planeOffset
                                    let dPlane = dX.baseAddress! + planeOffset
                                    let dOut = dY.baseAddress! + (n * outChannels + o) * outHeight * outWidth
                                    if let bias {
                                        var sum: Float = 0
                                        for index in 0..<(outHeight * outWidth) { sum += dOut[index] }
                                        bias.gradient.storage[o] += sum
                                    }
                                    forEachTap(height: height, width: width, outHeight: outHeight, outWidth: outWidth) {
                                        ky, kx, oy, outX, inX in
                                        let tap = o * taps + ky * kernelWidth + kx
                                        let row = (oy * stride - padding.top + ky) * width
                                        let gradient = dOut + oy * outWidth
                                        var dWeight: Float = 0
                                        for ox in outX {
                                            dWeight += gradient[ox] * plane[row + ox * stride + inX]
                                            dPlane[row + ox * stride + inX] += gradient[ox] * w[tap]
                                        }
                                        dW[tap] += dWeight
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
        return dInput
    }
}
