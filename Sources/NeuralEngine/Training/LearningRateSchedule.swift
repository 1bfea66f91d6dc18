#if canImport(Glibc)
import Glibc
#else
import Darwin
#endif

/// Learning rate as a function of training progress.
public enum LearningRateSchedule: Sendable, Equatable {
    /// Linear warm-up from ~0 over `warmupSteps`, then cosine decay to `minimum` at `totalSteps`.
    case cosine(peak: Float, minimum: Float, warmupSteps: Int, totalSteps: Int)
    case constant(Float)

    public func rate(atStep step: Int) -> Float {
        switch self {
        case .constant(let rate):
            return rate
        case let .cosine(peak, minimum, warmupSteps, totalSteps):
            if step < warmupSteps { return peak * Float(step + 1) / Float(warmupSteps) }
            let progress = min(1, Float(step - warmupSteps) / Float(max(totalSteps - warmupSteps, 1)))
            return minimum + (peak - minimum) * 0.5 * (1 + cosf(Float.pi * progress))
        }
    }
}

/// Divides the learning rate by `factor` when the watched metric has not improved for `patience` epochs.
public struct ReduceOnPlateau: Sendable, Codable {
    public let factor: Float
    public let patience: Int
    public let minimum: Float
    public private(set) var best: Float = -.greatestFiniteMagnitude  // finite, so it encodes as JSON
    public private(set) var epochsWithoutImprovement = 0

    public init(factor: Float = 0.5, patience: Int = 3, minimum: Float = 1e-6) {
        self.factor = factor
        self.patience = patience
        self.minimum = minimum
    }

    /// Feeds one epoch's metric (higher is better) and returns the rate to use next.
    public mutating func update(metric: Float, rate: Float) -> Float {
        if metric > best {
            best = metric
            epochsWithoutImprovement = 0
            return rate
        }
        epochsWithoutImprovement += 1
        guard epochsWithoutImprovement > patience else { return rate }
        epochsWithoutImprovement = 0
        return max(rate * factor, minimum)
    }
}
