/// Batch normalisation over the channel axis of [N, C] (BatchNorm1d) or [N, C, H, W] (BatchNorm2d) tensors.
/// Training mode normalises with the batch statistics and updates running averages (PyTorch conventions:
/// momentum 0.1, unbiased running variance); evaluation mode uses the running averages.
public final class BatchNorm: Layer {
    public let channels: Int
    public let epsilon: Float
    public let momentum: Float
    public let scale: Parameter          // gamma
    public let shift: Parameter          // beta
    public let runningMean: Parameter
    public let runningVariance: Parameter

    private var normalized: [Float] = []  // x-hat, cached for backward
    private var inverseDeviation: [Float] = []
    private var shape: [Int] = []

    public init(channels: Int, epsilon: Float = 1e-5, momentum: Float = 0.1) {
        self.channels = channels
        self.epsilon = epsilon
        self.momentum = momentum
        scale = Parameter(Tensor(repeating: 1, shape: [channels]))
        shift = Parameter(Tensor(zeros: [channels]))
        runningMean = Parameter(Tensor(zeros: [channels]), isTrainable: false)
        runningVariance = Parameter(Tensor(repeating: 1, shape: [channels]), isTrainable: false)
    }

    public var namedParameters: [(name: String, parameter: Parameter)] {
        [("weight", scale), ("bias", shift), ("running_mean", runningMean), ("running_var", runningVariance)]
    }

    /// Per-channel affine map (a, b) with y = a * x + b that evaluation mode applies; used to fold into a convolution.
    public var inferenceAffine: (multiplier: [Float], offset: [Float]) {
        var multiplier = [Float](repeating: 0, count: channels)
        var offset = [Float](repeating: 0, count: channels)
        for c in 0..<channels {
            multiplier[c] = scale.value.storage[c] / (runningVariance.value.storage[c] + epsilon).squareRoot()
            offset[c] = shift.value.storage[c] - multiplier[c] * runningMean.value.storage[c]
        }
        return (multiplier, offset)
    }

    /// Evaluation mode, y = a * x + b per channel (`inferenceAffine` without its arrays); `output` may be `input`.
    func normalizeWithRunningStatistics(_ input: UnsafePointer<Float>, batch: Int, spatial: Int,
                                        into output: UnsafeMutablePointer<Float>) {
        for c in 0..<channels {
            let multiplier = scale.value.storage[c] / (runningVariance.value.storage[c] + epsilon).squareRoot()
            let offset = shift.value.storage[c] - multiplier * runningMean.value.storage[c]
            for n in 0..<batch {
                let base = (n * channels + c) * spatial
                for s in 0..<spatial { output[base + s] = input[base + s] * multiplier + offset }
            }
        }
    }

    private func layout(_ shape: [Int]) -> (batch: Int, spatial: Int) {
        precondition((shape.count == 2 || shape.count == 4) && shape[1] == channels,
                     "BatchNorm(\(channels)) expects [N, C] or [N, C, H, W], got \(shape)")
        return (shape[0], shape.count == 4 ? shape[2] * shape[3] : 1)
    }

    public func forward(_ input: Tensor, training: Bool) -> Tensor {
        let (batch, spatial) = layout(input.shape)
        if !training {
            var output = input
            output.storage.withUnsafeMutableBufferPointer { out in
                normalizeWithRunningStatistics(out.baseAddress!, batch: batch, spatial: spatial, into: out.baseAddress!)
            }
            return output
        }
        shape = input.shape
        let perChannel = batch * spatial
        precondition(perChannel > 1, "BatchNorm in training mode needs more than one value per channel")
        if normalized.count != input.count { normalized = [Float](repeating: 0, count: input.count) }
        if inverseDeviation.count != channels { inverseDeviation = [Float](repeating: 0, count: channels) }
        var means = [Float](repeating: 0, count: channels), variances = means
        let output = [Float](unsafeUninitializedCapacity: input.count) { out, initialized in
            input.storage.withUnsafeBufferPointer { x in
                normalized.withUnsafeMutableBufferPointer { xHat in
                    inverseDeviation.withUnsafeMutableBufferPointer { inverses in
                        means.withUnsafeMutableBufferPointer { means in
                            variances.withUnsafeMutableBufferPointer { variances in
                                scale.value.storage.withUnsafeBufferPointer { gammas in
                                    shift.value.storage.withUnsafeBufferPointer { betas in
                                        let shared = UncheckedSendable((x.baseAddress!, xHat.baseAddress!, out.baseAddress!,
                                                                        inverses.baseAddress!, means.baseAddress!,
                                                                        variances.baseAddress!, gammas.baseAddress!,
                                                                        betas.baseAddress!))
                                        // Channels are independent: each worker takes whole channels, whose sums keep
                                        // their order, so the result does not depend on the number of workers.
                                        Parallelism.forEach(channels) { c in
                                            let (x, xHat, out, inverses, means, variances, gammas, betas) = shared.value
                                            self.normalizeChannel(c, x, batch: batch, spatial: spatial, xHat: xHat,
                                                                  out: out, gamma: gammas[c], beta: betas[c],
                                                                  mean: &means[c], variance: &variances[c],
                                                                  inverseDeviation: &inverses[c])
                                        }
                                    }
                                }
                            }
                        }
                    }
                }
            }
            initialized = input.count
        }
        for c in 0..<channels {
            let unbiased = variances[c] * Float(perChannel) / Float(perChannel - 1)
            runningMean.value.storage[c] += momentum * (means[c] - runningMean.value.storage[c])
            runningVariance.value.storage[c] += momentum * (unbiased - runningVariance.value.storage[c])
        }
        return Tensor(shape: input.shape, storage: output)
    }

    /// Batch statistics of channel `c` and its normalised values (x-hat, cached) and outputs.
    private func normalizeChannel(_ c: Int, _ x: UnsafePointer<Float>, batch: Int, spatial: Int,
                                  xHat: UnsafeMutablePointer<Float>, out: UnsafeMutablePointer<Float>,
                                  gamma: Float, beta: Float,
                                  mean: inout Float, variance: inout Float, inverseDeviation: inout Float) {
        let perChannel = batch * spatial
        // Float sums within a plane (vectorised), Double across planes.
        var sum: Double = 0
        for n in 0..<batch {
            let plane = x + (n * channels + c) * spatial
            var partial: Float = 0
            for s in 0..<spatial { partial += plane[s] }
            sum += Double(partial)
        }
        mean = Float(sum / Double(perChannel))
        var squares: Double = 0
        for n in 0..<batch {
            let plane = x + (n * channels + c) * spatial
            var partial: Float = 0
            for s in 0..<spatial { let d = plane[s] - mean; partial += d * d }
            squares += Double(partial)
        }
        variance = Float(squares / Double(perChannel))
        let inverse = 1 / (variance + epsilon).squareRoot()
        inverseDeviation = inverse
        let mean = mean
        for n in 0..<batch {
            let base = (n * channels + c) * spatial
            for s in 0..<spatial {
                let value = (x[base + s] - mean) * inverse
                xHat[base + s] = value
                out[base + s] = gamma * value + beta
            }
        }
    }

    public func backward(_ dOutput: Tensor) -> Tensor {
        precondition(dOutput.shape == shape && !normalized.isEmpty, "BatchNorm.backward needs a training-mode forward")
        let (batch, spatial) = layout(shape)
        let count = Float(batch * spatial)
        var dScales = [Float](repeating: 0, count: channels), dShifts = dScales
        let dInput = [Float](unsafeUninitializedCapacity: dOutput.count) { dx, initialized in
            dOutput.storage.withUnsafeBufferPointer { dy in
                normalized.withUnsafeBufferPointer { xHat in
                    inverseDeviation.withUnsafeBufferPointer { inverses in
                        scale.value.storage.withUnsafeBufferPointer { gammas in
                            dScales.withUnsafeMutableBufferPointer { dScales in
                                dShifts.withUnsafeMutableBufferPointer { dShifts in
                                    let shared = UncheckedSendable((dy.baseAddress!, xHat.baseAddress!, dx.baseAddress!,
                                                                    inverses.baseAddress!, gammas.baseAddress!,
                                                                    dScales.baseAddress!, dShifts.baseAddress!))
                                    // Whole channels per worker, as in forward.
                                    Parallelism.forEach(channels) { c in
                                        let (dy, xHat, dx, inverses, gammas, dScales, dShifts) = shared.value
                                        var dShift: Float = 0, dScale: Float = 0
                                        for n in 0..<batch {
                                            let base = (n * self.channels + c) * spatial
                                            var shiftPart: Float = 0, scalePart: Float = 0
                                            for s in 0..<spatial {
                                                shiftPart += dy[base + s]; scalePart += dy[base + s] * xHat[base + s]
                                            }
                                            dShift += shiftPart
                                            dScale += scalePart
                                        }
                                        dScales[c] = dScale
                                        dShifts[c] = dShift
                                        let factor = gammas[c] * inverses[c] / count
                                        for n in 0..<batch {
                                            let base = (n * self.channels + c) * spatial
                                            for s in 0..<spatial {
                                                dx[base + s] = factor * (count * dy[base + s] - dShift - xHat[base + s] * dScale)
                                            }
                                        }
                                    }
                                }
                            }
                        }
                    }
                }
            }
            initialized = dOutput.count
        }
        for c in 0..<channels {
            scale.gradient.storage[c] += dScales[c]
            shift.gradient.storage[c] += dShifts[c]
        }
        return Tensor(shape: shape, storage: dInput)
    }
}

extension BatchNorm: InferenceLayer {
    func inferenceOutputShape(for itemShape: [Int]) -> [Int] {
        precondition((itemShape.count == 1 || itemShape.count == 3) && itemShape[0] == channels,
                     "BatchNorm(\(channels)) expects [C] or [C, H, W] items, got \(itemShape)")
        return itemShape
    }
    var infersInPlace: Bool { true }
    func infer(_ input: UnsafePointer<Float>, itemShape: [Int], batch: Int,
               into output: UnsafeMutablePointer<Float>, scratch: [ConvolutionScratch]) {
        normalizeWithRunningStatistics(input, batch: batch, spatial: itemShape.dropFirst().reduce(1, *), into: output)
    }
}
