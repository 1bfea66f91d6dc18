/// Output size of a pooling window sliding over one axis. In ceil mode a last, partial window is kept when it
/// starts inside the input or left padding (PyTorch's ceil_mode rule).
private func pooledSize(_ size: Int, kernel: Int, stride: Int, padding: Int, ceilMode: Bool = false) -> Int {
    let span = size + 2 * padding - kernel
    guard ceilMode else { return span / stride + 1 }
    var count = (span + stride - 1) / stride + 1
    if (count - 1) * stride >= size + padding { count -= 1 }
    return count
}

/// Max over kernel x kernel windows; padding counts as -infinity. Remembers the winners for backward.
/// `ceilMode` rounds the output size up (PyTorch's ceil_mode=True): the last window may hang over the edge.
public final class MaxPool2d: Layer {
    public let kernelSize: Int
    public let stride: Int
    public let padding: Int
    public let ceilMode: Bool
    private var winners: [Int32] = []
    private var inputShape: [Int] = []

    public init(kernelSize: Int, stride: Int? = nil, padding: Int = 0, ceilMode: Bool = false) {
        self.kernelSize = kernelSize
        self.stride = stride ?? kernelSize
        self.padding = padding
        self.ceilMode = ceilMode
    }

    public func forward(_ input: Tensor, training: Bool) -> Tensor {
        precondition(input.rank == 4, "MaxPool2d expects [N, C, H, W]")
        let (planes, height, width) = (input.shape[0] * input.shape[1], input.shape[2], input.shape[3])
        let (outHeight, outWidth) = outputSize(height: height, width: width)
        let outputShape = [input.shape[0], input.shape[1], outHeight, outWidth]
        inputShape = input.shape
        let count = outputShape.reduce(1, *)
        if winners.count != (training ? count : 0) { winners = [Int32](repeating: -1, count: training ? count : 0) }
        // Every window writes its output.
        return Tensor(uninitialized: outputShape) { y in
            input.storage.withUnsafeBufferPointer { x in
                winners.withUnsafeMutableBufferPointer { best in
                    // Slices of whole planes on the workers; a slice's winners count from its own first plane,
                    // so they are moved by that plane's offset afterwards.
                    let shared = UncheckedSendable((x.baseAddress!, y.baseAddress!, training ? best.baseAddress : nil))
                    Parallelism.forEachSlice(planes, minimumSlice: 1 + (1 << 14) / max(height * width, 1)) { slice in
                        let (x, y, best) = shared.value
                        let (inOffset, outOffset) = (slice.lowerBound * height * width, slice.lowerBound * outHeight * outWidth)
                        self.pool(x + inOffset, planes: slice.count, height: height, width: width, into: y + outOffset,
                                  winners: best.map { $0 + outOffset })
                        if let best, inOffset > 0 {
                            let shift = Int32(inOffset)
                            for index in outOffset..<(slice.upperBound * outHeight * outWidth) where best[index] >= 0 {
                                best[index] += shift
                            }
                        }
                    }
                }
            }
        }
    }

    /// Output height and width for an input of height x width.
    func outputSize(height: Int, width: Int) -> (height: Int, width: Int) {
        (pooledSize(height, kernel: kernelSize, stride: stride, padding: padding, ceilMode: ceilMode),
         pooledSize(width, kernel: kernelSize, stride: stride, padding: padding, ceilMode: ceilMode))
    }

    /// The kernel that forward and inference share: pools `planes` planes of height x width from `x` into `y`,
    /// recording each window's winning input index in `best` when given (training).
    func pool(_ x: UnsafePointer<Float>, planes: Int, height: Int, width: Int, into y: UnsafeMutablePointer<Float>,
              winners best: UnsafeMutablePointer<Int32>?) {
        let (outHeight, outWidth) = outputSize(height: height, width: width)
        if best == nil && stride == 2 && padding == 0 && (kernelSize == 2 || kernelSize == 3) {
            poolStrideTwo(x, planes: planes, height: height, width: width, into: y)
            return
        }
        // Partial windows (ceil mode on odd sizes) take the general loop, which skips what lies outside.
        if kernelSize == 2 && stride == 2 && padding == 0 && 2 * outHeight <= height && 2 * outWidth <= width {
            pool2x2(x, planes: planes, height: height, width: width, into: y, winners: best)
            return
        }
        if best == nil {
            poolClamped(x, planes: planes, height: height, width: width, into: y)
            return
        }
        for plane in 0..<planes {
            let inBase = plane * height * width
            let outBase = plane * outHeight * outWidth
            for oy in 0..<outHeight {
                for ox in 0..<outWidth {
                    var largest = -Float.infinity
                    var where_ = -1
                    for ky in 0..<kernelSize {
                        let iy = oy * stride - padding + ky
                        if iy < 0 || iy >= height { continue }
                        for kx in 0..<kernelSize {
                            let ix = ox * stride - padding + kx
                            if ix < 0 || ix >= width { continue }
                            let value = x[inBase + iy * width + ix]
                            if value > largest || where_ < 0 { largest = value; where_ = inBase + iy * width + ix }
                        }
                    }
                    y[outBase + oy * outWidth + ox] = largest
                    if let best { best[outBase + oy * outWidth + ox] = Int32(where_) }
                }
            }
        }
    }

    /// The common 2x2, stride 2 case without branches on the data (they mispredict on every other window).
    private func pool2x2(_ x: UnsafePointer<Float>, planes: Int, height: Int, width: Int,
                         into y: UnsafeMutablePointer<Float>, winners best: UnsafeMutablePointer<Int32>?) {
        let (outHeight, outWidth) = outputSize(height: height, width: width)
        for plane in 0..<planes {
            let inBase = plane * height * width
            for oy in 0..<outHeight {
                let top = inBase + 2 * oy * width
                let outRow = (plane * outHeight + oy) * outWidth
                for ox in 0..<outWidth {
                    let i0 = top + 2 * ox, i1 = i0 + 1, i2 = i0 + width, i3 = i2 + 1
                    let upperIndex = x[i1] > x[i0] ? i1 : i0
                    let lowerIndex = x[i3] > x[i2] ? i3 : i2
                    let winner = x[lowerIndex] > x[upperIndex] ? lowerIndex : upperIndex
                    y[outRow + ox] = x[winner]
                    if let best { best[outRow + ox] = Int32(winner) }
                }
            }
        }
    }

    /// Inference for 2x2 and 3x3 windows at stride 2 without padding, ceil mode included (MTCNN's and P-Net's
    /// pools): per output row, the maxima down the window's rows for every column, then across each window's
    /// columns, both loops the compiler vectorises (a running maximum shared between neighbouring windows did
    /// not, and made these pools 14% of MTCNN on a group photo). A window cut short by the bottom edge reads its
    /// last row again (max(a, a) = a), one cut short by the right edge takes the columns it has.
    private func poolStrideTwo(_ x: UnsafePointer<Float>, planes: Int, height: Int, width: Int,
                               into y: UnsafeMutablePointer<Float>) {
        let (outHeight, outWidth) = outputSize(height: height, width: width)
        let fullColumns = width >= kernelSize ? min(outWidth, (width - kernelSize) / 2 + 1) : 0
        withUnsafeTemporaryAllocation(of: Float.self, capacity: width) { buffer in
            let columns = buffer.baseAddress!
            for plane in 0..<planes {
                let input = x + plane * height * width
                for oy in 0..<outHeight {
                    let r0 = input + 2 * oy * width
                    let r1 = 2 * oy + 1 < height ? r0 + width : r0
                    let r2 = kernelSize == 3 && 2 * oy + 2 < height ? r0 + 2 * width : r1
                    for ix in 0..<width { columns[ix] = larger(larger(r0[ix], r1[ix]), r2[ix]) }
                    let target = y + (plane * outHeight + oy) * outWidth
                    if kernelSize == 2 {
                        for ox in 0..<fullColumns { target[ox] = larger(columns[2 * ox], columns[2 * ox + 1]) }
                    } else {
                        for ox in 0..<fullColumns {
                            target[ox] = larger(larger(columns[2 * ox], columns[2 * ox + 1]), columns[2 * ox + 2])
                        }
                    }
                    for ox in fullColumns..<outWidth {
                        var largest = -Float.infinity
                        for ix in (2 * ox)..<min(2 * ox + kernelSize, width) { largest = larger(largest, columns[ix]) }
                        target[ox] = largest
                    }
                }
            }
        }
    }

    /// Inference (no winners to record): each window clamped to the input once, then a branch-free max over what
    /// is left (padding counts as -infinity). The general loop's per-tap bounds checks and winner bookkeeping made
    /// MTCNN's 3x3 stride-2 pools the detector's largest cost. Allocates nothing.
    private func poolClamped(_ x: UnsafePointer<Float>, planes: Int, height: Int, width: Int,
                             into y: UnsafeMutablePointer<Float>) {
        let (outHeight, outWidth) = outputSize(height: height, width: width)
        for plane in 0..<planes {
            let input = x + plane * height * width
            let output = y + plane * outHeight * outWidth
            for oy in 0..<outHeight {
                let top = max(oy * stride - padding, 0), bottom = max(top, min(oy * stride - padding + kernelSize, height))
                let target = output + oy * outWidth
                for ox in 0..<outWidth {
                    let left = max(ox * stride - padding, 0), right = max(left, min(ox * stride - padding + kernelSize, width))
                    var largest = -Float.infinity
                    for iy in top..<bottom {
                        let line = input + iy * width
                        for ix in left..<right { largest = max(largest, line[ix]) }
                    }
                    target[ox] = largest
                }
            }
        }
    }

    public func backward(_ dOutput: Tensor) -> Tensor {
        precondition(winners.count == dOutput.count, "MaxPool2d.backward needs a training-mode forward")
        let planes = inputShape[0] * inputShape[1]
        let (inPlane, outPlane) = (inputShape[2] * inputShape[3], dOutput.count / max(planes, 1))
        let count = inputShape.reduce(1, *)
        // Every winner lies in its window's plane: slices of whole planes write disjoint parts of dInput.
        let dInput = [Float](unsafeUninitializedCapacity: count) { dx, initialized in
            dOutput.storage.withUnsafeBufferPointer { dy in
                winners.withUnsafeBufferPointer { best in
                    let shared = UncheckedSendable((dx.baseAddress!, dy.baseAddress!, best.baseAddress!))
                    Parallelism.forEachSlice(planes, minimumSlice: 1 + (1 << 14) / max(inPlane, 1)) { slice in
                        let (dx, dy, best) = shared.value
                        (dx + slice.lowerBound * inPlane).initialize(repeating: 0, count: slice.count * inPlane)
                        // Windows that saw only padding have no winner (-1).
                        for index in (slice.lowerBound * outPlane)..<(slice.upperBound * outPlane) where best[index] >= 0 {
                            dx[Int(best[index])] += dy[index]
                        }
                    }
                }
            }
            initialized = count
        }
        return Tensor(shape: inputShape, storage: dInput)
    }
}

extension MaxPool2d: InferenceLayer {
    func inferenceOutputShape(for itemShape: [Int]) -> [Int] {
        precondition(itemShape.count == 3, "MaxPool2d expects [N, C, H, W]")
        let (outHeight, outWidth) = outputSize(height: itemShape[1], width: itemShape[2])
        return [itemShape[0], outHeight, outWidth]
    }

    func infer(_ input: UnsafePointer<Float>, itemShape: [Int], batch: Int,
               into output: UnsafeMutablePointer<Float>, scratch: [ConvolutionScratch]) {
        pool(input, planes: batch * itemShape[0], height: itemShape[1], width: itemShape[2], into: output, winners: nil)
    }
}

/// Mean over kernel x kernel windows. Padded positions are left out of the mean (TFLite's convention)
/// unless `countsPadding` is set (PyTorch's default).
public final class AvgPool2d: Layer {
    public let kernelSize: Int
    public let stride: Int
    public let padding: Int
    public let countsPadding: Bool
    private var inputShape: [Int] = []

    public init(kernelSize: Int, stride: Int? = nil, padding: Int = 0, countsPadding: Bool = false) {
        self.kernelSize = kernelSize
        self.stride = stride ?? kernelSize
        self.padding = padding
        self.countsPadding = countsPadding
    }

    /// Visits each output with the input indices of its window and the divisor.
    private func forEachWindow(_ shape: [Int], _ body: (_ output: Int, _ inputs: [Int], _ divisor: Float) -> Void) {
        let (planes, height, width) = (shape[0] * shape[1], shape[2], shape[3])
        let outHeight = pooledSize(height, kernel: kernelSize, stride: stride, padding: padding)
        let outWidth = pooledSize(width, kernel: kernelSize, stride: stride, padding: padding)
        var window: [Int] = []
        window.reserveCapacity(kernelSize * kernelSize)
        for plane in 0..<planes {
            for oy in 0..<outHeight {
                for ox in 0..<outWidth {
                    window.removeAll(keepingCapacity: true)
                    for ky in 0..<kernelSize {
                        let iy = oy * stride - padding + ky
                        if iy < 0 || iy >= height { continue }
                        for kx in 0..<kernelSize {
                            let ix = ox * stride - padding + kx
                            if ix >= 0 && ix < width { window.append((plane * height + iy) * width + ix) }
                        }
                    }
                    let divisor = Float(countsPadding ? kernelSize * kernelSize : max(window.count, 1))
                    body((plane * outHeight + oy) * outWidth + ox, window, divisor)
                }
            }
        }
    }

    public func forward(_ input: Tensor, training: Bool) -> Tensor {
        precondition(input.rank == 4, "AvgPool2d expects [N, C, H, W]")
        inputShape = input.shape
        let outHeight = pooledSize(input.shape[2], kernel: kernelSize, stride: stride, padding: padding)
        let outWidth = pooledSize(input.shape[3], kernel: kernelSize, stride: stride, padding: padding)
        var output = Tensor(zeros: [input.shape[0], input.shape[1], outHeight, outWidth])
        forEachWindow(input.shape) { out, inputs, divisor in
            var sum: Float = 0
            for index in inputs { sum += input.storage[index] }
            output.storage[out] = sum / divisor
        }
        return output
    }

    public func backward(_ dOutput: Tensor) -> Tensor {
        var dInput = Tensor(zeros: inputShape)
        forEachWindow(inputShape) { out, inputs, divisor in
            let share = dOutput.storage[out] / divisor
            for index in inputs { dInput.storage[index] += share }
        }
        return dInput
    }
}

/// [N, C, H, W] -> [N, C], the mean of each feature map.
public final class GlobalAveragePool: Layer {
    private var inputShape: [Int] = []

    public init() {}

    public func forward(_ input: Tensor, training: Bool) -> Tensor {
        precondition(input.rank == 4, "GlobalAveragePool expects [N, C, H, W]")
        inputShape = input.shape
        let planes = input.shape[0] * input.shape[1]
        let spatial = input.shape[2] * input.shape[3]
        var output = Tensor(zeros: [input.shape[0], input.shape[1]])
        input.storage.withUnsafeBufferPointer { x in
            output.storage.withUnsafeMutableBufferPointer { y in
                GlobalAveragePool.average(x.baseAddress!, planes: planes, spatial: spatial, into: y.baseAddress!)
            }
        }
        return output
    }

    /// The mean of each of `planes` planes of `spatial` values.
    static func average(_ x: UnsafePointer<Float>, planes: Int, spatial: Int, into y: UnsafeMutablePointer<Float>) {
        for plane in 0..<planes {
            var sum: Float = 0
            for s in 0..<spatial { sum += x[plane * spatial + s] }
            y[plane] = sum / Float(spatial)
        }
    }

    public func backward(_ dOutput: Tensor) -> Tensor {
        let spatial = inputShape[2] * inputShape[3]
        var dInput = Tensor(zeros: inputShape)
        dInput.storage.withUnsafeMutableBufferPointer { dx in
            for plane in 0..<dOutput.count {
                let share = dOutput.storage[plane] / Float(spatial)
                for s in 0..<spatial { dx[plane * spatial + s] = share }
            }
        }
        return dInput
    }
}

extension GlobalAveragePool: InferenceLayer {
    func inferenceOutputShape(for itemShape: [Int]) -> [Int] {
        precondition(itemShape.count == 3, "GlobalAveragePool expects [N, C, H, W]")
        return [itemShape[0]]
    }

    func infer(_ input: UnsafePointer<Float>, itemShape: [Int], batch: Int,
               into output: UnsafeMutablePointer<Float>, scratch: [ConvolutionScratch]) {
        GlobalAveragePool.average(input, planes: batch * itemShape[0], spatial: itemShape[1] * itemShape[2], into: output)
    }
}
