#if canImport(Glibc)
import Glibc
#else
import Darwin
#endif

/// Softmax + categorical cross-entropy on logits [N, K], fused for numerical stability.
/// Targets are probability rows (one-hot, smoothed or mixed); `classWeights` scales each sample's loss
/// by the weight of its true class (soft targets: the target-weighted mean of class weights).
public struct SoftmaxCrossEntropy: Sendable {
    public var labelSmoothing: Float
    public var classWeights: [Float]?

    public init(labelSmoothing: Float = 0, classWeights: [Float]? = nil) {
        self.labelSmoothing = labelSmoothing
        self.classWeights = classWeights
    }

    /// One-hot rows for integer labels, with label smoothing applied.
    public func targets(labels: [Int], classes: Int) -> Tensor {
        var rows = Tensor(repeating: labelSmoothing / Float(classes), shape: [labels.count, classes])
        for (row, label) in labels.enumerated() {
            precondition(label >= 0 && label < classes, "label \(label) outside 0..<\(classes)")
            rows.storage[row * classes + label] += 1 - labelSmoothing
        }
        return rows
    }

    /// Mean loss over the batch (weighted mean with class weights) and dLoss/dLogits.
    public func lossAndGradient(logits: Tensor, targets: Tensor) -> (loss: Float, dLogits: Tensor) {
        precondition(logits.rank == 2 && logits.shape == targets.shape, "logits \(logits.shape) vs targets \(targets.shape)")
        let (batch, classes) = (logits.shape[0], logits.shape[1])
        let probabilities = Softmax.probabilities(logits)
        var sampleWeights = [Float](repeating: 1, count: batch)
        if let classWeights {
            precondition(classWeights.count == classes, "one class weight per class")
            for n in 0..<batch {
                var weight: Float = 0
                for k in 0..<classes { weight += targets.storage[n * classes + k] * classWeights[k] }
                sampleWeights[n] = weight
            }
        }
        let totalWeight = max(sampleWeights.reduce(0, +), 1e-12)
        var loss: Double = 0
        var dLogits = Tensor(zeros: logits.shape)
        for n in 0..<batch {
            let scale = sampleWeights[n] / totalWeight
            for k in 0..<classes {
                let index = n * classes + k
                let target = targets.storage[index]
                if target > 0 { loss -= Double(scale * target * logf(max(probabilities.storage[index], 1e-30))) }
                // For rows of targets that sum to one, d(-sum t log softmax)/dz = p - t.
                dLogits.storage[index] = scale * (probabilities.storage[index] - target)
            }
        }
        return (Float(loss), dLogits)
    }
}
