import ModelEvaluation
import Testing

/// Probability rows whose argmax is `prediction`: 0.6 there, the rest shared equally.
func rows(predicting predictions: [Int], classCount: Int) -> [[Float]] {
    predictions.map { prediction in
        (0..<classCount).map { $0 == prediction ? 0.6 : 0.4 / Float(classCount - 1) }
    }
}

@Suite struct ClassificationMetricsTests {
    // Three classes a, b, c; ten samples.
    //   labels      0 0 0 0 1 1 1 2 2 2
    //   predictions 0 0 1 2 1 1 0 2 2 1
    let metrics = try! ClassificationMetrics(
        labels: [0, 0, 0, 0, 1, 1, 1, 2, 2, 2],
        probabilities: rows(predicting: [0, 0, 1, 2, 1, 1, 0, 2, 2, 1], classCount: 3),
        classNames: ["a", "b", "c"])

    @Test func confusionMatrixByHand() {
        // Row = true class, column = prediction:
        //   a: a a b c  -> [2, 1, 1]
        //   b: b b a    -> [1, 2, 0]
        //   c: c c b    -> [0, 1, 2]
        #expect(metrics.confusion == [[2, 1, 1], [1, 2, 0], [0, 1, 2]])
        #expect(metrics.predictions == [0, 0, 1, 2, 1, 1, 0, 2, 2, 1])
        // Diagonal 2 + 2 + 2 = 6 of 10.
        #expect(metrics.correctCount == 6)
        #expect(abs(metrics.accuracy - 0.6) < 1e-12)
        // Row a / 4, row b / 3, row c / 3.
        let normalized = metrics.normalizedConfusion
        #expect(abs(normalized[0][0] - 0.5) < 1e-12 && abs(normalized[0][1] - 0.25) < 1e-12)
        #expect(abs(normalized[1][0] - 1.0 / 3) < 1e-12 && normalized[1][2] == 0)
    }

    @Test func precisionRecallF1ByHand() {
        let tolerance = 1e-12
        // a: precision = 2 / column sum (2+1+0) = 2/3, recall = 2 / row sum 4 = 1/2,
        //    F1 = 2 * (2/3)(1/2) / (2/3 + 1/2) = (2/3) / (7/6) = 4/7.
        // b: precision = 2 / (1+2+1) = 1/2, recall = 2/3, F1 = 4/7 (same product and sum).
        // c: precision = 2 / (1+0+2) = 2/3, recall = 2/3, F1 = 2/3.
        let expected: [(Double, Double, Double, Int)] = [
            (2.0 / 3, 0.5, 4.0 / 7, 4), (0.5, 2.0 / 3, 4.0 / 7, 3), (2.0 / 3, 2.0 / 3, 2.0 / 3, 3),
        ]
        for (scores, want) in zip(metrics.perClass, expected) {
            #expect(abs(scores.precision - want.0) < tolerance, "\(scores.name) precision")
            #expect(abs(scores.recall - want.1) < tolerance, "\(scores.name) recall")
            #expect(abs(scores.f1 - want.2) < tolerance, "\(scores.name) F1")
            #expect(scores.support == want.3)
        }
        // Macro F1 = (4/7 + 4/7 + 2/3) / 3 = (38/21) / 3 = 38/63.
        #expect(abs(metrics.macroF1 - 38.0 / 63) < tolerance)
        // Weighted F1 = (4 * 4/7 + 3 * 4/7 + 3 * 2/3) / 10 = (4 + 2) / 10 = 0.6.
        #expect(abs(metrics.weightedF1 - 0.6) < tolerance)
        // Weighted recall is the accuracy: (4 * 1/2 + 3 * 2/3 + 3 * 2/3) / 10 = 0.6.
        #expect(abs(metrics.weightedRecall - metrics.accuracy) < tolerance)
    }

    @Test func mostConfusedPairsSortedByCountThenShare() {
        // Off-diagonal cells are all 1: b->a and c->b are 1/3 of their row, a->b and a->c 1/4.
        let pairs = metrics.mostConfusedPairs()
        #expect(pairs.map { "\($0.trueName)>\($0.predictedName)" } == ["b>a", "c>b", "a>b", "a>c"])
        #expect(abs(pairs[0].shareOfTrueClass - 1.0 / 3) < 1e-12)
        #expect(metrics.mostConfusedPairs(limit: 2).count == 2)
    }

    @Test func argmaxTieTakesFirstClass() throws {
        let tie = try ClassificationMetrics(labels: [1], probabilities: [[0.4, 0.4, 0.2]], classNames: ["x", "y", "z"])
        #expect(tie.predictions == [0])
    }

    @Test func perfectClassifier() throws {
        let labels = [0, 1, 2, 3, 0, 1, 2, 3, 3, 2]
        let metrics = try ClassificationMetrics(labels: labels, probabilities: rows(predicting: labels, classCount: 4),
                                                classNames: ["w", "x", "y", "z"])
        #expect(metrics.accuracy == 1)
        #expect(metrics.perClass.allSatisfy { $0.precision == 1 && $0.recall == 1 && $0.f1 == 1 })
        #expect(metrics.classAUCs.allSatisfy { $0 == 1 })
        #expect(metrics.macroAUC == 1)
        #expect(metrics.microAUC == 1)
        #expect(metrics.mostConfusedPairs().isEmpty)
    }

    @Test func classWithoutSamplesHasNoAUC() throws {
        let metrics = try ClassificationMetrics(labels: [0, 1, 0], probabilities: rows(predicting: [0, 1, 2], classCount: 3),
                                                classNames: ["x", "y", "z"])
        #expect(metrics.classAUCs[2] == nil)
        #expect(metrics.perClass[2].recall == 0 && metrics.perClass[2].precision == 0)
        // Macro AUC averages the two defined classes.
        #expect(metrics.macroAUC == (metrics.classAUCs[0]! + metrics.classAUCs[1]!) / 2)
    }

    @Test func mismatchedInputsThrow() {
        let names = ["x", "y"]
        #expect(throws: EvaluationError.countMismatch(labels: 3, probabilityRows: 2)) {
            try ClassificationMetrics(labels: [0, 1, 0], probabilities: [[1, 0], [0, 1]], classNames: names)
        }
        #expect(throws: EvaluationError.rowWidthMismatch(row: 1, width: 3, classCount: 2)) {
            try ClassificationMetrics(labels: [0, 1], probabilities: [[1, 0], [0, 0.5, 0.5]], classNames: names)
        }
        #expect(throws: EvaluationError.labelOutOfRange(sample: 1, label: 2, classCount: 2)) {
            try ClassificationMetrics(labels: [0, 2], probabilities: [[1, 0], [0, 1]], classNames: names)
        }
        #expect(throws: EvaluationError.labelOutOfRange(sample: 0, label: -1, classCount: 2)) {
            try ClassificationMetrics(labels: [-1, 1], probabilities: [[1, 0], [0, 1]], classNames: names)
        }
        #expect(throws: EvaluationError.nonFiniteScore(sample: 0, column: 1)) {
            try ClassificationMetrics(labels: [0, 1], probabilities: [[1, .nan], [0, 1]], classNames: names)
        }
        #expect(throws: EvaluationError.noSamples) {
            try ClassificationMetrics(labels: [], probabilities: [], classNames: names)
        }
        #expect(throws: EvaluationError.noClasses) {
            try ClassificationMetrics(labels: [0], probabilities: [[1]], classNames: [])
        }
        #expect(throws: EvaluationError.scoreCountMismatch(scores: 2, flags: 1)) {
            try ROCCurve(scores: [0.1, 0.2], isPositive: [true])
        }
    }

    @Test func summaryTextIsAligned() {
        let text = metrics.summaryText()
        #expect(text.contains("Accuracy 60.00%"))
        let lines = text.split(separator: "\n").map(String.init)
        let table = lines.filter { line in ["class", "a ", "b ", "c ", "macro", "weighted"].contains { line.hasPrefix($0) } }
        #expect(table.count == 6)
        #expect(Set(table.map(\.count)).count == 1, "every table row has the same width")
    }
}
