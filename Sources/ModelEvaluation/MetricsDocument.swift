import Foundation

/// The content of `metrics.json`: every number of a `ClassificationMetrics`, the report
/// metadata and, when given, the training log. Keys are snake_case; an undefined AUC is null.
struct MetricsDocument: Encodable {
    struct MetadataItem: Encodable {
        var name: String
        var value: String
    }

    struct ClassEntry: Encodable {
        var name: String
        var precision: Double
        var recall: Double
        var f1: Double
        var support: Int
        var auc: Double?

        enum CodingKeys: String, CodingKey { case name, precision, recall, f1, support, auc }
        func encode(to encoder: Encoder) throws {
            var container = encoder.container(keyedBy: CodingKeys.self)
            try container.encode(name, forKey: .name)
            try container.encode(precision, forKey: .precision)
            try container.encode(recall, forKey: .recall)
            try container.encode(f1, forKey: .f1)
            try container.encode(support, forKey: .support)
            try container.encode(auc, forKey: .auc)
        }
    }

    /// A ROC curve thinned to a 0.002 resolution, rates rounded to 6 decimals.
    struct Curve: Encodable {
        var name: String
        var auc: Double?
        var falsePositiveRate: [Double]
        var truePositiveRate: [Double]

        init(name: String, auc: Double?, points: [ROCPoint]) {
            let thinned = ROCCurve.thin(points, resolution: 0.002)
            func rounded(_ value: Double) -> Double { (value * 1e6).rounded() / 1e6 }
            self.name = name
            self.auc = auc
            self.falsePositiveRate = thinned.map { rounded($0.falsePositiveRate) }
            self.truePositiveRate = thinned.map { rounded($0.truePositiveRate) }
        }

        enum CodingKeys: String, CodingKey { case name, auc, falsePositiveRate, truePositiveRate }
        func encode(to encoder: Encoder) throws {
            var container = encoder.container(keyedBy: CodingKeys.self)
            try container.encode(name, forKey: .name)
            try container.encode(auc, forKey: .auc)
            try container.encode(falsePositiveRate, forKey: .falsePositiveRate)
            try container.encode(truePositiveRate, forKey: .truePositiveRate)
        }
    }

    struct ROCCurves: Encodable {
        var classes: [Curve]
        var micro: Curve
        var macro: Curve
    }

    /// A training-log line; NaN cells become absent keys.
    struct Epoch: Encodable {
        var epoch: Int
        var learningRate: Double?
        var trainLoss: Double?
        var trainAccuracy: Double?
        var validationLoss: Double?
        var validationAccuracy: Double?
        var seconds: Double?

        init(_ entry: TrainingLogEntry) {
            func finite(_ value: Double) -> Double? { value.isFinite ? value : nil }
            epoch = entry.epoch
            learningRate = finite(entry.learningRate)
            trainLoss = finite(entry.trainLoss)
            trainAccuracy = finite(entry.trainAccuracy)
            validationLoss = finite(entry.validationLoss)
            validationAccuracy = finite(entry.validationAccuracy)
            seconds = finite(entry.seconds)
        }
    }

    var metadata: [MetadataItem]
    var classNames: [String]
    var sampleCount: Int
    var correctCount: Int
    var accuracy: Double
    var macroPrecision: Double
    var macroRecall: Double
    var macroF1: Double
    var weightedPrecision: Double
    var weightedRecall: Double
    var weightedF1: Double
    var macroAUC: Double?
    var microAUC: Double?
    var perClass: [ClassEntry]
    var confusionMatrix: [[Int]]
    var confusionMatrixNormalized: [[Double]]
    var mostConfusedPairs: [ConfusedPair]
    var roc: ROCCurves
    var trainingLog: [Epoch]?

    init(metrics: ClassificationMetrics, trainingLog: TrainingLog?, metadata: [(String, String)]) {
        self.metadata = metadata.map { MetadataItem(name: $0.0, value: $0.1) }
        classNames = metrics.classNames
        sampleCount = metrics.sampleCount
        correctCount = metrics.correctCount
        accuracy = metrics.accuracy
        macroPrecision = metrics.macroPrecision
        macroRecall = metrics.macroRecall
        macroF1 = metrics.macroF1
        weightedPrecision = metrics.weightedPrecision
        weightedRecall = metrics.weightedRecall
        weightedF1 = metrics.weightedF1
        macroAUC = metrics.macroAUC
        microAUC = metrics.microAUC
        perClass = zip(metrics.perClass, metrics.classAUCs).map { scores, auc in
            ClassEntry(name: scores.name, precision: scores.precision, recall: scores.recall,
                       f1: scores.f1, support: scores.support, auc: auc)
        }
        confusionMatrix = metrics.confusion
        confusionMatrixNormalized = metrics.normalizedConfusion
        mostConfusedPairs = metrics.mostConfusedPairs(limit: metrics.classCount * (metrics.classCount - 1))
        roc = ROCCurves(
            classes: zip(metrics.classNames, metrics.rocCurves).map { Curve(name: $0, auc: $1.auc, points: $1.points) },
            micro: Curve(name: "micro-average", auc: metrics.microAUC, points: metrics.microROC.points),
            macro: Curve(name: "macro-average", auc: metrics.macroAUC, points: metrics.macroROCPoints))
        self.trainingLog = trainingLog.map { $0.entries.map(Epoch.init) }
    }

    enum CodingKeys: String, CodingKey {
        case metadata, classNames, sampleCount, correctCount, accuracy
        case macroPrecision, macroRecall, macroF1, weightedPrecision, weightedRecall, weightedF1
        case macroAUC, microAUC, perClass, confusionMatrix, confusionMatrixNormalized
        case mostConfusedPairs, roc, trainingLog
    }

    func encode(to encoder: Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(metadata, forKey: .metadata)
        try container.encode(classNames, forKey: .classNames)
        try container.encode(sampleCount, forKey: .sampleCount)
        try container.encode(correctCount, forKey: .correctCount)
        try container.encode(accuracy, forKey: .accuracy)
        try container.encode(macroPrecision, forKey: .macroPrecision)
        try container.encode(macroRecall, forKey: .macroRecall)
        try container.encode(macroF1, forKey: .macroF1)
        try container.encode(weightedPrecision, forKey: .weightedPrecision)
        try container.encode(weightedRecall, forKey: .weightedRecall)
        try container.encode(weightedF1, forKey: .weightedF1)
        try container.encode(macroAUC, forKey: .macroAUC)
        try container.encode(microAUC, forKey: .microAUC)
        try container.encode(perClass, forKey: .perClass)
        try container.encode(confusionMatrix, forKey: .confusionMatrix)
        try container.encode(confusionMatrixNormalized, forKey: .confusionMatrixNormalized)
        try container.encode(mostConfusedPairs, forKey: .mostConfusedPairs)
        try container.encode(roc, forKey: .roc)
        try container.encodeIfPresent(trainingLog, forKey: .trainingLog)
    }
}

extension EvaluationReport {
    /// The bytes of `metrics.json`.
    public static func metricsJSON(metrics: ClassificationMetrics, trainingLog: TrainingLog? = nil,
                                   metadata: [(String, String)] = []) throws -> Data {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        encoder.keyEncodingStrategy = .convertToSnakeCase
        return try encoder.encode(MetricsDocument(metrics: metrics, trainingLog: trainingLog, metadata: metadata))
    }
}
