import Foundation

/// Charts as self-contained SVG strings: no scripts, no external fonts or files, no element ids
/// (so several charts can be inlined in one HTML page), every text escaped.
public enum SVGChart {

    // MARK: Confusion matrices

    /// The confusion matrix in counts, coloured by count.
    public static func confusionCounts(_ metrics: ClassificationMetrics) -> String {
        let values = metrics.confusion.map { $0.map(Double.init) }
        return heatMap(values: values,
                       cellTexts: metrics.confusion.map { $0.map(String.init) },
                       rowLabels: metrics.classNames, columnLabels: metrics.classNames,
                       title: "Confusion matrix (counts)",
                       legendFormat: { String(Int($0.rounded())) })
    }

    /// The confusion matrix with each row divided by the class support, in percent.
    public static func confusionNormalized(_ metrics: ClassificationMetrics) -> String {
        let values = metrics.normalizedConfusion
        return heatMap(values: values,
                       cellTexts: values.map { $0.map { format($0 * 100, 1) + "%" } },
                       rowLabels: metrics.classNames, columnLabels: metrics.classNames,
                       title: "Confusion matrix (row-normalised: recall per true class)",
                       colorScaleMaximum: 1,
                       legendFormat: { format($0 * 100, 0) + "%" })
    }

    /// A heat map: `values[row][column]` sets the colour (white to dark blue, 0 to
    /// `colorScaleMaximum`, by default the largest value), `cellTexts` is written in the cells.
    public static func heatMap(values: [[Double]], cellTexts: [[String]],
                               rowLabels: [String], columnLabels: [String], title: String,
                               rowAxisTitle: String = "True class",
                               columnAxisTitle: String = "Predicted class",
                               colorScaleMaximum: Double? = nil,
                               legendFormat: (Double) -> String = { String(format: "%.2f", $0) }) -> String {
        let rows = values.count
        let columns = values.first?.count ?? 0
        let cell = rows <= 10 ? 60.0 : max(24, 600 / Double(rows))
        let labelSize = 12.5
        // About 0.55 em per character of a sans-serif face.
        let rowLabelWidth = Double(rowLabels.map(\.count).max() ?? 0) * labelSize * 0.55 + 14
        let columnLabelChars = Double(columnLabels.map(\.count).max() ?? 0)
        let rotateColumnLabels = columnLabelChars * labelSize * 0.55 > cell - 3
        let columnLabelHeight = rotateColumnLabels ? columnLabelChars * labelSize * 0.45 + 18 : 22

        let left = 34 + rowLabelWidth
        let top = 54.0
        let gridWidth = cell * Double(columns), gridHeight = cell * Double(rows)
        let legendX = left + gridWidth + 22
        let width = legendX + 16 + 48
        let height = top + gridHeight + columnLabelHeight + 34
        let maximum = max(colorScaleMaximum ?? values.flatMap { $0 }.max() ?? 1, 1e-12)

        var svg = Canvas(width: width, height: height, title: title)
        svg.text(title, x: left + gridWidth / 2, y: 26, size: 15, anchor: "middle", weight: "600")
        for row in 0..<rows {
            for column in 0..<min(columns, values[row].count) {
                let x = left + Double(column) * cell, y = top + Double(row) * cell
                let intensity = min(max(values[row][column] / maximum, 0), 1)
                svg.rect(x: x, y: y, width: cell, height: cell, fill: blues(intensity), stroke: "#ffffff")
                if row < cellTexts.count, column < cellTexts[row].count {
                    svg.text(cellTexts[row][column], x: x + cell / 2, y: y + cell / 2 + 4.5,
                             size: min(13, cell / 4.6), anchor: "middle",
                             fill: intensity > 0.55 ? "#ffffff" : "#1b1b1b",
                             weight: row == column ? "600" : nil)
                }
            }
        }
        // Diagonal cells outlined: the correct predictions.
        for d in 0..<min(rows, columns) {
            svg.rect(x: left + Double(d) * cell + 1, y: top + Double(d) * cell + 1,
                     width: cell - 2, height: cell - 2, fill: "none", stroke: "#333333", strokeWidth: 1)
        }
        for (row, label) in rowLabels.prefix(rows).enumerated() {
            svg.text(label, x: left - 8, y: top + (Double(row) + 0.5) * cell + 4.5, size: labelSize, anchor: "end")
        }
        for (column, label) in columnLabels.prefix(columns).enumerated() {
            let x = left + (Double(column) + 0.5) * cell, y = top + gridHeight + 16
            if rotateColumnLabels {
                svg.text(label, x: x, y: y, size: labelSize, anchor: "end",
                         transform: "rotate(-40 \(format(x, 1)) \(format(y - 4, 1)))")
            } else {
                svg.text(label, x: x, y: y, size: labelSize, anchor: "middle")
            }
        }
        svg.text(columnAxisTitle, x: left + gridWidth / 2, y: top + gridHeight + columnLabelHeight + 22,
                 size: 13, anchor: "middle", fill: "#444444", weight: "600")
        let rowTitleX = 16.0, rowTitleY = top + gridHeight / 2
        svg.text(rowAxisTitle, x: rowTitleX, y: rowTitleY, size: 13, anchor: "middle", fill: "#444444",
                 weight: "600", transform: "rotate(-90 \(format(rowTitleX, 1)) \(format(rowTitleY, 1)))")

        // Colour legend: a stack of thin bands (no gradient, so no ids).
        let bands = 60
        for band in 0..<bands {
            let bandHeight = gridHeight / Double(bands)
            svg.rect(x: legendX, y: top + Double(band) * bandHeight, width: 16, height: bandHeight + 0.5,
                     fill: blues(1 - (Double(band) + 0.5) / Double(bands)), stroke: nil)
        }
        svg.rect(x: legendX, y: top, width: 16, height: gridHeight, fill: "none", stroke: "#999999", strokeWidth: 0.8)
        for fraction in [0.0, 0.5, 1.0] {
            let y = top + gridHeight * (1 - fraction)
            svg.line(x1: legendX + 16, y1: y, x2: legendX + 20, y2: y, stroke: "#999999")
            svg.text(legendFormat(fraction * maximum), x: legendX + 23, y: y + 4, size: 11, anchor: "start", fill: "#444444")
        }
        return svg.rendered()
    }

    // MARK: ROC

    /// One-vs-rest ROC curve of every class, the micro- and macro-average curves, the chance
    /// diagonal and a legend with each AUC.
    public static func roc(_ metrics: ClassificationMetrics) -> String {
        let plot = 420.0
        let left = 66.0, top = 46.0, bottom = 58.0
        let legendX = left + plot + 28
        let legendWidth = 210.0
        let width = legendX + legendWidth, height = top + plot + bottom
        let title = "ROC curves, one class versus the rest"
        var svg = Canvas(width: width, height: height, title: title)
        svg.text(title, x: left + plot / 2, y: 26, size: 15, anchor: "middle", weight: "600")

        func x(_ rate: Double) -> Double { left + rate * plot }
        func y(_ rate: Double) -> Double { top + (1 - rate) * plot }

        svg.rect(x: left, y: top, width: plot, height: plot, fill: "#ffffff", stroke: nil)
        for step in 0...5 {
            let value = Double(step) / 5
            svg.line(x1: x(value), y1: top, x2: x(value), y2: top + plot, stroke: "#e6e6e6")
            svg.line(x1: left, y1: y(value), x2: left + plot, y2: y(value), stroke: "#e6e6e6")
            svg.text(format(value, 1), x: x(value), y: top + plot + 18, size: 11, anchor: "middle", fill: "#444444")
            svg.text(format(value, 1), x: left - 8, y: y(value) + 4, size: 11, anchor: "end", fill: "#444444")
        }
        svg.rect(x: left, y: top, width: plot, height: plot, fill: "none", stroke: "#888888", strokeWidth: 1)
        svg.text("False positive rate", x: left + plot / 2, y: top + plot + 42, size: 13, anchor: "middle",
                 fill: "#444444", weight: "600")
        svg.text("True positive rate", x: 20, y: top + plot / 2, size: 13, anchor: "middle", fill: "#444444",
                 weight: "600", transform: "rotate(-90 20 \(format(top + plot / 2, 1)))")
        svg.line(x1: x(0), y1: y(0), x2: x(1), y2: y(1), stroke: "#aaaaaa", strokeWidth: 1, dash: "4 4")

        func polyline(_ points: [ROCPoint]) -> [(Double, Double)] {
            ROCCurve.thin(points, resolution: 0.5 / plot).map { (x($0.falsePositiveRate), y($0.truePositiveRate)) }
        }
        struct Entry { var name: String; var auc: Double?; var color: String; var width: Double; var dash: String? }
        var entries: [Entry] = []
        for (c, curve) in metrics.rocCurves.enumerated() where curve.auc != nil {
            let color = classColor(c)
            svg.polyline(polyline(curve.points), stroke: color, strokeWidth: 1.8)
            entries.append(Entry(name: metrics.classNames[c], auc: curve.auc, color: color, width: 2.4, dash: nil))
        }
        let macro = metrics.macroROCPoints
        if !macro.isEmpty {
            svg.polyline(polyline(macro), stroke: "#1a237e", strokeWidth: 2.4, dash: "2 3")
            entries.append(Entry(name: "macro-average", auc: metrics.macroAUC, color: "#1a237e", width: 2.4, dash: "2 3"))
        }
        if metrics.microROC.auc != nil {
            svg.polyline(polyline(metrics.microROC.points), stroke: "#111111", strokeWidth: 2.2, dash: "7 4")
            entries.append(Entry(name: "micro-average", auc: metrics.microAUC, color: "#111111", width: 2.2, dash: "7 4"))
        }
        entries.append(Entry(name: "chance", auc: 0.5, color: "#aaaaaa", width: 1, dash: "4 4"))

        svg.text("Curve", x: legendX + 34, y: top + 12, size: 12, anchor: "start", fill: "#444444", weight: "600")
        svg.text("AUC", x: legendX + legendWidth - 14, y: top + 12, size: 12, anchor: "end", fill: "#444444", weight: "600")
        for (i, entry) in entries.enumerated() {
            let rowY = top + 34 + Double(i) * 22
            svg.line(x1: legendX, y1: rowY - 4, x2: legendX + 26, y2: rowY - 4,
                     stroke: entry.color, strokeWidth: entry.width, dash: entry.dash)
            svg.text(entry.name, x: legendX + 34, y: rowY, size: 13, anchor: "start")
            svg.text(entry.auc.map { format($0, 3) } ?? "n/a", x: legendX + legendWidth - 14, y: rowY,
                     size: 13, anchor: "end", family: monospace)
        }
        let undefined = metrics.rocCurves.indices.filter { metrics.rocCurves[$0].auc == nil }
        if !undefined.isEmpty {
            let names = undefined.map { metrics.classNames[$0] }.joined(separator: ", ")
            svg.text("No curve (no samples): \(names)", x: legendX, y: top + 34 + Double(entries.count) * 22 + 8,
                     size: 11, anchor: "start", fill: "#666666")
        }
        return svg.rendered()
    }

    // MARK: Learning curves

    /// Two panels: loss (train and validation) and accuracy in percent (train and validation),
    /// by epoch, with the best validation epoch marked.
    public static func learningCurves(_ log: TrainingLog) -> String {
        let panelWidth = 380.0, panelHeight = 260.0
        let left = 62.0, top = 56.0, bottom = 52.0, gap = 44.0
        let width = left + panelWidth + gap + left + panelWidth + 20
        let height = top + panelHeight + bottom
        let title = "Learning curves"
        var svg = Canvas(width: width, height: height, title: title)
        svg.text(title, x: width / 2, y: 22, size: 15, anchor: "middle", weight: "600")

        let epochs = log.entries.map { Double($0.epoch) }
        let best = log.bestValidationEntry
        let train = "#1f77b4", validation = "#ff7f0e"
        linePanel(&svg, originX: left, originY: top, width: panelWidth, height: panelHeight,
                  title: "Loss", xs: epochs,
                  series: [("train", log.entries.map(\.trainLoss), train),
                           ("validation", log.entries.map(\.validationLoss), validation)],
                  includeZero: true, valueFormat: nil,
                  marker: best.map { (Double($0.epoch), nil) })
        linePanel(&svg, originX: left + panelWidth + gap + left, originY: top, width: panelWidth, height: panelHeight,
                  title: "Accuracy (%)", xs: epochs,
                  series: [("train", log.entries.map { $0.trainAccuracy * 100 }, train),
                           ("validation", log.entries.map { $0.validationAccuracy * 100 }, validation)],
                  includeZero: false, valueFormat: { format($0, 1) + "%" },
                  marker: best.map { (Double($0.epoch), $0.validationAccuracy * 100) })
        return svg.rendered()
    }

    private static func linePanel(_ svg: inout Canvas, originX: Double, originY: Double,
                                  width: Double, height: Double, title: String, xs: [Double],
                                  series: [(name: String, values: [Double], color: String)],
                                  includeZero: Bool, valueFormat: ((Double) -> String)?,
                                  marker: (x: Double, value: Double?)?) {
        let finiteXs = xs.filter(\.isFinite)
        var xLow = finiteXs.min() ?? 0, xHigh = finiteXs.max() ?? 1
        if xHigh - xLow < 1 { xLow -= 1; xHigh += 1 }
        let xTicks = niceTicks(xLow, xHigh, target: 8, integer: true)
        xLow = xTicks.first ?? xLow
        xHigh = xTicks.last ?? xHigh

        let finiteValues = series.flatMap(\.values).filter(\.isFinite)
        var yLow = finiteValues.min() ?? 0, yHigh = finiteValues.max() ?? 1
        if includeZero { yLow = min(yLow, 0) }
        if yHigh - yLow < 1e-9 { yLow -= 0.5; yHigh += 0.5 }
        let yTicks = niceTicks(yLow, yHigh, target: 6, integer: false)
        yLow = yTicks.first ?? yLow
        yHigh = yTicks.last ?? yHigh
        let yStep = yTicks.count > 1 ? yTicks[1] - yTicks[0] : 1
        let yDigits = max(0, Int(-floor(log10(yStep) + 1e-9)))

        func px(_ value: Double) -> Double { originX + (value - xLow) / (xHigh - xLow) * width }
        func py(_ value: Double) -> Double { originY + (1 - (value - yLow) / (yHigh - yLow)) * height }

        for tick in yTicks {
            svg.line(x1: originX, y1: py(tick), x2: originX + width, y2: py(tick), stroke: "#e6e6e6")
            svg.text(format(tick, yDigits), x: originX - 8, y: py(tick) + 4, size: 11, anchor: "end", fill: "#444444")
        }
        for tick in xTicks {
            svg.line(x1: px(tick), y1: originY, x2: px(tick), y2: originY + height, stroke: "#f0f0f0")
            svg.line(x1: px(tick), y1: originY + height, x2: px(tick), y2: originY + height + 4, stroke: "#888888")
            svg.text(format(tick, 0), x: px(tick), y: originY + height + 18, size: 11, anchor: "middle", fill: "#444444")
        }
        svg.rect(x: originX, y: originY, width: width, height: height, fill: "none", stroke: "#888888", strokeWidth: 1)
        svg.text("Epoch", x: originX + width / 2, y: originY + height + 40, size: 13, anchor: "middle",
                 fill: "#444444", weight: "600")
        svg.text(title, x: originX, y: originY - 12, size: 14, anchor: "start", weight: "600")

        if let marker, marker.x >= xLow, marker.x <= xHigh {
            svg.line(x1: px(marker.x), y1: originY, x2: px(marker.x), y2: originY + height,
                     stroke: "#9e9e9e", strokeWidth: 1, dash: "3 3")
            if let value = marker.value, let valueFormat {
                let anchorEnd = px(marker.x) > originX + width * 0.6
                svg.text("best val \(valueFormat(value)) @ \(Int(marker.x))",
                         x: px(marker.x) + (anchorEnd ? -5 : 5), y: originY + height - 8,
                         size: 11, anchor: anchorEnd ? "end" : "start", fill: "#555555")
            }
        }

        for entry in series {
            // Non-finite values break the line into separate runs.
            var run: [(Double, Double)] = []
            var runs: [[(Double, Double)]] = []
            for (xValue, value) in zip(xs, entry.values) {
                if xValue.isFinite && value.isFinite {
                    run.append((px(xValue), py(value)))
                } else if !run.isEmpty {
                    runs.append(run); run = []
                }
            }
            if !run.isEmpty { runs.append(run) }
            for run in runs {
                if run.count > 1 { svg.polyline(run, stroke: entry.color, strokeWidth: 2) }
                if xs.count <= 40 || run.count == 1 {
                    for point in run { svg.circle(x: point.0, y: point.1, radius: 2.8, fill: entry.color) }
                }
            }
        }

        // Legend on the title line, right-aligned.
        var legendX = originX + width
        for entry in series.reversed() {
            let textWidth = Double(entry.name.count) * 12 * 0.6
            legendX -= textWidth
            svg.text(entry.name, x: legendX, y: originY - 12, size: 12, anchor: "start", fill: "#333333")
            legendX -= 26
            svg.line(x1: legendX, y1: originY - 16, x2: legendX + 20, y2: originY - 16, stroke: entry.color, strokeWidth: 2.4)
            legendX -= 14
        }
    }

    // MARK: Helpers

    /// Text for SVG or HTML: `& < > " '` escaped.
    public static func escape(_ text: String) -> String {
        var escaped = ""
        escaped.reserveCapacity(text.utf8.count)
        for character in text {
            switch character {
            case "&": escaped += "&amp;"
            case "<": escaped += "&lt;"
            case ">": escaped += "&gt;"
            case "\"": escaped += "&quot;"
            case "'": escaped += "&#39;"
            default: escaped.append(character)
            }
        }
        return escaped
    }

    /// A colour per class index (Tableau 10), the same in every chart.
    public static func classColor(_ index: Int) -> String {
        let palette = ["#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#1f77b4",
                       "#e377c2", "#7f7f7f", "#8c564b", "#bcbd22", "#17becf"]
        return palette[((index % palette.count) + palette.count) % palette.count]
    }

    static let sansSerif = "system-ui, -apple-system, 'Segoe UI', Roboto, 'Helvetica Neue', Arial, sans-serif"
    static let monospace = "ui-monospace, 'SF Mono', Menlo, Consolas, 'DejaVu Sans Mono', monospace"

    /// `value` with a fixed number of decimals, "." as separator whatever the locale.
    static func format(_ value: Double, _ decimals: Int) -> String {
        let text = String(format: "%.\(decimals)f", value)
        return text == "-" + String(format: "%.\(decimals)f", 0.0) ? String(text.dropFirst()) : text
    }

    /// Matplotlib's "Blues" ramp, `t` in 0...1.
    static func blues(_ t: Double) -> String {
        let stops: [(Double, Double, Double)] = [
            (247, 251, 255), (222, 235, 247), (198, 219, 239), (158, 202, 225), (107, 174, 214),
            (66, 146, 198), (33, 113, 181), (8, 81, 156), (8, 48, 107),
        ]
        let position = min(max(t, 0), 1) * Double(stops.count - 1)
        let index = min(Int(position), stops.count - 2)
        let f = position - Double(index)
        let (a, b) = (stops[index], stops[index + 1])
        func channel(_ x: Double, _ y: Double) -> Int { Int((x + (y - x) * f).rounded()) }
        return String(format: "#%02x%02x%02x", channel(a.0, b.0), channel(a.1, b.1), channel(a.2, b.2))
    }

    /// Round tick values (1, 2 or 5 times a power of ten) covering `low...high`.
    static func niceTicks(_ low: Double, _ high: Double, target: Int, integer: Bool) -> [Double] {
        let span = max(high - low, 1e-12)
        let rough = span / Double(max(target - 1, 1))
        let magnitude = pow(10, floor(log10(rough)))
        let fraction = rough / magnitude
        var step = (fraction <= 1 ? 1 : fraction <= 2 ? 2 : fraction <= 5 ? 5 : 10) * magnitude
        if integer { step = max(1, step.rounded()) }
        let first = floor(low / step + 1e-9), last = ceil(high / step - 1e-9)
        return stride(from: first, through: last, by: 1).map { $0 * step }
    }
}

/// Accumulates SVG elements; every number is written with one decimal.
struct Canvas {
    let width: Double
    let height: Double
    let title: String
    private var elements: [String] = []

    init(width: Double, height: Double, title: String) {
        self.width = width
        self.height = height
        self.title = title
    }

    private func n(_ value: Double) -> String { SVGChart.format(value, 1) }

    mutating func rect(x: Double, y: Double, width: Double, height: Double, fill: String,
                       stroke: String?, strokeWidth: Double = 1) {
        var element = "<rect x=\"\(n(x))\" y=\"\(n(y))\" width=\"\(n(width))\" height=\"\(n(height))\" fill=\"\(fill)\""
        if let stroke { element += " stroke=\"\(stroke)\" stroke-width=\"\(n(strokeWidth))\"" }
        elements.append(element + "/>")
    }

    mutating func line(x1: Double, y1: Double, x2: Double, y2: Double, stroke: String,
                       strokeWidth: Double = 1, dash: String? = nil) {
        var element = "<line x1=\"\(n(x1))\" y1=\"\(n(y1))\" x2=\"\(n(x2))\" y2=\"\(n(y2))\" stroke=\"\(stroke)\" stroke-width=\"\(n(strokeWidth))\""
        if let dash { element += " stroke-dasharray=\"\(dash)\"" }
        elements.append(element + "/>")
    }

    mutating func polyline(_ points: [(Double, Double)], stroke: String, strokeWidth: Double, dash: String? = nil) {
        let coordinates = points.map { "\(n($0.0)),\(n($0.1))" }.joined(separator: " ")
        var element = "<polyline points=\"\(coordinates)\" fill=\"none\" stroke=\"\(stroke)\" stroke-width=\"\(n(strokeWidth))\" stroke-linejoin=\"round\" stroke-linecap=\"round\""
        if let dash { element += " stroke-dasharray=\"\(dash)\"" }
        elements.append(element + "/>")
    }

    mutating func circle(x: Double, y: Double, radius: Double, fill: String) {
        elements.append("<circle cx=\"\(n(x))\" cy=\"\(n(y))\" r=\"\(n(radius))\" fill=\"\(fill)\"/>")
    }

    mutating func text(_ content: String, x: Double, y: Double, size: Double, anchor: String,
                       fill: String = "#1b1b1b", weight: String? = nil, family: String? = nil,
                       transform: String? = nil) {
        var element = "<text x=\"\(n(x))\" y=\"\(n(y))\" font-size=\"\(n(size))\" text-anchor=\"\(anchor)\" fill=\"\(fill)\""
        if let weight { element += " font-weight=\"\(weight)\"" }
        if let family { element += " font-family=\"\(family)\"" }
        if let transform { element += " transform=\"\(transform)\"" }
        elements.append(element + ">" + SVGChart.escape(content) + "</text>")
    }

    func rendered() -> String {
        let size = "width=\"\(n(width))\" height=\"\(n(height))\" viewBox=\"0 0 \(n(width)) \(n(height))\""
        return """
        <svg xmlns="http://www.w3.org/2000/svg" \(size) font-family="\(SVGChart.sansSerif)" role="img" aria-label="\(SVGChart.escape(title))">
        <title>\(SVGChart.escape(title))</title>
        <rect width="100%" height="100%" fill="#ffffff"/>
        \(elements.joined(separator: "\n"))
        </svg>
        """
    }
}
