/// 1x1 convolution (stride 1, no padding) over NCHW tensors. Each image's storage already is the matrix
/// X [inChannels, pixels], so the layer is one sgemm per image, Y = W X + b, with no im2col copy and no
/// reordering of the product: the bulk of a MobileNet-style network (BlazeFace: ~80% of its FLOPs).
/// Same arithmetic as `Conv2d` with a 1x1 kernel.
public final class PointwiseConv2d: Layer {
    public let inChannels: Int
    public let outChannels: Int
    /// [outChannels, inChannels, 1, 1], the layout `Conv2d` uses.
    public let weight: Parameter
    public let bias: Parameter?

    private var input: Tensor?

    public init(weight: Tensor, bias: Tensor?) {
        precondition(weight.rank == 4 && weight.shape[2] == 1 && weight.shape[3] == 1,
                     "pointwise weight must be [out, in, 1, 1], got \(weight.shape)")
        precondition(bias == nil || bias!.shape == [weight.shape[0]], "bias must be [outChannels]")
        self.outChannels = weight.shape[0]
        self.inChannels = weight.shape[1]
        self.weight = Parameter(weight, decays: true)
        self.bias = bias.map { Parameter($0) }
        Parallelism.configureOnce()  // OpenBLAS single-threaded, as inside Conv2d's workers
    }

    public var namedParameters: [(name: String, parameter: Parameter)] { weightAndBias(weight, bias) }

    public func forward(_ input: Tensor, training: Bool) -> Tensor {
        var output = Tensor(zeros: [input.shape[0], outChannels, input.shape[2], input.shape[3]])
        forward(input, into: &output)
        self.input = training ? input : nil
        return output
    }

    /// Inference into a caller-owned tensor, reusing its storage when it already has the output's shape.
    public func forward(_ input: Tensor, into output: inout Tensor) {
        precondition(input.rank == 4 && input.shape[1] == inChannels,
                     "PointwiseConv2d expects [N, \(inChannels), H, W], got \(input.shape)")
        let shape = [input.shape[0], outChannels, input.shape[2], input.shape[3]]
        if output.shape != shape { output = Tensor(zeros: shape) }
        let pixels = shape[2] * shape[3]
        input.storage.withUnsafeBufferPointer { x in
            weight.value.storage.withUnsafeBufferPointer { w in
                output.storage.withUnsafeMutableBufferPointer { y in
                    for n in 0..<shape[0] {
                        let out = y.baseAddress! + n * outChannels * pixels
                        // Start from the bias and accumulate the product onto it (beta = 1).
                        for o in 0..<outChannels {
                            (out + o * pixels).update(repeating: bias?.value.storage[o] ?? 0, count: pixels)
                        }
                        BLAS.gemm(transposeA: false, transposeB: false, m: outChannels, n: pixels, k: inChannels,
                                  a: w.baseAddress!, lda: inChannels,
                                  b: x.baseAddress! + n * inChannels * pixels, ldb: pixels,
                                  beta: 1, c: out, ldc: pixels)
                    }
                }
            }
        }
    }

    /// output[:, pixels] = W X[:, pixels] for each image (+= when `accumulating`), without the bias: for
    /// callers that finish the output themselves (bias, a residual, an activation in one pass), going through
    /// the image in bands of pixels so each band's output is still in cache for that pass.
    public func product(_ input: Tensor, into output: inout Tensor, pixels range: Range<Int>? = nil,
                        accumulating: Bool = false) {
        precondition(input.rank == 4 && input.shape[1] == inChannels,
                     "PointwiseConv2d expects [N, \(inChannels), H, W], got \(input.shape)")
        let shape = [input.shape[0], outChannels, input.shape[2], input.shape[3]]
        if output.shape != shape { output = Tensor(zeros: shape) }
        let pixels = shape[2] * shape[3]
        let range = range ?? 0..<pixels
        precondition(range.lowerBound >= 0 && range.upperBound <= pixels, "pixels \(range) outside 0..<\(pixels)")
        guard !range.isEmpty else { return }
        input.storage.withUnsafeBufferPointer { x in
            weight.value.storage.withUnsafeBufferPointer { w in
                output.storage.withUnsafeMutableBufferPointer { y in
                    for n in 0..<shape[0] {
                        if usesDirectProduct {
                            ThinProduct.multiply(w.baseAddress!, x.baseAddress! + n * inChannels * pixels,
                                                 into: y.baseAddress! + n * outChannels * pixels, rowStride: pixels,
                                                 inner: inChannels, outputs: outChannels, columns: range,
                                                 accumulating: accumulating)
                            continue
                        }
                        BLAS.gemm(transposeA: false, transposeB: false, m: outChannels, n: range.count, k: inChannels,
                                  a: w.baseAddress!, lda: inChannels,
                                  b: x.baseAddress! + n * inChannels * pixels + range.lowerBound, ldb: pixels,
                                  beta: accumulating ? 1 : 0,
                                  c: y.baseAddress! + n * outChannels * pixels + range.lowerBound, ldc: pixels)
                    }
                }
            }
        }
    }

    /// Whether `product` runs our own kernel (`ThinProduct`) instead of sgemm: the thin layers of BlazeFace.
    public var usesDirectProduct: Bool { ThinProduct.suits(inner: inChannels, outputs: outChannels) }

    public func backward(_ dOutput: Tensor) -> Tensor {
        guard let input else { preconditionFailure("PointwiseConv2d.backward needs a training-mode forward") }
        let pixels = input.shape[2] * input.shape[3]
        precondition(dOutput.shape == [input.shape[0], outChannels, input.shape[2], input.shape[3]],
                     "dOutput shape \(dOutput.shape)")
        var dInput = Tensor(zeros: input.shape)
        input.storage.withUnsafeBufferPointer { x in
            weight.value.storage.withUnsafeBufferPointer { w in
                weight.gradient.storage.withUnsafeMutableBufferPointer { dW in
                    dOutput.storage.withUnsafeBufferPointer { dY in
                        dInput.storage.withUnsafeMutableBufferPointer { dX in
                            for n in 0..<input.shape[0] {
                                let gradient = dY.baseAddress! + n * outChannels * pixels
                                // dWeight += dY X^T
                                BLAS.gemm(transposeA: false, transposeB: true, m: outChannels, n: inChannels, k: pixels,
                                          a: gradient, lda: pixels, b: x.baseAddress! + n * inChannels * pixels, ldb: pixels,
                                          beta: 1, c: dW.baseAddress!, ldc: inChannels)
                                // dX = W^T dY
                                BLAS.gemm(transposeA: true, transposeB: false, m: inChannels, n: pixels, k: outChannels,
                                          a: w.baseAddress!, lda: inChannels, b: gradient, ldb: pixels,
                                          beta: 0, c: dX.baseAddress! + n * inChannels * pixels, ldc: pixels)
                                if let bias {
                                    for o in 0..<outChannels {
                                        var sum: Float = 0
                                        for p in 0..<pixels { sum += gradient[o * pixels + p] }
                                        bias.gradient.storage[o] += sum
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
