/// Precision, recall and F1 of one class, treated as "this class versus the rest".
public struct ClassScores: Sendable, Equatable, Codable {
    public var name: String
    /// Of the samples predicted as this class, the share that truly are; 0 when none was predicted.
    public var precision: Double
    /// Of the samples of this class, the share predicted as it; 0 when the class has no samples.
    public var recall: Double
    /// Harmonic mean of precision and recall; 0 when both are 0.
    public var f1: Double
    /// Number of samples whose true label is this class.
    public var support: Int
}

/// A cell off the diagonal of the confusion matrix: samples of `trueClass` predicted as `predictedClass`.
public struct ConfusedPair: Sendable, Equatable, Codable {
    public var trueClass: Int
    public var predictedClass: Int
    public var trueName: String
    public var predictedName: String
    public var count: Int
    /// `count` divided by the support of `trueClass`.
    public var shareOfTrueClass: Double
}

/// Every number that describes a multi-class classifier on a labelled set.
///
/// Predictions are the argmax of each probability row (the first column wins a tie).
/// ROC curves are one-vs-rest on the probability of each class; the micro-average pools
/// all `sampleCount * classCount` class-versus-rest decisions into one curve.
public struct ClassificationMetrics: Sendable {
    public let classNames: [String]
    public let labels: [Int]
    public let predictions: [Int]
    /// `confusion[trueClass][predictedClass]` counts samples.
    public let confusion: [[Int]]
    public let perClass: [ClassScores]
    /// One-vs-rest curve of each class, in class order.
    public let rocCurves: [ROCCurve]
    /// All class-versus-rest decisions pooled.
    public let microROC: ROCCurve

    /// - Parameters:
    ///   - labels: true class index of each sample, in `0..<classNames.count`.
    ///   - probabilities: one row per sample, one column per class (rows are expected to sum to 1,
    ///     which is not checked: any score where higher means "more likely" gives valid ROC curves).
    ///   - classNames: names in class-index order.
    /// - Throws: `EvaluationError` when sizes disagree, a label is out of range or a score is not finite.
    public init(labels: [Int], probabilities: [[Float]], classNames: [String]) throws(EvaluationError) {
        let classCount = classNames.count
        guard classCount > 0 else { throw .noClasses }
        guard !labels.isEmpty else { throw .noSamples }
        guard labels.count == probabilities.count else {
            throw .countMismatch(labels: labels.count, probabilityRows: probabilities.count)
        }
        for (sample, row) in probabilities.enumerated() {
            guard row.count == classCount else {
                throw .rowWidthMismatch(row: sample, width: row.count, classCount: classCount)
            }
            if let column = row.firstIndex(where: { !$0.isFinite }) {
                throw .nonFiniteScore(sample: sample, column: column)
            }
        }
        for (sample, label) in labels.enumerated() where !(0..<classCount).contains(label) {
            throw .labelOutOfRange(sample: sample, label: label, classCount: classCount)
        }

        let predictions = probabilities.map { row in
            var best = 0
            for column in 1..<row.count where row[column] > row[best] { best = column }
            return best
        }
        var confusion = [[Int]](repeating: [Int](repeating: 0, count: classCount), count: classCount)
        for (label, prediction) in zip(labels, predictions) { confusion[label][prediction] += 1 }

        var perClass: [ClassScores] = []
        for c in 0..<classCount {
            let truePositives = Double(confusion[c][c])
            let support = confusion[c].reduce(0, +)
            let predicted = confusion.reduce(0) { $0 + $1[c] }
            let precision = predicted > 0 ? truePositives / Double(predicted) : 0
            let recall = support > 0 ? truePositives / Double(support) : 0
            let f1 = precision + recall > 0 ? 2 * precision * recall / (precision + recall) : 0
            perClass.append(ClassScores(name: classNames[c], precision: precision, recall: recall,
                                        f1: f1, support: support))
        }

        var rocCurves: [ROCCurve] = []
        var pooledScores: [Double] = []
        var pooledPositive: [Bool] = []
        pooledScores.reserveCapacity(labels.count * classCount)
        pooledPositive.reserveCapacity(labels.count * classCount)
        for c in 0..<classCount {
            let scores = probabilities.map { Double($0[c]) }
            let positive = labels.map { $0 == c }
            rocCurves.append(try ROCCurve(scores: scores, isPositive: positive))
            pooledScores += scores
            pooledPositive += positive
        }

        self.classNames = classNames
        self.labels = labels
        self.predictions = predictions
        self.confusion = confusion
        self.perClass = perClass
        self.rocCurves = rocCurves
        self.microROC = try ROCCurve(scores: pooledScores, isPositive: pooledPositive)
    }

    public var classCount: Int { classNames.count }
    public var sampleCount: Int { labels.count }
    public var correctCount: Int { (0..<classCount).reduce(0) { $0 + confusion[$1][$1] } }
    /// Share of samples whose argmax is the true label.
    public var accuracy: Double { Double(correctCount) / Double(sampleCount) }

    /// Each row of `confusion` divided by its sum (the class support); a row of zeros stays zeros.
    public var normalizedConfusion: [[Double]] {
        confusion.map { row in
            let total = row.reduce(0, +)
            return row.map { total > 0 ? Double($0) / Double(total) : 0 }
        }
    }

    public var macroPrecision: Double { mean(perClass.map(\.precision)) }
    public var macroRecall: Double { mean(perClass.map(\.recall)) }
    /// Unweighted mean of the per-class F1 scores.
    public var macroF1: Double { mean(perClass.map(\.f1)) }
    /// Mean of the per-class F1 scores weighted by support.
    public var weightedF1: Double { weighted(\.f1) }
    /// Mean of the per-class precisions weighted by support.
    public var weightedPrecision: Double { weighted(\.precision) }
    /// Mean of the per-class recalls weighted by support (equal to the accuracy).
    public var weightedRecall: Double { weighted(\.recall) }

    /// One-vs-rest AUC of each class; nil for a class without samples (or with only samples).
    public var classAUCs: [Double?] { rocCurves.map(\.auc) }
    /// Mean of the defined per-class AUCs, nil when none is defined.
    public var macroAUC: Double? {
        let defined = classAUCs.compactMap { $0 }
        return defined.isEmpty ? nil : mean(defined)
    }
    /// AUC of the pooled class-versus-rest decisions.
    public var microAUC: Double? { microROC.auc }
    /// Points of the macro-average ROC curve (see `ROCCurve.macroAverage`).
    public var macroROCPoints: [ROCPoint] { ROCCurve.macroAverage(rocCurves) }

    /// Off-diagonal cells with at least one sample, largest count first (then larger share of the
    /// true class, then class order), at most `limit` of them.
    public func mostConfusedPairs(limit: Int = 10) -> [ConfusedPair] {
        var pairs: [ConfusedPair] = []
        for a in 0..<classCount {
            let support = perClass[a].support
            for b in 0..<classCount where a != b && confusion[a][b] > 0 {
                pairs.append(ConfusedPair(trueClass: a, predictedClass: b,
                                          trueName: classNames[a], predictedName: classNames[b],
                                          count: confusion[a][b],
                                          shareOfTrueClass: Double(confusion[a][b]) / Double(support)))
            }
        }
        pairs.sort {
            ($0.count, $0.shareOfTrueClass, -$0.trueClass, -$0.predictedClass)
                > ($1.count, $1.shareOfTrueClass, -$1.trueClass, -$1.predictedClass)
        }
        return Array(pairs.prefix(max(0, limit)))
    }

    private func weighted(_ score: KeyPath<ClassScores, Double>) -> Double {
        perClass.reduce(0) { $0 + $1[keyPath: score] * Double($1.support) } / Double(sampleCount)
    }

    private func mean(_ values: [Double]) -> Double {
        values.isEmpty ? 0 : values.reduce(0, +) / Double(values.count)
    }
}
