import NeuralEngine

/// Every hyperparameter of a run; stored in checkpoints and model files so a run can be resumed and reported.
public struct TrainingOptions: Codable, Sendable, Equatable {
    public enum OptimizerKind: String, Codable, Sendable, CaseIterable { case adam, adamw, sgd }
    public enum ScheduleKind: String, Codable, Sendable, CaseIterable { case cosine, plateau, constant }
    /// none: plain loss; balanced: weight n / (K n_k); sqrt: square root of the balanced weight (milder).
    public enum ClassWeighting: String, Codable, Sendable, CaseIterable { case none, balanced, sqrt }

    public var architecture = "vgg"
    public var epochs = 50
    public var batchSize = 64
    public var optimizer = OptimizerKind.adamw
    public var learningRate: Float = 1e-3
    public var minimumLearningRate: Float = 1e-5
    public var warmupEpochs = 2
    public var schedule = ScheduleKind.cosine
    public var weightDecay: Float = 0.05
    public var momentum: Float = 0.9
    public var labelSmoothing: Float = 0.1
    public var classWeighting = ClassWeighting.none
    public var augmentation = AugmentationPolicy.standard
    public var seed: UInt64 = 1
    /// Gaussian low-pass sigma for inputs at evaluation and inference; nil = measure from the data
    /// (see `Sharpness.matchingBlurSigma`).
    public var inputBlurSigma: Float?
    /// mixup's alpha; nil (or 0) trains without mixup. Optional so that checkpoints written before it existed load.
    public var mixupAlpha: Float?

    public init() {}

    public func validate() throws(EmotionModelError) {
        _ = try ArchitectureConfig.named(architecture)
        guard epochs > 0 else { throw .badOption("epochs must be positive") }
        guard batchSize > 1 else { throw .badOption("batch size must be at least 2 (batch norm needs a batch)") }
        guard learningRate > 0, minimumLearningRate >= 0, minimumLearningRate <= learningRate else {
            throw .badOption("need 0 <= minimum learning rate <= learning rate, learning rate > 0")
        }
        guard (0..<1).contains(labelSmoothing) else { throw .badOption("label smoothing must be in [0, 1)") }
        guard weightDecay >= 0 else { throw .badOption("weight decay must not be negative") }
        if let inputBlurSigma, !(0...8).contains(inputBlurSigma) { throw .badOption("input blur must be 0 to 8 pixels") }
        if let mixupAlpha, !(0...10).contains(mixupAlpha) { throw .badOption("mixup alpha must be 0 to 10") }
    }

    /// Per-class loss weights for the given class counts (mean weight over samples is 1).
    public func classWeights(counts: [Int]) -> [Float]? {
        guard classWeighting != .none else { return nil }
        let total = Float(counts.reduce(0, +))
        var weights = counts.map { count -> Float in
            let balanced = total / (Float(counts.count) * Float(max(count, 1)))
            return classWeighting == .balanced ? balanced : balanced.squareRoot()
        }
        let sampleMean = zip(weights, counts).reduce(Float(0)) { $0 + $1.0 * Float($1.1) } / total
        weights = weights.map { $0 / sampleMean }
        return weights
    }
}
