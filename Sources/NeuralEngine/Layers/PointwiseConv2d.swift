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
                            Self.directProduct(w.baseAddress!, x.baseAddress! + n * inChannels * pixels,
                                               into: y.baseAddress! + n * outChannels * pixels,
                                               inChannels: inChannels, outChannels: outChannels, pixels: pixels,
                                               range: range, accumulating: accumulating)
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

    /// Whether `product` runs `directProduct` instead of sgemm: for BlazeFace's thin layers (up to 64 input
    /// channels, at least 16 outputs), where OpenBLAS spends much of the call zeroing and packing. Measured on
    /// BlazeFace's networks, runs interleaved: full range 4.2-4.5 -> 3.9-4.0 ms, back-camera 6.6-6.9 -> 6.1-6.3 ms
    /// (fastest passes); layers with fewer outputs (32 -> 8 at 96x96) were slower direct: the packing is not
    /// shared by enough output channels there.
    public var usesDirectProduct: Bool { inChannels <= 64 && outChannels >= 16 }

    /// y[o, p] (+)= sum over k of w[o, k] x[k, p] for p in `range`: four output channels by sixteen pixels held in
    /// registers over all input channels.
    private static func directProduct(_ w: UnsafePointer<Float>, _ x: UnsafePointer<Float>,
                                      into y: UnsafeMutablePointer<Float>, inChannels: Int, outChannels: Int,
                                      pixels: Int, range: Range<Int>, accumulating: Bool) {
        typealias V = SIMD8<Float>
        @inline(__always) func load(_ pointer: UnsafePointer<Float>) -> V {
            UnsafeRawPointer(pointer).loadUnaligned(as: V.self)
        }
        @inline(__always) func store(_ value: V, _ pointer: UnsafeMutablePointer<Float>) {
            UnsafeMutableRawPointer(pointer).storeBytes(of: accumulating ? value + load(pointer) : value, as: V.self)
        }
        // Pixel blocks of the input packed contiguously (16 pixels of each input channel in turn, 16 KB at most),
        // then read from L1 for every output channel. Reading the rows in place strides by the plane, which for
        // 32x32 to 128x128 maps (a multiple of 4 KB) sends every input channel to the same cache set.
        let block = max(16, 4096 / inChannels / 16 * 16)
        withUnsafeTemporaryAllocation(of: Float.self, capacity: block * inChannels) { packed in
            let packed = packed.baseAddress!
            for blockStart in stride(from: range.lowerBound, to: range.upperBound, by: block) {
                let blockEnd = min(blockStart + block, range.upperBound)
                let groups = (blockEnd - blockStart) / 16
                for group in 0..<groups {
                    let to = packed + group * inChannels * 16
                    for k in 0..<inChannels {
                        (to + k * 16).update(from: x + k * pixels + blockStart + group * 16, count: 16)
                    }
                }
                var o = 0
                while o + 4 <= outChannels {
                    let w0 = w + o * inChannels, w1 = w0 + inChannels, w2 = w1 + inChannels, w3 = w2 + inChannels
                    let y0 = y + o * pixels, y1 = y0 + pixels, y2 = y1 + pixels, y3 = y2 + pixels
                    for group in 0..<groups {
                        var a0 = V(), b0 = V(), a1 = V(), b1 = V(), a2 = V(), b2 = V(), a3 = V(), b3 = V()
                        var source = UnsafePointer(packed + group * inChannels * 16)
                        for k in 0..<inChannels {
                            let first = load(source), second = load(source + 8)
                            let c0 = V(repeating: w0[k]), c1 = V(repeating: w1[k])
                            let c2 = V(repeating: w2[k]), c3 = V(repeating: w3[k])
                            a0 = multiplyAdd(a0, c0, first); b0 = multiplyAdd(b0, c0, second)
                            a1 = multiplyAdd(a1, c1, first); b1 = multiplyAdd(b1, c1, second)
                            a2 = multiplyAdd(a2, c2, first); b2 = multiplyAdd(b2, c2, second)
                            a3 = multiplyAdd(a3, c3, first); b3 = multiplyAdd(b3, c3, second)
                            source += 16
                        }
                        let p = blockStart + group * 16
                        store(a0, y0 + p); store(b0, y0 + p + 8)
                        store(a1, y1 + p); store(b1, y1 + p + 8)
                        store(a2, y2 + p); store(b2, y2 + p + 8)
                        store(a3, y3 + p); store(b3, y3 + p + 8)
                    }
                    o += 4
                }
                // Output channels past a multiple of four, one at a time.
                for o in o..<outChannels {
                    let row = w + o * inChannels, out = y + o * pixels
                    for group in 0..<groups {
                        var a = V(), b = V()
                        var source = UnsafePointer(packed + group * inChannels * 16)
                        for k in 0..<inChannels {
                            let c = V(repeating: row[k])
                            a = multiplyAdd(a, c, load(source)); b = multiplyAdd(b, c, load(source + 8))
                            source += 16
                        }
                        let p = blockStart + group * 16
                        store(a, out + p); store(b, out + p + 8)
                    }
                }
                // The pixels past a multiple of 16, one by one.
                for o in 0..<outChannels {
                    for p in (blockStart + groups * 16)..<blockEnd {
                        var sum: Float = 0
                        for k in 0..<inChannels { sum += w[o * inChannels + k] * x[k * pixels + p] }
                        y[o * pixels + p] = accumulating ? y[o * pixels + p] + sum : sum
                    }
                }
            }
        }
    }

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
