/// Fully connected layer: y = x W^T + b, with W stored [out, in] as in PyTorch.
public final class Linear: Layer {
    public let inFeatures: Int
    public let outFeatures: Int
    public let weight: Parameter
    public let bias: Parameter
    private var input: Tensor?

    public init(inFeatures: Int, outFeatures: Int, generator: inout RandomGenerator) {
        self.inFeatures = inFeatures
        self.outFeatures = outFeatures
        // PyTorch's default (Kaiming uniform with a = sqrt(5)) amounts to U(-1/sqrt(in), 1/sqrt(in)).
        let bound = 1 / Float(inFeatures).squareRoot()
        weight = Parameter(Tensor(uniform: [outFeatures, inFeatures], bound: bound, generator: &generator), decays: true)
        bias = Parameter(Tensor(uniform: [outFeatures], bound: bound, generator: &generator))
    }

    public init(weight: Tensor, bias: Tensor) {
        precondition(weight.rank == 2 && bias.shape == [weight.shape[0]], "Linear weight [out, in] and bias [out]")
        outFeatures = weight.shape[0]
        inFeatures = weight.shape[1]
        self.weight = Parameter(weight, decays: true)
        self.bias = Parameter(bias)
    }

    public var namedParameters: [(name: String, parameter: Parameter)] { [("weight", weight), ("bias", bias)] }

    /// y = x W^T + b for `batch` rows: the kernel forward and inference share.
    func affine(_ x: UnsafePointer<Float>, batch: Int, into y: UnsafeMutablePointer<Float>) {
        bias.value.storage.withUnsafeBufferPointer { b in
            for n in 0..<batch {
                for o in 0..<outFeatures { y[n * outFeatures + o] = b[o] }
            }
        }
        weight.value.storage.withUnsafeBufferPointer { w in
            BLAS.gemm(transposeA: false, transposeB: true, m: batch, n: outFeatures, k: inFeatures,
                      a: x, lda: inFeatures, b: w.baseAddress!, ldb: inFeatures,
                      beta: 1, c: y, ldc: outFeatures)
        }
    }

    public func forward(_ input: Tensor, training: Bool) -> Tensor {
        precondition(input.rank == 2 && input.shape[1] == inFeatures, "Linear expects [N, \(inFeatures)], got \(input.shape)")
        let batch = input.shape[0]
        var output = Tensor(zeros: [batch, outFeatures])
        input.storage.withUnsafeBufferPointer { x in
            output.storage.withUnsafeMutableBufferPointer { y in affine(x.baseAddress!, batch: batch, into: y.baseAddress!) }
        }
        self.input = training ? input : nil
        return output
    }

    public func backward(_ dOutput: Tensor) -> Tensor {
        guard let input else { preconditionFailure("Linear.backward needs a training-mode forward") }
        let batch = input.shape[0]
        var dInput = Tensor(zeros: input.shape)
        dOutput.storage.withUnsafeBufferPointer { dy in
            input.storage.withUnsafeBufferPointer { x in
                weight.gradient.storage.withUnsafeMutableBufferPointer { dW in
                    // dWeight += dy^T x
                    BLAS.gemm(transposeA: true, transposeB: false, m: outFeatures, n: inFeatures, k: batch,
                              a: dy.baseAddress!, lda: outFeatures, b: x.baseAddress!, ldb: inFeatures,
                              beta: 1, c: dW.baseAddress!, ldc: inFeatures)
                }
            }
            weight.value.storage.withUnsafeBufferPointer { w in
                dInput.storage.withUnsafeMutableBufferPointer { dx in
                    // dInput = dy W
                    BLAS.gemm(transposeA: false, transposeB: false, m: batch, n: inFeatures, k: outFeatures,
                              a: dy.baseAddress!, lda: outFeatures, b: w.baseAddress!, ldb: inFeatures,
                              beta: 0, c: dx.baseAddress!, ldc: inFeatures)
                }
            }
            for n in 0..<batch {
                for o in 0..<outFeatures { bias.gradient.storage[o] += dy[n * outFeatures + o] }
            }
        }
        return dInput
    }
}

extension Linear: InferenceLayer {
    func inferenceOutputShape(for itemShape: [Int]) -> [Int] {
        precondition(itemShape == [inFeatures], "Linear expects [N, \(inFeatures)] items, got \(itemShape)")
        return [outFeatures]
    }

    func infer(_ input: UnsafePointer<Float>, itemShape: [Int], batch: Int,
               into output: UnsafeMutablePointer<Float>, scratch: [ConvolutionScratch]) {
        affine(input, batch: batch, into: output)
    }
}
