/// Convolution (groups == 1) of single large images for inference: im2col and sgemm one band of output rows at
/// a time, so the column buffer stays in cache, and the product lands straight in the output plane (ldc = plane
/// size, no reordering). `Conv2d` lowers a whole image at once, which for a network's first layer (5x5 kernel,
/// 3 channels, 128 x 128 output) is 4.9 MB of columns per call.
/// Training goes through the wrapped `Conv2d`, which shares the parameters: same weights, same gradients.
public final class BandedConv2d: Layer {
    public let convolution: Conv2d
    private var columns: [Float] = []

    /// Convolutions with this many weights per output channel run as direct loops (`forwardDirect`): a first
    /// layer of 5x5 on 3 colour channels (75) takes 0.20 ms instead of 0.25 in BlazeFace's short-range model and
    /// 0.96 ms instead of 1.18 in the back-camera one, where sgemm's inner dimension is too short to pay for its
    /// packing. At 3x3x3 (27) OpenBLAS's small-matrix kernel is as fast or faster (0.37 ms against 0.40 for the
    /// full-range model's first layer), so it keeps it.
    static let directDepths = 48...80

    /// Output columns (band rows x output width) lowered per sgemm: 1024 keeps a 5x5x3 band at 300 KB.
    static let columnsPerBand = 1024

    public init(weight: Tensor, bias: Tensor?, stride: Int, padding: Padding) {
        convolution = Conv2d(weight: weight, bias: bias, stride: stride, padding: padding, groups: 1)
        Parallelism.configureOnce()  // OpenBLAS single-threaded, as inside Conv2d's workers
    }

    public var namedParameters: [(name: String, parameter: Parameter)] { convolution.namedParameters }

    public func outputShape(for shape: [Int]) -> [Int] {
        let (height, width) = convolution.outputSize(height: shape[2], width: shape[3])
        return [shape[0], convolution.outChannels, height, width]
    }

    public func forward(_ input: Tensor, training: Bool) -> Tensor {
        if training { return convolution.forward(input, training: true) }
        var output = Tensor(zeros: outputShape(for: input.shape))
        forward(input, into: &output)
        return output
    }

    public func backward(_ dOutput: Tensor) -> Tensor { convolution.backward(dOutput) }

    /// Inference into a caller-owned tensor, reusing its storage when it already has the output's shape.
    public func forward(_ input: Tensor, into output: inout Tensor) {
        let c = convolution
        precondition(input.rank == 4 && input.shape[1] == c.inChannels,
                     "BandedConv2d expects [N, \(c.inChannels), H, W], got \(input.shape)")
        let shape = outputShape(for: input.shape)
        precondition(shape[2] > 0 && shape[3] > 0, "input \(input.shape) too small for the kernel")
        if output.shape != shape { output = Tensor(zeros: shape) }
        let (channels, height, width) = (input.shape[1], input.shape[2], input.shape[3])
        let (outHeight, outWidth) = (shape[2], shape[3])
        let (kernelHeight, kernelWidth, stride, padding) = (c.kernelHeight, c.kernelWidth, c.stride, c.padding)
        let depth = channels * kernelHeight * kernelWidth
        if Self.directDepths.contains(depth) && outWidth >= 16 {
            forwardDirect(input, into: &output)
            return
        }
        let bandRows = max(1, min(outHeight, Self.columnsPerBand / outWidth))
        if columns.count < depth * bandRows * outWidth { columns = [Float](repeating: 0, count: depth * bandRows * outWidth) }
        let biases = c.bias?.value.storage ?? [Float](repeating: 0, count: c.outChannels)
        input.storage.withUnsafeBufferPointer { x in
            c.weight.value.storage.withUnsafeBufferPointer { w in
                output.storage.withUnsafeMutableBufferPointer { y in
                    columns.withUnsafeMutableBufferPointer { buffer in
                        let lowered = buffer.baseAddress!
                        for n in 0..<input.shape[0] {
                            let image = x.baseAddress! + n * channels * height * width
                            let out = y.baseAddress! + n * c.outChannels * outHeight * outWidth
                            for o in 0..<c.outChannels {
                                (out + o * outHeight * outWidth).update(repeating: biases[o], count: outHeight * outWidth)
                            }
                            for firstRow in Swift.stride(from: 0, to: outHeight, by: bandRows) {
                                let rows = min(bandRows, outHeight - firstRow)
                                let band = rows * outWidth
                                // Column matrix rows (channel, ky, kx), columns (band row, output x).
                                for channel in 0..<channels {
                                    let plane = image + channel * height * width
                                    for ky in 0..<kernelHeight {
                                        for kx in 0..<kernelWidth {
                                            let row = lowered + ((channel * kernelHeight + ky) * kernelWidth + kx) * band
                                            let offset = kx - padding.left
                                            let inside = insideColumns(outWidth: outWidth, width: width, stride: stride,
                                                                       shift: offset)
                                            for r in 0..<rows {
                                                let target = row + r * outWidth
                                                let iy = (firstRow + r) * stride - padding.top + ky
                                                if iy < 0 || iy >= height {
                                                    target.update(repeating: 0, count: outWidth)
                                                    continue
                                                }
                                                lowerRow(plane + iy * width + offset, inside: inside, stride: stride,
                                                         outWidth: outWidth, into: target)
                                            }
                                        }
                                    }
                                }
                                BLAS.gemm(transposeA: false, transposeB: false, m: c.outChannels, n: band, k: depth,
                                          a: w.baseAddress!, lda: depth, b: lowered, ldb: band,
                                          beta: 1, c: out + firstRow * outWidth, ldc: outHeight * outWidth)
                            }
                        }
                    }
                }
            }
        }
    }

    /// Inference for small depths, one output row at a time: the kernel's input rows are split by column phase
    /// (column index modulo the stride, zero-padded), so that each tap reads a contiguous run, and each run of 16
    /// outputs of 4 channels accumulates in registers over every tap (4 weights broadcast, 2 vectors loaded per
    /// tap for 8 fused multiply-adds). Same sums as the sgemm path, in tap order: equal within rounding.
    private func forwardDirect(_ input: Tensor, into output: inout Tensor) {
        let c = convolution
        let (channels, height, width) = (input.shape[1], input.shape[2], input.shape[3])
        let (outHeight, outWidth) = (output.shape[2], output.shape[3])
        let (kernelHeight, kernelWidth, stride, padding) = (c.kernelHeight, c.kernelWidth, c.stride, c.padding)
        let depth = channels * kernelHeight * kernelWidth
        let outChannels = c.outChannels
        let blockWidth = 16
        let paddedOutWidth = (outWidth + blockWidth - 1) / blockWidth * blockWidth
        // Per tap row (channel, ky) and phase: paddedOutWidth + the kernel's reach in phase steps.
        let phaseLength = paddedOutWidth + (kernelWidth - 1) / stride + 1
        let phaseRows = channels * kernelHeight * stride
        if columns.count < phaseRows * phaseLength + 4 * paddedOutWidth {
            columns = [Float](repeating: 0, count: phaseRows * phaseLength + 4 * paddedOutWidth)
        }
        let biases = c.bias?.value.storage ?? [Float](repeating: 0, count: outChannels)
        let channelBlocks = (outChannels + 3) / 4
        input.storage.withUnsafeBufferPointer { x in
            c.weight.value.storage.withUnsafeBufferPointer { w in
                output.storage.withUnsafeMutableBufferPointer { y in
                    columns.withUnsafeMutableBufferPointer { buffer in
                        let phases = buffer.baseAddress!
                        let staging = phases + phaseRows * phaseLength  // 4 rows of paddedOutWidth
                        // Tap t = (channel, ky, kx) reads phases row (channel, ky, kx % stride) from kx / stride.
                        let tapStarts = (0..<depth).map { tap -> Int in
                            let kx = tap % kernelWidth, rowOfTap = tap / kernelWidth
                            return (rowOfTap * stride + kx % stride) * phaseLength + kx / stride
                        }
                        for n in 0..<input.shape[0] {
                            let image = x.baseAddress! + n * channels * height * width
                            let out = y.baseAddress! + n * outChannels * outHeight * outWidth
                            for oy in 0..<outHeight {
                                for channel in 0..<channels {
                                    for ky in 0..<kernelHeight {
                                        let iy = oy * stride - padding.top + ky
                                        let source = iy >= 0 && iy < height ? image + (channel * height + iy) * width : nil
                                        for phase in 0..<stride {
                                            let row = phases + ((channel * kernelHeight + ky) * stride + phase) * phaseLength
                                            // Entries j read column phase + j * stride - padding.left when inside.
                                            let shift = phase - padding.left
                                            let inside = source == nil ? 0..<0
                                                : insideColumns(outWidth: phaseLength, width: width, stride: stride, shift: shift)
                                            row.update(repeating: 0, count: inside.lowerBound)
                                            if let source {
                                                for j in inside { row[j] = source[j * stride + shift] }
                                            }
                                            (row + inside.upperBound).update(repeating: 0, count: phaseLength - inside.upperBound)
                                        }
                                    }
                                }
                                for block in 0..<channelBlocks {
                                    let first = block * 4
                                    let count = min(4, outChannels - first)
                                    // Missing channels of the last block repeat its last one (not stored).
                                    let (c0, c1, c2, c3) = (first, first + min(1, count - 1), first + min(2, count - 1),
                                                            first + min(3, count - 1))
                                    let (w0s, w1s, w2s, w3s) = (w.baseAddress! + c0 * depth, w.baseAddress! + c1 * depth,
                                                                w.baseAddress! + c2 * depth, w.baseAddress! + c3 * depth)
                                    for x0 in Swift.stride(from: 0, to: paddedOutWidth, by: blockWidth) {
                                        var a0 = SIMD8<Float>(repeating: biases[c0]), a1 = SIMD8<Float>(repeating: biases[c1])
                                        var a2 = SIMD8<Float>(repeating: biases[c2]), a3 = SIMD8<Float>(repeating: biases[c3])
                                        var (b0, b1, b2, b3) = (a0, a1, a2, a3)
                                        for tap in 0..<depth {
                                            let run = UnsafeRawPointer(phases + tapStarts[tap] + x0)
                                            let left = run.loadUnaligned(as: SIMD8<Float>.self)
                                            let right = run.loadUnaligned(fromByteOffset: 32, as: SIMD8<Float>.self)
                                            let w0 = SIMD8<Float>(repeating: w0s[tap]), w1 = SIMD8<Float>(repeating: w1s[tap])
                                            let w2 = SIMD8<Float>(repeating: w2s[tap]), w3 = SIMD8<Float>(repeating: w3s[tap])
                                            a0 = multiplyAdd(a0, left, w0); b0 = multiplyAdd(b0, right, w0)
                                            a1 = multiplyAdd(a1, left, w1); b1 = multiplyAdd(b1, right, w1)
                                            a2 = multiplyAdd(a2, left, w2); b2 = multiplyAdd(b2, right, w2)
                                            a3 = multiplyAdd(a3, left, w3); b3 = multiplyAdd(b3, right, w3)
                                        }
                                        let target = UnsafeMutableRawPointer(staging + x0)
                                        let rowBytes = paddedOutWidth * MemoryLayout<Float>.stride
                                        target.storeBytes(of: a0, as: SIMD8<Float>.self)
                                        target.storeBytes(of: b0, toByteOffset: 32, as: SIMD8<Float>.self)
                                        target.storeBytes(of: a1, toByteOffset: rowBytes, as: SIMD8<Float>.self)
                                        target.storeBytes(of: b1, toByteOffset: rowBytes + 32, as: SIMD8<Float>.self)
                                        target.storeBytes(of: a2, toByteOffset: 2 * rowBytes, as: SIMD8<Float>.self)
                                        target.storeBytes(of: b2, toByteOffset: 2 * rowBytes + 32, as: SIMD8<Float>.self)
                                        target.storeBytes(of: a3, toByteOffset: 3 * rowBytes, as: SIMD8<Float>.self)
                                        target.storeBytes(of: b3, toByteOffset: 3 * rowBytes + 32, as: SIMD8<Float>.self)
                                    }
                                    for k in 0..<count {
                                        (out + ((first + k) * outHeight + oy) * outWidth)
                                            .update(from: staging + k * paddedOutWidth, count: outWidth)
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
