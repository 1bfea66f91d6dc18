import Foundation
import VisionCore

/// The emotion timeline as SVG: one lane per track, coloured by the shown emotion over time, with a legend.
public enum TimelinePlot {
    public static func svg(tracks: [TrackSummary], duration: Double, title: String) -> String {
        let laneHeight = 28.0, left = 70.0, right = 20.0, top = 50.0, width = 900.0
        let plotWidth = width - left - right
        let end = max(duration, tracks.map(\.lastTime).max() ?? 0, 1e-3)
        let height = top + Double(max(tracks.count, 1)) * laneHeight + 70
        func x(_ time: Double) -> Double { left + plotWidth * time / end }
        func escape(_ text: String) -> String {
            text.replacingOccurrences(of: "&", with: "&amp;").replacingOccurrences(of: "<", with: "&lt;")
                .replacingOccurrences(of: ">", with: "&gt;")
        }
        var svg = """
        <svg xmlns="http://www.w3.org/2000/svg" width="\(Int(width))" height="\(Int(height))" \
        viewBox="0 0 \(Int(width)) \(Int(height))" font-family="DejaVu Sans, Arial, sans-serif" font-size="12">
        <rect width="100%" height="100%" fill="white"/>
        <text x="\(left)" y="24" font-size="15" font-weight="bold">\(escape(title))</text>

        """
        for (lane, track) in tracks.enumerated() {
            let y = top + Double(lane) * laneHeight
            svg += "<text x=\"\(left - 8)\" y=\"\(y + laneHeight / 2 + 4)\" text-anchor=\"end\">#\(track.id)</text>\n"
            svg += "<rect x=\"\(left)\" y=\"\(y + 3)\" width=\"\(plotWidth)\" height=\"\(laneHeight - 6)\" fill=\"#f2f2f2\"/>\n"
            for segment in track.segments {
                let emotion = Emotion(name: segment.emotion) ?? .neutral
                // A segment lasts until the next one starts; give single-frame segments a visible sliver.
                let segmentWidth = max(x(segment.end) - x(segment.start), 1)
                svg += "<rect x=\(quoted(x(segment.start))) y=\(quoted(y + 3)) width=\(quoted(segmentWidth)) "
                    + "height=\(quoted(laneHeight - 6)) fill=\"\(Color.of(emotion).hexString)\">"
                    + "<title>#\(track.id) \(segment.emotion) \(format(segment.start))-\(format(segment.end)) s</title></rect>\n"
            }
        }
        let axisY = top + Double(max(tracks.count, 1)) * laneHeight + 8
        svg += "<line x1=\"\(left)\" y1=\"\(axisY)\" x2=\"\(left + plotWidth)\" y2=\"\(axisY)\" stroke=\"#333\"/>\n"
        let step = niceStep(end / 8)
        var tick = 0.0
        while tick <= end + 1e-9 {
            svg += "<line x1=\(quoted(x(tick))) y1=\"\(axisY)\" x2=\(quoted(x(tick))) y2=\"\(axisY + 5)\" stroke=\"#333\"/>"
            svg += "<text x=\(quoted(x(tick))) y=\"\(axisY + 18)\" text-anchor=\"middle\">\(format(tick))</text>\n"
            tick += step
        }
        svg += "<text x=\"\(left + plotWidth)\" y=\"\(axisY + 34)\" text-anchor=\"end\">time (s)</text>\n"
        var legendX = left
        for emotion in Emotion.allCases {
            svg += "<rect x=\"\(legendX)\" y=\"\(axisY + 24)\" width=\"12\" height=\"12\" fill=\"\(Color.of(emotion).hexString)\"/>"
            svg += "<text x=\"\(legendX + 16)\" y=\"\(axisY + 34)\">\(emotion.name)</text>\n"
            legendX += 90
        }
        return svg + "</svg>\n"
    }

    private static func quoted(_ value: Double) -> String { "\"\(String(format: "%.2f", value))\"" }
    private static func format(_ value: Double) -> String { String(format: value < 10 ? "%.2f" : "%.1f", value) }

    private static func niceStep(_ raw: Double) -> Double {
        let magnitude = pow(10, floor(log10(max(raw, 1e-6))))
        for factor in [1.0, 2.0, 5.0, 10.0] where factor * magnitude >= raw { return factor * magnitude }
        return 10 * magnitude
    }
}
