import ModelEvaluation
import Testing

/// SplitMix64: a small seeded generator so the random cases are the same every run.
struct SeededGenerator: RandomNumberGenerator {
    var state: UInt64
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}

/// The Mann-Whitney statistic by a naive double loop: P(positive > negative) + 0.5 P(tie).
func pairwiseAUC(scores: [Double], isPositive: [Bool]) -> Double {
    var wins = 0.0, pairs = 0.0
    for i in scores.indices where isPositive[i] {
        for j in scores.indices where !isPositive[j] {
            pairs += 1
            if scores[i] > scores[j] { wins += 1 } else if scores[i] == scores[j] { wins += 0.5 }
        }
    }
    return wins / pairs
}

@Suite struct ROCCurveTests {
    @Test func smallCurveByHand() throws {
        // Sorted: 0.9 (pos), 0.8 (neg, pos tied), 0.1 (neg); 2 positives, 2 negatives.
        // Points: (0,0) -> (0, 1/2) -> tie step (1/2, 1) -> (1, 1).
        // Trapezoids: 1/2 * (1/2 + 1)/2 + 1/2 * 1 = 0.375 + 0.5 = 0.875.
        // Pairs: 0.9 beats both negatives, 0.8 ties 0.8 and beats 0.1: (3 + 0.5) / 4 = 0.875.
        let curve = try ROCCurve(scores: [0.9, 0.8, 0.8, 0.1], isPositive: [true, false, true, false])
        #expect(curve.points == [
            ROCPoint(falsePositiveRate: 0, truePositiveRate: 0),
            ROCPoint(falsePositiveRate: 0, truePositiveRate: 0.5),
            ROCPoint(falsePositiveRate: 0.5, truePositiveRate: 1),
            ROCPoint(falsePositiveRate: 1, truePositiveRate: 1),
        ])
        #expect(curve.thresholds == [.infinity, 0.9, 0.8, 0.1])
        #expect(curve.auc == 0.875)
    }

    @Test func aucEqualsMannWhitneyOnRandomDataWithTies() throws {
        var random = SeededGenerator(state: 2013)
        let classCount = 5, sampleCount = 300
        let labels = (0..<sampleCount).map { _ in Int.random(in: 0..<classCount, using: &random) }
        // Scores rounded to one decimal, so ties are common; the true class gets a small lift.
        let probabilities: [[Float]] = labels.map { label in
            var row = (0..<classCount).map { c in Float.random(in: 0...1, using: &random) + (c == label ? 0.3 : 0) }
            let sum = row.reduce(0, +)
            row = row.map { ($0 / sum * 10).rounded() / 10 }
            return row
        }
        let metrics = try ClassificationMetrics(labels: labels, probabilities: probabilities,
                                                classNames: (0..<classCount).map { "class \($0)" })
        var pooledScores: [Double] = [], pooledPositive: [Bool] = []
        for c in 0..<classCount {
            let scores = probabilities.map { Double($0[c]) }
            let positive = labels.map { $0 == c }
            let expected = pairwiseAUC(scores: scores, isPositive: positive)
            let auc = try #require(metrics.classAUCs[c])
            #expect(abs(auc - expected) < 1e-6, "class \(c): \(auc) vs pairwise \(expected)")
            #expect(Set(scores).count < 15, "the case really has ties")
            pooledScores += scores
            pooledPositive += positive
        }
        let micro = pairwiseAUC(scores: pooledScores, isPositive: pooledPositive)
        #expect(abs(try #require(metrics.microAUC) - micro) < 1e-6)
        #expect(abs(try #require(metrics.macroAUC) - metrics.classAUCs.map { $0! }.reduce(0, +) / Double(classCount)) < 1e-12)
    }

    @Test func curveIsMonotoneAndEndsAtOne() throws {
        var random = SeededGenerator(state: 7)
        let scores = (0..<500).map { _ in Double(Int.random(in: 0..<40, using: &random)) / 40 }
        let positive = scores.map { _ in Bool.random(using: &random) }
        let curve = try ROCCurve(scores: scores, isPositive: positive)
        #expect(curve.points.last == ROCPoint(falsePositiveRate: 1, truePositiveRate: 1))
        for (a, b) in zip(curve.points, curve.points.dropFirst()) {
            #expect(a.falsePositiveRate <= b.falsePositiveRate && a.truePositiveRate <= b.truePositiveRate)
        }
        // Thinning keeps the ends and never adds points.
        let thin = curve.thinned(resolution: 0.05)
        #expect(thin.first == curve.points.first && thin.last == curve.points.last)
        #expect(thin.count <= curve.points.count)
    }

    @Test func macroAverageRunsFromOriginToOne() throws {
        let labels = [0, 1, 2, 0, 1, 2, 2]
        let metrics = try ClassificationMetrics(
            labels: labels,
            probabilities: [[0.5, 0.3, 0.2], [0.2, 0.5, 0.3], [0.3, 0.3, 0.4], [0.1, 0.6, 0.3],
                            [0.4, 0.4, 0.2], [0.3, 0.2, 0.5], [0.6, 0.2, 0.2]],
            classNames: ["x", "y", "z"])
        let macro = metrics.macroROCPoints
        #expect(macro.first == ROCPoint(falsePositiveRate: 0, truePositiveRate: 0))
        #expect(macro.last == ROCPoint(falsePositiveRate: 1, truePositiveRate: 1))
    }
}
