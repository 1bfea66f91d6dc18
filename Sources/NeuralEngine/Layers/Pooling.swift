/// Output size of a pooling window sliding over one axis.
private func pooledSize(_ size: Int, kernel: Int, stride: Int, padding: Int) -> Int {
    (size + 2 * padding - kernel) / stride + 1
}

/// Max over kernel x kernel windows; padding counts as -infinity. Remembers the winners for backward.
public final class MaxPool2d: Layer {
    public let kernelSize: Int
    public let stride: Int
    public let padding: Int
    private var winners: [Int32] = []
    private var inputShape: [Int] = []

    public init(kernelSize: Int, stride: Int? = nil, padding: Int = 0) {
        self.kernelSize = kernelSize
        self.stride = stride ?? kernelSize
        self.padding = padding
    }

    public func forward(_ input: Tensor, training: Bool) -> Tensor {
        precondition(input.rank == 4, "MaxPool2d expects [N, C, H, W]")
        let (planes, height, width) = (input.shape[0] * input.shape[1], input.shape[2], input.shape[3])
        let outHeight = pooledSize(height, kernel: kernelSize, stride: stride, padding: padding)
        let outWidth = pooledSize(width, kernel: kernelSize, stride: stride, padding: padding)
        var output = Tensor(zeros: [input.shape[0], input.shape[1], outHeight, outWidth])
        inputShape = input.shape
        winners = [Int32](repeating: -1, count: training ? output.count : 0)
        if kernelSize == 2 && stride == 2 && padding == 0 {
            pool2x2(input, into: &output, training: training)
            return output
        }
        input.storage.withUnsafeBufferPointer { x in
            output.storage.withUnsafeMutableBufferPointer { y in
                winners.withUnsafeMutableBufferPointer { best in
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
                                if training { best[outBase + oy * outWidth + ox] = Int32(where_) }
                            }
                        }
                    }
                }
            }
        }
        return output
    }

    /// The common 2x2, stride 2 case without branches on the data (they mispredict on every other window).
    private func pool2x2(_ input: Tensor, into output: inout Tensor, training: Bool) {
        let (planes, height, width) = (input.shape[0] * input.shape[1], input.shape[2], input.shape[3])
        let (outHeight, outWidth) = (output.shape[2], output.shape[3])
        input.storage.withUnsafeBufferPointer { x in
            output.storage.withUnsafeMutableBufferPointer { y in
                winners.withUnsafeMutableBufferPointer { best in
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
                                if training { best[outRow + ox] = Int32(winner) }
                            }
                        }
                    }
                }
            }
        }
    }

    public func backward(_ dOutput: Tensor) -> Tensor {
        precondition(winners.count == dOutput.count, "MaxPool2d.backward needs a training-mode forward")
        var dInput = Tensor(zeros: inputShape)
        dInput.storage.withUnsafeMutableBufferPointer { dx in
            dOutput.storage.withUnsafeBufferPointer { dy in
                winners.withUnsafeBufferPointer { best in
                    // Windows that saw only padding have no winner (-1).
                    for index in 0..<dy.count where best[index] >= 0 { dx[Int(best[index])] += dy[index] }
                }
            }
        }
        return dInput
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
            for plane in 0..<planes {
                var sum: Float = 0
                for s in 0..<spatial { sum += x[plane * spatial + s] }
                output.storage[plane] = sum / Float(spatial)
            }
        }
        return output
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
