import NeuralEngine

/// mixup (Zhang et al. 2018): each image of a batch is blended with another image of the same batch, and their
/// target distributions with the same weight, lambda ~ Beta(alpha, alpha). It smooths the decision boundaries
/// between classes the network confuses; alpha around 0.2 is the usual choice, 0 turns it off.
public struct Mixup: Sendable, Equatable {
    public var alpha: Float

    public init(alpha: Float) {
        precondition(alpha > 0, "mixup needs a positive alpha")
        self.alpha = alpha
    }

    /// Blends `input` [N, ...] and `targets` [N, K] in place with one lambda and a random partner per row
    /// (a permutation of the batch); returns lambda.
    @discardableResult
    public func apply(to input: inout Tensor, targets: inout Tensor, generator: inout RandomGenerator) -> Float {
        let batch = input.shape[0]
        precondition(targets.shape.count == 2 && targets.shape[0] == batch, "one target row per image")
        // max(lambda, 1 - lambda): the blend leans on the row's own image, so no pair is counted twice the same way.
        let drawn = generator.nextBeta(alpha, alpha)
        let lambda = max(drawn, 1 - drawn)
        var partners = Array(0..<batch)
        partners.shuffle(using: &generator)
        input = Mixup.blend(input, partners: partners, lambda: lambda)
        targets = Mixup.blend(targets, partners: partners, lambda: lambda)
        return lambda
    }

    private static func blend(_ rows: Tensor, partners: [Int], lambda: Float) -> Tensor {
        let width = rows.count / max(rows.shape[0], 1)
        var blended = rows
        rows.storage.withUnsafeBufferPointer { source in
            blended.storage.withUnsafeMutableBufferPointer { target in
                for (row, partner) in partners.enumerated() {
                    for i in 0..<width {
                        target[row * width + i] = lambda * source[row * width + i] + (1 - lambda) * source[partner * width + i]
                    }
                }
            }
        }
        return blended
    }
}
