import NeuralEngine

/// The interpreter's own loops: the pass that finishes a 1x1 convolution (bias, folded residual, activation)
/// and max pooling, both on tensors the interpreter keeps between runs.
enum InterpreterKernels {
    /// Finishes rows `rows` of a 1x1 convolution's product in one pass: output plane o += bias[o], plus
    /// shortcut plane o for o < channels (max-pooled 2x2 with stride 2 when `pooled`; no shortcut is zero
    /// channels), then clamped to lower...upper.
    static func finish(_ output: inout Tensor, bias: [Float]?, shortcut: Tensor?, channels: Int, pooled: Bool,
                       lower: Float, upper: Float, rows: Range<Int>) {
        let (batch, outChannels, height, width) = (output.shape[0], output.shape[1], output.shape[2], output.shape[3])
        let shortcut = shortcut ?? Tensor(zeros: [batch, 0, height, width])
        let (shortcutChannels, sourceHeight, sourceWidth) = (shortcut.shape[1], shortcut.shape[2], shortcut.shape[3])
        precondition(shortcut.shape[0] == batch && channels <= min(shortcutChannels, outChannels)
                     && (pooled ? sourceHeight >= 2 * height && sourceWidth >= 2 * width
                                : sourceHeight == height && sourceWidth == width),
                     "shortcut \(shortcut.shape) does not fit output \(output.shape)")
        precondition(rows.lowerBound >= 0 && rows.upperBound <= height, "rows \(rows) outside 0..<\(height)")
        let plane = height * width
        let (start, count) = (rows.lowerBound * width, rows.count * width)
        @inline(__always) func clamp(_ value: Float) -> Float { min(max(value, lower), upper) }
        shortcut.storage.withUnsafeBufferPointer { source in
            output.storage.withUnsafeMutableBufferPointer { target in
                for n in 0..<batch {
                    for o in 0..<outChannels {
                        let to = target.baseAddress! + (n * outChannels + o) * plane
                        let shift = bias?[o] ?? 0
                        guard o < channels else {
                            for index in start..<(start + count) { to[index] = clamp(to[index] + shift) }
                            continue
                        }
                        let from = source.baseAddress! + (n * shortcutChannels + o) * sourceHeight * sourceWidth
                        if pooled {
                            for oy in rows {
                                let top = from + 2 * oy * sourceWidth, bottom = top + sourceWidth
                                let line = to + oy * width
                                for ox in 0..<width {
                                    let pooled = larger(larger(top[2 * ox], top[2 * ox + 1]),
                                                        larger(bottom[2 * ox], bottom[2 * ox + 1]))
                                    line[ox] = clamp(line[ox] + shift + pooled)
                                }
                            }
                        } else {
                            for index in start..<(start + count) { to[index] = clamp(to[index] + shift + from[index]) }
                        }
                    }
                }
            }
        }
    }


    /// MAX_POOL_2D without padding (VALID), square kernel and stride.
    static func maxPool(_ input: Tensor, kernel: Int, stride: Int, into output: inout Tensor) {
        let (batch, channels, height, width) = (input.shape[0], input.shape[1], input.shape[2], input.shape[3])
        let (outHeight, outWidth) = ((height - kernel) / stride + 1, (width - kernel) / stride + 1)
        let shape = [batch, channels, outHeight, outWidth]
        if output.shape != shape { output = Tensor(zeros: shape) }
        input.storage.withUnsafeBufferPointer { x in
            output.storage.withUnsafeMutableBufferPointer { y in
                for plane in 0..<(batch * channels) {
                    let from = x.baseAddress! + plane * height * width
                    let to = y.baseAddress! + plane * outHeight * outWidth
                    for oy in 0..<outHeight {
                        let top = from + oy * stride * width, line = to + oy * outWidth
                        if kernel == 2 && stride == 2 {
                            maxPool2x2Row(top, top + width, into: line, count: outWidth)
                            continue
                        }
                        for ox in 0..<outWidth {
                            var largest = -Float.infinity
                            for ky in 0..<kernel {
                                for kx in 0..<kernel { largest = max(largest, top[ky * width + ox * stride + kx]) }
                            }
                            line[ox] = largest
                        }
                    }
                }
            }
        }
    }

    /// line[ox] = the largest of top[2ox], top[2ox + 1], bottom[2ox], bottom[2ox + 1].
    @inline(__always)
    static func maxPool2x2Row(_ top: UnsafePointer<Float>, _ bottom: UnsafePointer<Float>,
                              into line: UnsafeMutablePointer<Float>, count: Int) {
        for ox in 0..<count {
            line[ox] = larger(larger(top[2 * ox], top[2 * ox + 1]), larger(bottom[2 * ox], bottom[2 * ox + 1]))
        }
    }
}
