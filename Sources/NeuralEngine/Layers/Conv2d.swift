/// Zero padding on each side of an image, in pixels.
public struct Padding: Sendable, Equatable {
    public var top: Int, left: Int, bottom: Int, right: Int

    public init(top: Int, left: Int, bottom: Int, right: Int) {
        self.top = top; self.left = left; self.bottom = bottom; self.right = right
    }

    public static func uniform(_ amount: Int) -> Padding {
        Padding(top: amount, left: amount, bottom: amount, right: amount)
    }

    /// Output size of a kernel sliding with `stride` over an image padded by this amount.
    public func outputSize(height: Int, width: Int, kernelHeight: Int, kernelWidth: Int, stride: Int) -> (height: Int, width: Int) {
        ((height + top + bottom - kernelHeight) / stride + 1, (width + left + right - kernelWidth) / stride + 1)
    }
}

/// 2-D convolution (cross-correlation) over NCHW tensors, with stride, padding and groups
/// (groups == channels is a depthwise convolution). Lowered to im2col + sgemm for the batch at once,
/// so even the 3x3 maps of the last stage make one well-shaped matrix product.
public final class Conv2d: Layer {
    public let inChannels: Int
    public let outChannels: Int
    public let kernelHeight: Int
    public let kernelWidth: Int
    public let stride: Int
    public let padding: Padding
    public let groups: Int
    /// [outChannels, inChannels / groups, kernelHeight, kernelWidth]
    public let weight: Parameter
    /// [outChannels], or nil for a convolution without bias (followed by batch norm).
    public let bias: Parameter?

    /// The input of the last training-mode forward; backward recomputes im2col from it chunk by chunk.
    private var input: Tensor?
    private var inputShape: [Int] = []
    /// One scratch area per worker, reused between calls: steady-state inference allocates no column buffer.
    private var scratch: [ConvolutionScratch] = []
    /// Winograd-transformed weights for inference (WinogradConvolution.swift), rebuilt when the weights change.
    let winogradWeights = WinogradWeights()

    /// Columns (images x output pixels) per chunk: big enough for efficient products, small enough for the cache.
    static let columnsPerChunk = 4096

    public init(inChannels: Int, outChannels: Int, kernelSize: Int, stride: Int = 1,
                padding: Padding = .uniform(0), groups: Int = 1, bias: Bool = true,
                generator: inout RandomGenerator) {
        precondition(inChannels % groups == 0 && outChannels % groups == 0, "channels must divide into groups")
        self.inChannels = inChannels
        self.outChannels = outChannels
        self.kernelHeight = kernelSize
        self.kernelWidth = kernelSize
        self.stride = stride
        self.padding = padding
        self.groups = groups
        let fanIn = inChannels / groups * kernelSize * kernelSize
        // He initialisation keeps activation variance steady through ReLUs.
        self.weight = Parameter(
            Tensor(normal: [outChannels, inChannels / groups, kernelSize, kernelSize],
                   standardDeviation: (2 / Float(fanIn)).squareRoot(), generator: &generator),
            decays: true)
        self.bias = bias ? Parameter(Tensor(zeros: [outChannels])) : nil
    }

    /// Builds a convolution around given weights (loading, folding).
    public init(weight: Tensor, bias: Tensor?, stride: Int, padding: Padding, groups: Int) {
        precondition(weight.rank == 4, "convolution weight must be [out, in/groups, kh, kw]")
        self.outChannels = weight.shape[0]
        self.inChannels = weight.shape[1] * groups
        self.kernelHeight = weight.shape[2]
        self.kernelWidth = weight.shape[3]
        self.stride = stride
        self.padding = padding
        self.groups = groups
        self.weight = Parameter(weight, decays: true)
        self.bias = bias.map { Parameter($0) }
    }

    public var namedParameters: [(name: String, parameter: Parameter)] { weightAndBias(weight, bias) }

    public func outputSize(height: Int, width: Int) -> (height: Int, width: Int) {
        padding.outputSize(height: height, width: width, kernelHeight: kernelHeight, kernelWidth: kernelWidth, stride: stride)
    }

    /// Geometry of `images` images of height x width.
    private func geometry(images: Int, height: Int, width: Int) -> ConvolutionGeometry {
        let (outHeight, outWidth) = outputSize(height: height, width: width)
        return ConvolutionGeometry(
            batch: images, channels: inChannels, height: height, width: width,
            groups: groups, kernelHeight: kernelHeight, kernelWidth: kernelWidth, stride: stride,
            padding: padding, outHeight: outHeight, outWidth: outWidth)
    }

    /// Geometry of `images` images of the current input size.
    private func geometry(images: Int) -> ConvolutionGeometry {
        geometry(images: images, height: inputShape[2], width: inputShape[3])
    }

    /// Splits a batch into chunks of whole images with `pixels` output pixels each, in whole rounds of `workers`
    /// chunks: the 6x6 maps of the last stage made one chunk of 64 images, which kept the second core idle for
    /// 160 ms of a 640 ms training step. Balancing only shrinks chunks, so scratch sized for workers = 1 fits.
    private static func chunking(batch: Int, pixels: Int, workers: Int = 1) -> (imagesPerChunk: Int, chunks: Int) {
        let largest = max(1, min(batch, columnsPerChunk / max(pixels, 1)))
        guard workers > 1 else { return (largest, (batch + largest - 1) / largest) }
        let rounds = max(1, ((batch + largest - 1) / largest + workers - 1) / workers)
        let imagesPerChunk = max(1, (batch + rounds * workers - 1) / (rounds * workers))
        return (imagesPerChunk, (batch + imagesPerChunk - 1) / imagesPerChunk)
    }

    /// Chunks of the current batch, making sure every worker has its scratch area.
    private func plan() -> (imagesPerChunk: Int, chunks: Int) {
        let (imagesPerChunk, chunks) = Conv2d.chunking(batch: inputShape[0], pixels: geometry(images: 1).batchPixels,
                                                       workers: Parallelism.workers)
        while scratch.count < min(Parallelism.workers, chunks) { scratch.append(ConvolutionScratch()) }
        return (imagesPerChunk, chunks)
    }

    /// Runs `body` with the bias values, or nil for a convolution without bias.
    private func withBias<Result>(_ body: (UnsafePointer<Float>?) -> Result) -> Result {
        guard let bias else { return body(nil) }
        return bias.value.storage.withUnsafeBufferPointer { body($0.baseAddress!) }
    }

    /// The forward product that training and inference share: `batch` images [inChannels, height, width] from
    /// `source` to [outChannels, outHeight, outWidth] in `out`. Chunks of whole images go to the workers, worker w
    /// using `areas[w]` (one area per worker needed) for im2col + sgemm per group, then the product is transposed
    /// to NCHW with the bias added. `balance` > 1 cuts the chunks in whole rounds of that many (training);
    /// inference keeps its chunks, so a small batch stays on the calling thread and allocates nothing.
    func convolve(_ source: UnsafePointer<Float>, batch: Int, height: Int, width: Int,
                  into out: UnsafeMutablePointer<Float>, areas: [ConvolutionScratch], balance: Int = 1,
                  activation: OutputActivation = .identity) {
        let one = geometry(images: 1, height: height, width: width)
        let (imagesPerChunk, chunks) = Conv2d.chunking(batch: batch, pixels: one.batchPixels,
                                                       workers: min(balance, areas.count))
        let workers = min(Parallelism.workers, chunks, areas.count)
        precondition(workers > 0, "Conv2d needs a scratch area")
        let pixels = one.batchPixels
        let outPerGroup = outChannels / groups
        let inputImage = inChannels * height * width

        weight.value.storage.withUnsafeBufferPointer { weights in
            withBias { biases in
                let shared = UncheckedSendable((source, weights.baseAddress!, out, biases))
                Parallelism.forEach(chunks, workers: workers) { chunk in
                    let (source, weights, out, biases) = shared.value
                    let first = chunk * imagesPerChunk
                    let count = min(imagesPerChunk, batch - first)
                    let g = self.geometry(images: count, height: height, width: width)
                    let area = areas[chunk % workers]
                    let columns = area.columns(g.groups * g.rowsPerGroup * g.batchPixels)
                    let product = area.product(self.outChannels * g.batchPixels)
                    for group in 0..<self.groups {
                        g.im2col(source + first * inputImage, group: group,
                                 into: columns + group * g.rowsPerGroup * g.batchPixels)
                        BLAS.gemm(transposeA: false, transposeB: false,
                                  m: outPerGroup, n: g.batchPixels, k: g.rowsPerGroup,
                                  a: weights + group * outPerGroup * g.rowsPerGroup, lda: g.rowsPerGroup,
                                  b: columns + group * g.rowsPerGroup * g.batchPixels, ldb: g.batchPixels,
                                  beta: 0, c: product + group * outPerGroup * g.batchPixels, ldc: g.batchPixels)
                    }
                    // [outChannels, images * pixels] -> [images, outChannels, pixels], adding the bias (and
                    // applying a folded activation).
                    func transpose<Rectifier: ChannelRectifier>(_ rectifier: (Int) -> Rectifier) {
                        for n in 0..<count {
                            for channel in 0..<self.outChannels {
                                let from = product + channel * g.batchPixels + n * pixels
                                let to = out + ((first + n) * self.outChannels + channel) * pixels
                                let shift = biases?[channel] ?? 0
                                let rectify = rectifier(channel)
                                for p in 0..<pixels { to[p] = rectify(from[p] + shift) }
                            }
                        }
                    }
                    activation.dispatch(identity: transpose, relu: transpose, prelu: transpose)
                }
            }
        }
    }

    public func forward(_ input: Tensor, training: Bool) -> Tensor {
        precondition(input.rank == 4 && input.shape[1] == inChannels,
                     "Conv2d expects [N, \(inChannels), H, W], got \(input.shape)")
        inputShape = input.shape
        let one = geometry(images: 1)
        precondition(one.outHeight > 0 && one.outWidth > 0, "input \(input.shape) too small for the kernel")
        _ = plan()
        let batch = input.shape[0]
        var output = Tensor(zeros: [batch, outChannels, one.outHeight, one.outWidth])
        input.storage.withUnsafeBufferPointer { source in
            output.storage.withUnsafeMutableBufferPointer { out in
                convolve(source.baseAddress!, batch: batch, height: one.height, width: one.width,
                         into: out.baseAddress!, areas: scratch, balance: Parallelism.workers)
            }
        }
        self.input = training ? input : nil
        return output
    }

    public func backward(_ dOutput: Tensor) -> Tensor {
        guard let input else { preconditionFailure("Conv2d.backward needs a training-mode forward first") }
        inputShape = input.shape
        let one = geometry(images: 1)
        let batch = inputShape[0]
        let pixels = one.outHeight * one.outWidth
        let outPerGroup = outChannels / groups
        let inputImage = inChannels * one.height * one.width
        precondition(dOutput.shape == [batch, outChannels, one.outHeight, one.outWidth], "dOutput shape \(dOutput.shape)")
        let (imagesPerChunk, chunks) = plan()
        let workers = Array(scratch.prefix(min(Parallelism.workers, chunks)))
        for area in workers { area.clearGradients(weights: weight.value.count, biases: outChannels) }
        var dInput = Tensor(zeros: inputShape)

        input.storage.withUnsafeBufferPointer { source in
            weight.value.storage.withUnsafeBufferPointer { weights in
                dOutput.storage.withUnsafeBufferPointer { dOut in
                    dInput.storage.withUnsafeMutableBufferPointer { dIn in
                        let shared = UncheckedSendable((source.baseAddress!, weights.baseAddress!, dOut.baseAddress!,
                                                        dIn.baseAddress!))
                        Parallelism.forEach(chunks) { chunk in
                            let (source, weights, dOut, dIn) = shared.value
                            let first = chunk * imagesPerChunk
                            let count = min(imagesPerChunk, batch - first)
                            let g = self.geometry(images: count)
                            let area = workers[chunk % workers.count]
                            let columns = area.columns(g.groups * g.rowsPerGroup * g.batchPixels)
                            let dProduct = area.product(self.outChannels * g.batchPixels)
                            let dColumns = area.dColumns(g.rowsPerGroup * g.batchPixels)
                            // [images, outChannels, pixels] -> [outChannels, images * pixels]
                            for n in 0..<count {
                                for channel in 0..<self.outChannels {
                                    let from = dOut + ((first + n) * self.outChannels + channel) * pixels
                                    let to = dProduct + channel * g.batchPixels + n * pixels
                                    for p in 0..<pixels { to[p] = from[p] }
                                }
                            }
                            area.accumulateBiasGradient(dProduct, channels: self.outChannels, columns: g.batchPixels)
                            for group in 0..<self.groups {
                                let dProductGroup = dProduct + group * outPerGroup * g.batchPixels
                                let columnsGroup = columns + group * g.rowsPerGroup * g.batchPixels
                                g.im2col(source + first * inputImage, group: group, into: columnsGroup)
                                // dWeight += dProduct x columns^T
                                BLAS.gemm(transposeA: false, transposeB: true,
                                          m: outPerGroup, n: g.rowsPerGroup, k: g.batchPixels,
                                          a: dProductGroup, lda: g.batchPixels, b: columnsGroup, ldb: g.batchPixels,
                                          beta: 1, c: area.dWeight + group * outPerGroup * g.rowsPerGroup,
                                          ldc: g.rowsPerGroup)
                                // dColumns = weight^T x dProduct, folded back onto the images (col2im)
                                BLAS.gemm(transposeA: true, transposeB: false,
                                          m: g.rowsPerGroup, n: g.batchPixels, k: outPerGroup,
                                          a: weights + group * outPerGroup * g.rowsPerGroup, lda: g.rowsPerGroup,
                                          b: dProductGroup, ldb: g.batchPixels,
                                          beta: 0, c: dColumns, ldc: g.batchPixels)
                                g.col2im(dColumns, group: group, into: dIn + first * inputImage)
                            }
                        }
                    }
                }
            }
        }
        // Sum the workers' partial gradients (fixed order: the result does not depend on scheduling).
        weight.gradient.storage.withUnsafeMutableBufferPointer { dWeight in
            for area in workers {
                for index in 0..<dWeight.count { dWeight[index] += area.dWeight[index] }
            }
        }
        if let bias {
            for area in workers {
                for channel in 0..<outChannels { bias.gradient.storage[channel] += area.dBias[channel] }
            }
        }
        return dInput
    }
}

extension Conv2d: InferenceLayer {
    func inferenceOutputShape(for itemShape: [Int]) -> [Int] {
        precondition(itemShape.count == 3 && itemShape[0] == inChannels,
                     "Conv2d expects [\(inChannels), H, W] items, got \(itemShape)")
        let (outHeight, outWidth) = outputSize(height: itemShape[1], width: itemShape[2])
        precondition(outHeight > 0 && outWidth > 0, "input \(itemShape) too small for the kernel")
        return [outChannels, outHeight, outWidth]
    }

    /// Grows every area to the largest chunk a batch of up to `batch` images makes.
    func reserveInferenceScratch(for itemShape: [Int], batch: Int, in areas: [ConvolutionScratch]) {
        if usesWinograd(height: itemShape[1], width: itemShape[2]) {
            return reserveWinogradScratch(height: itemShape[1], width: itemShape[2], batch: batch, in: areas)
        }
        let one = geometry(images: 1, height: itemShape[1], width: itemShape[2])
        let g = geometry(images: Conv2d.chunking(batch: batch, pixels: one.batchPixels).imagesPerChunk,
                         height: itemShape[1], width: itemShape[2])
        for area in areas {
            _ = area.columns(g.groups * g.rowsPerGroup * g.batchPixels)
            _ = area.product(outChannels * g.batchPixels)
        }
    }

    func infer(_ input: UnsafePointer<Float>, itemShape: [Int], batch: Int,
               into output: UnsafeMutablePointer<Float>, scratch: [ConvolutionScratch]) {
        infer(input, itemShape: itemShape, batch: batch, into: output, scratch: scratch, activation: .identity)
    }

    /// `infer` followed by `activation`, applied as the outputs are written (an `InferencePlan`'s folded ReLU or
    /// PReLU).
    func infer(_ input: UnsafePointer<Float>, itemShape: [Int], batch: Int,
               into output: UnsafeMutablePointer<Float>, scratch: [ConvolutionScratch], activation: OutputActivation) {
        if usesWinograd(height: itemShape[1], width: itemShape[2]) {
            return winogradConvolve(input, batch: batch, height: itemShape[1], width: itemShape[2], into: output,
                                    areas: scratch, activation: activation)
        }
        convolve(input, batch: batch, height: itemShape[1], width: itemShape[2], into: output, areas: scratch,
                 activation: activation)
    }
}

/// A worker's buffers for one convolution layer (or, in an `InferencePlan`, for every convolution of the plan).
/// Grown on demand, never shrunk, freed with their owner.
final class ConvolutionScratch {
    private var buffers: [UnsafeMutableBufferPointer<Float>] = [.init(start: nil, count: 0), .init(start: nil, count: 0),
                                                                 .init(start: nil, count: 0), .init(start: nil, count: 0),
                                                                 .init(start: nil, count: 0)]

    deinit { for buffer in buffers { buffer.deallocate() } }

    private func buffer(_ slot: Int, _ count: Int) -> UnsafeMutablePointer<Float> {
        if buffers[slot].count < count {
            buffers[slot].deallocate()
            buffers[slot] = .allocate(capacity: count)
        }
        return buffers[slot].baseAddress!
    }

    func columns(_ count: Int) -> UnsafeMutablePointer<Float> { buffer(0, count) }
    func product(_ count: Int) -> UnsafeMutablePointer<Float> { buffer(1, count) }
    func dColumns(_ count: Int) -> UnsafeMutablePointer<Float> { buffer(2, count) }
    /// This worker's share of the weight and bias gradients (valid after `clearGradients`).
    var dWeight: UnsafeMutablePointer<Float> { buffers[3].baseAddress! }
    var dBias: UnsafeMutablePointer<Float> { buffers[4].baseAddress! }

    func clearGradients(weights: Int, biases: Int) {
        buffer(3, weights).update(repeating: 0, count: weights)
        buffer(4, biases).update(repeating: 0, count: biases)
    }

    func accumulateBiasGradient(_ dProduct: UnsafePointer<Float>, channels: Int, columns: Int) {
        for channel in 0..<channels {
            var sum: Float = 0
            let row = dProduct + channel * columns
            for index in 0..<columns { sum += row[index] }
            dBias[channel] += sum
        }
    }
}

/// The output columns ox whose input column ox * stride + shift lies inside 0..<width.
func insideColumns(outWidth: Int, width: Int, stride: Int, shift: Int) -> Range<Int> {
    let first = min(outWidth, max(0, (-shift + stride - 1) / stride))
    let lastInside = width - 1 - shift  // the largest ox * stride that stays inside
    let end = lastInside < 0 ? first : max(first, min(outWidth, lastInside / stride + 1))
    return first..<end
}

/// One row of im2col columns: zeros before and after `inside`, and in between a plain (strided) copy of `line`
/// (the input row, already offset by the kernel column), without a bounds test per pixel.
func lowerRow(_ line: UnsafePointer<Float>, inside: Range<Int>, stride: Int, outWidth: Int,
              into target: UnsafeMutablePointer<Float>) {
    for ox in 0..<inside.lowerBound { target[ox] = 0 }
    if stride == 1 {
        (target + inside.lowerBound).update(from: line + inside.lowerBound, count: inside.count)
    } else {
        for ox in inside { target[ox] = line[ox * stride] }
    }
    for ox in inside.upperBound..<outWidth { target[ox] = 0 }
}

/// Index arithmetic shared by im2col and its adjoint col2im.
/// Column matrix of one group: rows (channel, ky, kx), columns (image, outY, outX).
struct ConvolutionGeometry {
    let batch: Int, channels: Int, height: Int, width: Int
    let groups: Int, kernelHeight: Int, kernelWidth: Int, stride: Int
    let padding: Padding
    let outHeight: Int, outWidth: Int

    var channelsPerGroup: Int { channels / groups }
    var rowsPerGroup: Int { channelsPerGroup * kernelHeight * kernelWidth }
    var batchPixels: Int { batch * outHeight * outWidth }

    func im2col(_ input: UnsafePointer<Float>, group: Int, into columns: UnsafeMutablePointer<Float>) {
        let pixels = outHeight * outWidth
        for c in 0..<channelsPerGroup {
            for ky in 0..<kernelHeight {
                for kx in 0..<kernelWidth {
                    let row = (c * kernelHeight + ky) * kernelWidth + kx
                    let shift = kx - padding.left
                    let inside = insideColumns(outWidth: outWidth, width: width, stride: stride, shift: shift)
                    for n in 0..<batch {
                        let plane = input + ((n * channels + group * channelsPerGroup + c) * height) * width
                        let rowStart = columns + row * batchPixels + n * pixels
                        for oy in 0..<outHeight {
                            let target = rowStart + oy * outWidth
                            let iy = oy * stride - padding.top + ky
                            if iy < 0 || iy >= height {
                                for ox in 0..<outWidth { target[ox] = 0 }
                                continue
                            }
                            lowerRow(plane + iy * width + shift, inside: inside, stride: stride, outWidth: outWidth, into: target)
                        }
                    }
                }
            }
        }
    }

    /// Adjoint of im2col: accumulates column gradients back onto the input image.
    func col2im(_ columns: UnsafePointer<Float>, group: Int, into input: UnsafeMutablePointer<Float>) {
        let pixels = outHeight * outWidth
        for c in 0..<channelsPerGroup {
            for ky in 0..<kernelHeight {
                for kx in 0..<kernelWidth {
                    let row = (c * kernelHeight + ky) * kernelWidth + kx
                    for n in 0..<batch {
                        let plane = input + ((n * channels + group * channelsPerGroup + c) * height) * width
                        let rowStart = columns + row * batchPixels + n * pixels
                        for oy in 0..<outHeight {
                            let iy = oy * stride - padding.top + ky
                            if iy < 0 || iy >= height { continue }
                            let source = rowStart + oy * outWidth
                            let line = plane + iy * width
                            for ox in 0..<outWidth {
                                let ix = ox * stride - padding.left + kx
                                if ix >= 0 && ix < width { line[ix] += source[ox] }
                            }
                        }
                    }
                }
            }
        }
    }
}
