/// Convolution (groups == 1) of single large images for inference: im2col and sgemm one band of output rows at
/// a time, so the column buffer stays in cache, and the product lands straight in the output plane (ldc = plane
/// size, no reordering). `Conv2d` lowers a whole image at once, which for a network's first layer (5x5 kernel,
/// 3 channels, 128 x 128 output) is 4.9 MB of columns per call.
/// Training goes through the wrapped `Conv2d`, which shares the parameters: same weights, same gradients.
public final class BandedConv2d: Layer {
    public let convolution: Conv2d
    private var columns: [Float] = []

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
}
