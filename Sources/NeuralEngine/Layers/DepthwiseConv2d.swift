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

    public var namedParameters: [(name: String, parameter: Parameter)] {
        var result = [(name: "weight", parameter: weight)]
        if let bias { result.append((name: "bias", parameter: bias)) }
        return result
    }

    public func outputSize(height: Int, width: Int) -> (height: Int, width: Int) {
        ((height + padding.top + padding.bottom - kernelHeight) / stride + 1,
         (width + padding.left + padding.right - kernelWidth) / stride + 1)
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
        input.storage.withUnsafeBufferPointer { x in
            weight.value.storage.withUnsafeBufferPointer { w in
                output.storage.withUnsafeMutableBufferPointer { y in
                    for n in 0..<input.shape[0] {
                        for o in 0..<outChannels {
                            let plane = x.baseAddress! + (n * inChannels + o / multiplier) * height * width
                            let out = y.baseAddress! + (n * outChannels + o) * outHeight * outWidth
                            out.update(repeating: bias?.value.storage[o] ?? 0, count: outHeight * outWidth)
                            forEachTap(height: height, width: width, outHeight: outHeight, outWidth: outWidth) {
                                ky, kx, oy, outX, inX in
                                let k = w[o * taps + ky * kernelWidth + kx]
                                let from = plane + (oy * stride - padding.top + ky) * width
                                let to = out + oy * outWidth
                                if stride == 1 {
                                    for ox in outX { to[ox] += k * from[ox + inX] }
                                } else {
                                    for ox in outX { to[ox] += k * from[ox * stride + inX] }
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
