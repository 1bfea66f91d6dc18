import Foundation

/// Writes an evaluation report folder:
/// `report.html` (self-contained: inline CSS and SVG), `metrics.json`, `confusion_counts.svg`,
/// `confusion_normalized.svg`, `roc.svg` and, with a training log, `learning_curves.svg`.
public enum EvaluationReport {
    /// Names of the files `write` creates, in the order it writes them.
    public enum FileName {
        public static let html = "report.html"
        public static let metrics = "metrics.json"
        public static let confusionCounts = "confusion_counts.svg"
        public static let confusionNormalized = "confusion_normalized.svg"
        public static let roc = "roc.svg"
        public static let learningCurves = "learning_curves.svg"
    }

    /// Creates `folder` (and its parents) and writes the report into it.
    ///
    /// - Parameters:
    ///   - metadata: ordered name/value rows for the report header, for example
    ///     `[("Model", "runs/vgg.safetensors"), ("Data", "fer2013/"), ("Split", "test"), ("TTA", "flip + 4 crops")]`.
    ///     The number of evaluated images is added from `metrics`.
    ///   - trainingLog: adds the learning curves; without it, a stale `learning_curves.svg` is removed.
    /// - Returns: the URLs of the files written.
    @discardableResult
    public static func write(metrics: ClassificationMetrics, trainingLog: TrainingLog? = nil,
                             metadata: [(String, String)] = [], to folder: URL,
                             title: String = "Facial emotion recognition: evaluation") throws -> [URL] {
        let files = FileManager.default
        try files.createDirectory(at: folder, withIntermediateDirectories: true)
        var written: [URL] = []
        func save(_ data: Data, _ name: String) throws {
            let url = folder.appendingPathComponent(name)
            try data.write(to: url, options: .atomic)
            written.append(url)
        }
        func saveSVG(_ svg: String, _ name: String) throws {
            try save(Data(("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n" + svg + "\n").utf8), name)
        }

        let counts = SVGChart.confusionCounts(metrics)
        let normalized = SVGChart.confusionNormalized(metrics)
        let roc = SVGChart.roc(metrics)
        let curves = trainingLog.map(SVGChart.learningCurves)
        try save(Data(html(metrics: metrics, trainingLog: trainingLog, metadata: metadata, title: title,
                           charts: Charts(counts: counts, normalized: normalized, roc: roc, learningCurves: curves)).utf8),
                 FileName.html)
        try save(metricsJSON(metrics: metrics, trainingLog: trainingLog, metadata: metadata), FileName.metrics)
        try saveSVG(counts, FileName.confusionCounts)
        try saveSVG(normalized, FileName.confusionNormalized)
        try saveSVG(roc, FileName.roc)
        let curvesURL = folder.appendingPathComponent(FileName.learningCurves)
        if let curves {
            try saveSVG(curves, FileName.learningCurves)
        } else if files.fileExists(atPath: curvesURL.path) {
            try files.removeItem(at: curvesURL)
        }
        return written
    }

    /// The self-contained HTML page alone.
    public static func html(metrics: ClassificationMetrics, trainingLog: TrainingLog? = nil,
                            metadata: [(String, String)] = [],
                            title: String = "Facial emotion recognition: evaluation") -> String {
        html(metrics: metrics, trainingLog: trainingLog, metadata: metadata, title: title,
             charts: Charts(counts: SVGChart.confusionCounts(metrics),
                            normalized: SVGChart.confusionNormalized(metrics),
                            roc: SVGChart.roc(metrics),
                            learningCurves: trainingLog.map(SVGChart.learningCurves)))
    }

    /// A few sentences on how unequal the class supports are and what that does to accuracy.
    public static func classImbalanceNote(_ metrics: ClassificationMetrics) -> String {
        let total = Double(metrics.sampleCount)
        func share(_ count: Int) -> String { percent(Double(count) / total) }
        let bySupport = metrics.perClass.sorted { $0.support > $1.support }
        guard let largest = bySupport.first, let smallest = bySupport.last else { return "" }
        var sentences: [String] = []
        let empty = metrics.perClass.filter { $0.support == 0 }.map(\.name)
        if !empty.isEmpty {
            sentences.append("No images of \(empty.joined(separator: ", ")) in this set: recall is 0 and AUC undefined there.")
        }
        let smallestPresent = bySupport.last { $0.support > 0 } ?? smallest
        let ratio = Double(largest.support) / Double(max(smallestPresent.support, 1))
        let sizes = "\(largest.name) has \(largest.support) images (\(share(largest.support))), "
            + "\(smallestPresent.name) \(smallestPresent.support) (\(share(smallestPresent.support))), "
            + "a ratio of \(SVGChart.format(ratio, 1)) : 1."
        if ratio >= 3 {
            sentences.append("The classes are strongly imbalanced: " + sizes)
        } else if ratio >= 1.5 {
            sentences.append("The classes are moderately imbalanced: " + sizes)
        } else {
            sentences.append("The classes are roughly balanced: " + sizes)
        }
        sentences.append("Always answering \(largest.name) would score \(share(largest.support)) accuracy.")
        if ratio >= 1.5 {
            sentences.append("Accuracy and weighted F1 (\(SVGChart.format(metrics.weightedF1, 3))) lean on the large classes; "
                + "macro F1 (\(SVGChart.format(metrics.macroF1, 3))) weighs every class equally.")
        }
        return sentences.joined(separator: " ")
    }

    struct Charts {
        var counts: String
        var normalized: String
        var roc: String
        var learningCurves: String?
    }

    static func html(metrics: ClassificationMetrics, trainingLog: TrainingLog?, metadata: [(String, String)],
                     title: String, charts: Charts) -> String {
        let e = SVGChart.escape
        let f = SVGChart.format
        var page = """
        <!DOCTYPE html>
        <html lang="en">
        <head>
        <meta charset="utf-8">
        <meta name="viewport" content="width=device-width, initial-scale=1">
        <title>\(e(title))</title>
        <style>\(style)</style>
        </head>
        <body>
        <main>
        <h1>\(e(title))</h1>

        """

        // Metadata and headline numbers.
        var rows = metadata
        rows.append(("Images evaluated", "\(metrics.sampleCount)"))
        rows.append(("Classes", metrics.classNames.joined(separator: ", ")))
        page += "<table class=\"meta\">\n"
        for (name, value) in rows {
            page += "<tr><th>\(e(name))</th><td>\(e(value))</td></tr>\n"
        }
        page += "</table>\n"

        func card(_ label: String, _ value: String, _ detail: String, main: Bool = false) -> String {
            "<div class=\"card\(main ? " main" : "")\"><div class=\"value\">\(e(value))</div>"
                + "<div class=\"label\">\(e(label))</div><div class=\"detail\">\(e(detail))</div></div>\n"
        }
        page += "<div class=\"cards\">\n"
        page += card("Accuracy", percent(metrics.accuracy),
                     "\(metrics.correctCount) of \(metrics.sampleCount) images", main: true)
        page += card("Macro F1", f(metrics.macroF1, 3), "mean over classes")
        page += card("Weighted F1", f(metrics.weightedF1, 3), "weighted by support")
        page += card("Macro AUC", metrics.macroAUC.map { f($0, 3) } ?? "n/a", "mean one-vs-rest AUC")
        page += card("Micro AUC", metrics.microAUC.map { f($0, 3) } ?? "n/a", "all decisions pooled")
        page += "</div>\n"

        // Per-class table.
        page += "<h2>Per class</h2>\n<table class=\"data\">\n"
        page += "<thead><tr><th>Class</th><th class=\"num\">Precision</th><th class=\"num\">Recall</th>"
            + "<th class=\"num\">F1</th><th></th><th class=\"num\">Support</th><th class=\"num\">Share</th>"
            + "<th class=\"num\">AUC</th></tr></thead>\n<tbody>\n"
        for (c, scores) in metrics.perClass.enumerated() {
            page += "<tr><td>\(swatch(c))\(e(scores.name))</td>"
                + "<td class=\"num\">\(f(scores.precision, 3))</td><td class=\"num\">\(f(scores.recall, 3))</td>"
                + "<td class=\"num\">\(f(scores.f1, 3))</td>"
                + "<td class=\"bar\"><span style=\"width:\(f(scores.f1 * 100, 1))%\"></span></td>"
                + "<td class=\"num\">\(scores.support)</td>"
                + "<td class=\"num\">\(percent(Double(scores.support) / Double(metrics.sampleCount)))</td>"
                + "<td class=\"num\">\(metrics.classAUCs[c].map { f($0, 3) } ?? "n/a")</td></tr>\n"
        }
        page += "</tbody>\n<tfoot>\n"
        page += "<tr><td>macro average</td><td class=\"num\">\(f(metrics.macroPrecision, 3))</td>"
            + "<td class=\"num\">\(f(metrics.macroRecall, 3))</td><td class=\"num\">\(f(metrics.macroF1, 3))</td><td></td>"
            + "<td class=\"num\">\(metrics.sampleCount)</td><td></td>"
            + "<td class=\"num\">\(metrics.macroAUC.map { f($0, 3) } ?? "n/a")</td></tr>\n"
        page += "<tr><td>weighted average</td><td class=\"num\">\(f(metrics.weightedPrecision, 3))</td>"
            + "<td class=\"num\">\(f(metrics.weightedRecall, 3))</td><td class=\"num\">\(f(metrics.weightedF1, 3))</td><td></td>"
            + "<td class=\"num\">\(metrics.sampleCount)</td><td></td><td></td></tr>\n"
        page += "</tfoot>\n</table>\n"
        page += "<p class=\"note\"><strong>Class balance.</strong> \(e(classImbalanceNote(metrics)))</p>\n"

        // Confusion matrices.
        page += "<h2>Confusion matrix</h2>\n"
        page += "<p class=\"caption\">Rows are the true class, columns the prediction (argmax); the diagonal, outlined, "
            + "holds the correct answers. Row-normalised cells are the share of each true class, so the diagonal is the recall.</p>\n"
        page += "<div class=\"figures pair\">\n<figure>\(charts.counts)</figure>\n<figure>\(charts.normalized)</figure>\n</div>\n"

        // ROC.
        page += "<h2>ROC curves</h2>\n<div class=\"figures\">\n<figure>\(charts.roc)</figure>\n"
        page += "<table class=\"data auc\">\n<thead><tr><th>Curve</th><th class=\"num\">AUC</th>"
            + "<th class=\"num\">Positives</th><th class=\"num\">Negatives</th></tr></thead>\n<tbody>\n"
        for (c, curve) in metrics.rocCurves.enumerated() {
            page += "<tr><td>\(swatch(c))\(e(metrics.classNames[c]))</td>"
                + "<td class=\"num\">\(curve.auc.map { f($0, 4) } ?? "n/a")</td>"
                + "<td class=\"num\">\(curve.positiveCount)</td><td class=\"num\">\(curve.negativeCount)</td></tr>\n"
        }
        page += "</tbody>\n<tfoot>\n"
        page += "<tr><td>macro average</td><td class=\"num\">\(metrics.macroAUC.map { f($0, 4) } ?? "n/a")</td><td></td><td></td></tr>\n"
        page += "<tr><td>micro average</td><td class=\"num\">\(metrics.microAUC.map { f($0, 4) } ?? "n/a")</td>"
            + "<td class=\"num\">\(metrics.microROC.positiveCount)</td><td class=\"num\">\(metrics.microROC.negativeCount)</td></tr>\n"
        page += "</tfoot>\n</table>\n</div>\n"
        page += "<p class=\"caption\">One class against the rest, scored by its predicted probability. The macro average is "
            + "the mean of the class AUCs (its curve averages the class curves); the micro average pools every "
            + "image-and-class decision into one curve.</p>\n"

        // Learning curves.
        if let trainingLog, let curves = charts.learningCurves {
            page += "<h2>Learning curves</h2>\n<div class=\"figures\">\n<figure>\(curves)</figure>\n</div>\n"
            page += "<p class=\"caption\">\(e(trainingSummary(trainingLog)))</p>\n"
        }

        // Most confused pairs.
        let pairs = metrics.mostConfusedPairs(limit: 10)
        page += "<h2>Most confused pairs</h2>\n"
        if pairs.isEmpty {
            page += "<p>No image was misclassified.</p>\n"
        } else {
            page += "<table class=\"data\">\n<thead><tr><th class=\"num\">#</th><th>True class</th><th>Predicted as</th>"
                + "<th class=\"num\">Images</th><th class=\"num\">Share of true class</th><th></th></tr></thead>\n<tbody>\n"
            for (rank, pair) in pairs.enumerated() {
                page += "<tr><td class=\"num\">\(rank + 1)</td><td>\(swatch(pair.trueClass))\(e(pair.trueName))</td>"
                    + "<td>\(swatch(pair.predictedClass))\(e(pair.predictedName))</td>"
                    + "<td class=\"num\">\(pair.count)</td><td class=\"num\">\(percent(pair.shareOfTrueClass))</td>"
                    + "<td class=\"bar\"><span style=\"width:\(f(pair.shareOfTrueClass * 100, 1))%\"></span></td></tr>\n"
            }
            page += "</tbody>\n</table>\n"
        }

        page += "<footer>Charts are SVG written by ModelEvaluation; every number is also in metrics.json.</footer>\n"
        page += "</main>\n</body>\n</html>\n"
        return page
    }

    static func trainingSummary(_ log: TrainingLog) -> String {
        guard let last = log.entries.last else { return "The training log has no epochs." }
        var parts = ["\(log.entries.count) epoch\(log.entries.count == 1 ? "" : "s")"]
        let seconds = log.entries.map(\.seconds).filter(\.isFinite).reduce(0, +)
        if seconds > 0 { parts[0] += " in \(duration(seconds))" }
        if let best = log.bestValidationEntry {
            parts.append("best validation accuracy \(percent(best.validationAccuracy)) at epoch \(best.epoch)"
                + (best.validationLoss.isFinite ? " (validation loss \(SVGChart.format(best.validationLoss, 3)))" : ""))
        }
        if last.trainAccuracy.isFinite {
            var final = "last epoch: train accuracy \(percent(last.trainAccuracy))"
            if last.validationAccuracy.isFinite { final += ", validation \(percent(last.validationAccuracy))" }
            parts.append(final)
        }
        return parts.joined(separator: "; ") + "."
    }

    static func percent(_ fraction: Double) -> String { SVGChart.format(fraction * 100, 1) + "%" }

    static func duration(_ seconds: Double) -> String {
        let total = Int(seconds.rounded())
        let hours = total / 3600, minutes = (total % 3600) / 60, rest = total % 60
        return hours > 0 ? "\(hours) h \(minutes) min" : minutes > 0 ? "\(minutes) min \(rest) s" : "\(rest) s"
    }

    static func swatch(_ classIndex: Int) -> String {
        "<span class=\"swatch\" style=\"background:\(SVGChart.classColor(classIndex))\"></span>"
    }

    static let style = """

    :root { color-scheme: light; }
    body { margin: 0; background: #f4f5f7; color: #1b1b1b; line-height: 1.45;
           font-family: \(SVGChart.sansSerif); font-size: 15px; }
    main { max-width: 1240px; margin: 0 auto; padding: 28px 32px 56px; }
    h1 { font-size: 26px; margin: 0 0 16px; }
    h2 { font-size: 19px; margin: 36px 0 12px; padding-bottom: 6px; border-bottom: 1px solid #d9dde3; }
    table { border-collapse: collapse; background: #fff; font-size: 14px; }
    th, td { padding: 6px 12px; border-bottom: 1px solid #e7e9ec; text-align: left; }
    thead th { background: #eef0f3; font-weight: 600; }
    tfoot td { font-weight: 600; background: #f8f9fa; }
    .num { text-align: right; font-variant-numeric: tabular-nums; }
    table.meta th { width: 160px; color: #555f6d; font-weight: 600; background: #fafbfc; }
    table.meta td { font-family: ui-monospace, 'SF Mono', Menlo, Consolas, monospace; font-size: 13px; word-break: break-all; }
    table.meta, table.data { border: 1px solid #d9dde3; }
    .cards { display: flex; flex-wrap: wrap; gap: 14px; margin: 20px 0 4px; }
    .card { background: #fff; border: 1px solid #d9dde3; border-radius: 8px; padding: 12px 18px; min-width: 150px; }
    .card.main { border-color: #2171b5; box-shadow: inset 4px 0 0 #2171b5; }
    .card .value { font-size: 28px; font-weight: 650; font-variant-numeric: tabular-nums; }
    .card.main .value { color: #08519c; }
    .card .label { font-size: 14px; font-weight: 600; }
    .card .detail { font-size: 12px; color: #66707d; }
    td.bar { width: 120px; padding-left: 0; }
    td.bar span { display: block; height: 10px; border-radius: 2px; background: #6baed6; }
    .swatch { display: inline-block; width: 10px; height: 10px; border-radius: 2px; margin-right: 8px; }
    .note { background: #fff8e1; border-left: 4px solid #f2b600; padding: 10px 14px; max-width: 900px; }
    .caption { color: #4a5360; font-size: 14px; max-width: 900px; }
    .figures { display: flex; flex-wrap: wrap; gap: 16px; align-items: flex-start; }
    figure { margin: 0; background: #fff; border: 1px solid #d9dde3; border-radius: 8px; padding: 8px; }
    figure svg { display: block; max-width: 100%; height: auto; }
    .figures.pair { display: grid; grid-template-columns: repeat(auto-fit, minmax(440px, 1fr)); }
    .figures.pair svg { width: 100%; }
    table.auc { align-self: flex-start; }
    footer { margin-top: 40px; color: #7a828d; font-size: 12px; }

    """
}
