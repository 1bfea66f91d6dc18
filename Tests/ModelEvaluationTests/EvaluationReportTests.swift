import Foundation
#if canImport(FoundationXML)
import FoundationXML
#endif
import ModelEvaluation
import Testing

/// True when `text` parses as XML; the parser's error otherwise.
func xmlError(_ text: String) -> String? {
    let parser = XMLParser(data: Data(text.utf8))
    return parser.parse() ? nil : String(describing: parser.parserError)
}

@Suite struct EvaluationReportTests {
    let classNames = ["angry", "disgust", "fear", "happy", "sad", "surprise", "neutral"]

    func randomMetrics(names: [String]) throws -> ClassificationMetrics {
        var random = SeededGenerator(state: 42)
        let labels = (0..<400).map { _ in Int.random(in: 0..<names.count, using: &random) }
        let probabilities: [[Float]] = labels.map { label in
            let row = (0..<names.count).map { c in Float.random(in: 0...1, using: &random) + (c == label ? 0.8 : 0) }
            let sum = row.reduce(0, +)
            return row.map { $0 / sum }
        }
        return try ClassificationMetrics(labels: labels, probabilities: probabilities, classNames: names)
    }

    let log = TrainingLog(entries: (1...12).map { epoch in
        let e = Double(epoch)
        return TrainingLogEntry(epoch: epoch, learningRate: 0.001 / e, trainLoss: 1.9 / e.squareRoot(),
                                trainAccuracy: 0.25 + 0.04 * e, validationLoss: 1.8 / e.squareRoot() + 0.01 * e,
                                validationAccuracy: 0.28 + 0.03 * e - 0.001 * e * e, seconds: 60)
    })

    @Test func writesParseableFiles() throws {
        let metrics = try randomMetrics(names: classNames)
        let folder = FileManager.default.temporaryDirectory
            .appendingPathComponent("model-evaluation-\(UUID().uuidString)/nested/report")
        defer { try? FileManager.default.removeItem(at: folder.deletingLastPathComponent().deletingLastPathComponent()) }
        let written = try EvaluationReport.write(
            metrics: metrics, trainingLog: log,
            metadata: [("Model", "runs/<small> & \"fast\".safetensors"), ("Data", "fer2013"), ("Split", "test"), ("TTA", "off")],
            to: folder)
        #expect(Set(written.map(\.lastPathComponent)) == [
            "report.html", "metrics.json", "confusion_counts.svg", "confusion_normalized.svg", "roc.svg", "learning_curves.svg",
        ])

        for name in ["confusion_counts.svg", "confusion_normalized.svg", "roc.svg", "learning_curves.svg"] {
            let svg = try String(contentsOf: folder.appendingPathComponent(name), encoding: .utf8)
            #expect(xmlError(svg) == nil, "\(name) is not well-formed XML")
        }

        // Every SVG inlined in the page is well-formed too, and the page has all its sections.
        let html = try String(contentsOf: folder.appendingPathComponent("report.html"), encoding: .utf8)
        var inline: [String] = []
        var rest = html[...]
        while let start = rest.range(of: "<svg "), let end = rest.range(of: "</svg>", range: start.upperBound..<rest.endIndex) {
            inline.append(String(rest[start.lowerBound..<end.upperBound]))
            rest = rest[end.upperBound...]
        }
        #expect(inline.count == 4)
        for svg in inline { #expect(xmlError(svg) == nil) }
        for heading in ["Per class", "Confusion matrix", "ROC curves", "Learning curves", "Most confused pairs"] {
            #expect(html.contains("<h2>\(heading)</h2>"))
        }
        #expect(html.contains("runs/&lt;small&gt; &amp; &quot;fast&quot;.safetensors"))
        #expect(!html.contains("<script"))

        let json = try JSONSerialization.jsonObject(with: Data(contentsOf: folder.appendingPathComponent("metrics.json")))
        let document = try #require(json as? [String: Any])
        let accuracy = try #require(document["accuracy"] as? Double)
        #expect(abs(accuracy - metrics.accuracy) < 1e-12)
        #expect(document["confusion_matrix"] as? [[Int]] == metrics.confusion)
        let perClass = try #require(document["per_class"] as? [[String: Any]])
        #expect(perClass.map { $0["name"] as? String } == classNames)
        #expect(abs((perClass[3]["f1"] as? Double ?? -1) - metrics.perClass[3].f1) < 1e-12)
        #expect(abs((document["micro_auc"] as? Double ?? -1) - metrics.microAUC!) < 1e-12)
        #expect((document["training_log"] as? [Any])?.count == 12)
    }

    @Test func escapesClassNamesAndOmitsCurvesWithoutLog() throws {
        let names = ["a<b", "c&d", "\"e\"", "f'g"]
        let metrics = try randomMetrics(names: names)
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("model-evaluation-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: folder) }
        try EvaluationReport.write(metrics: metrics, trainingLog: log, to: folder)
        let written = try EvaluationReport.write(metrics: metrics, to: folder)
        #expect(!written.map(\.lastPathComponent).contains("learning_curves.svg"))
        #expect(!FileManager.default.fileExists(atPath: folder.appendingPathComponent("learning_curves.svg").path),
                "a stale learning-curves chart is removed")
        for name in ["confusion_counts.svg", "confusion_normalized.svg", "roc.svg"] {
            let svg = try String(contentsOf: folder.appendingPathComponent(name), encoding: .utf8)
            #expect(xmlError(svg) == nil, "\(name) is not well-formed XML")
            #expect(svg.contains("a&lt;b") && svg.contains("c&amp;d"))
        }
        let html = try String(contentsOf: folder.appendingPathComponent("report.html"), encoding: .utf8)
        #expect(!html.contains("<h2>Learning curves</h2>"))
    }

    @Test func learningCurvesSurviveOneEpochAndMissingValues() {
        let short = TrainingLog(entries: [
            TrainingLogEntry(epoch: 1, learningRate: 0.1, trainLoss: 1.2, trainAccuracy: 0.5,
                             validationLoss: .nan, validationAccuracy: .nan, seconds: 3),
        ])
        let svg = SVGChart.learningCurves(short)
        #expect(xmlError(svg) == nil)
        #expect(!svg.contains("nan") && !svg.contains("inf"))
    }
}
