extension ClassificationMetrics {
    /// A plain-text summary for the terminal: accuracy, a per-class table in aligned columns,
    /// macro and weighted averages, the AUCs and the class-balance note.
    public func summaryText() -> String {
        let f = SVGChart.format
        let nameWidth = max(16, (classNames.map(\.count).max() ?? 0) + 2)
        func pad(_ text: String, _ width: Int, right: Bool = true) -> String {
            let fill = String(repeating: " ", count: max(0, width - text.count))
            return right ? fill + text : text + fill
        }
        func row(_ name: String, _ cells: [String]) -> String {
            pad(name, nameWidth, right: false) + cells.map { pad($0, 10) }.joined()
        }

        var lines: [String] = []
        lines.append("Accuracy \(f(accuracy * 100, 2))%  (\(correctCount) of \(sampleCount) images)")
        lines.append("")
        lines.append(row("class", ["precision", "recall", "f1", "support", "AUC"]))
        lines.append(String(repeating: "-", count: nameWidth + 50))
        for (c, scores) in perClass.enumerated() {
            lines.append(row(scores.name, [f(scores.precision, 3), f(scores.recall, 3), f(scores.f1, 3),
                                           "\(scores.support)", classAUCs[c].map { f($0, 3) } ?? "n/a"]))
        }
        lines.append(String(repeating: "-", count: nameWidth + 50))
        lines.append(row("macro average", [f(macroPrecision, 3), f(macroRecall, 3), f(macroF1, 3),
                                           "\(sampleCount)", macroAUC.map { f($0, 3) } ?? "n/a"]))
        lines.append(row("weighted average", [f(weightedPrecision, 3), f(weightedRecall, 3), f(weightedF1, 3),
                                              "\(sampleCount)", ""]))
        lines.append("")
        lines.append("Macro F1 \(f(macroF1, 3))   macro AUC \(macroAUC.map { f($0, 4) } ?? "n/a")"
            + "   micro AUC \(microAUC.map { f($0, 4) } ?? "n/a")")
        let pairs = mostConfusedPairs(limit: 3)
        if !pairs.isEmpty {
            lines.append("Most confused: " + pairs.map {
                "\($0.trueName) -> \($0.predictedName) \($0.count) (\(f($0.shareOfTrueClass * 100, 1))%)"
            }.joined(separator: ", "))
        }
        lines.append(EvaluationReport.classImbalanceNote(self))
        return lines.joined(separator: "\n")
    }
}
