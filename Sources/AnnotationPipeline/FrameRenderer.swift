import EmotionModel
import VisionCore

/// Draws boxes, labels and optional probability bars; sizes follow the frame so labels read the same
/// from 360p to 4K.
public final class FrameRenderer {
    public let showsBars: Bool
    private let rasterizer: GlyphRasterizer

    public init(showsBars: Bool = false, fontPath: String? = nil) throws {
        self.showsBars = showsBars
        rasterizer = try GlyphRasterizer(fontPath: fontPath ?? GlyphRasterizer.defaultFontPath)
    }

    public func render(_ annotated: AnnotatedFrame) -> Image {
        guard !annotated.faces.isEmpty else { return annotated.frame.image }
        var canvas = Canvas(image: annotated.frame.image, rasterizer: rasterizer)
        let shortSide = min(canvas.image.width, canvas.image.height)
        let thickness = max(2, shortSide / 240)
        let fontSize = max(12, shortSide / 28)
        let padding = max(2, fontSize / 5)
        for face in annotated.faces {
            let color = face.isClassified ? Color.of(face.emotion) : Color.untracked
            let box = face.box.clipped(width: canvas.image.width, height: canvas.image.height)
            guard box.width >= 1, box.height >= 1 else { continue }
            canvas.strokeRectangle(box, color: color, thickness: thickness)

            let label = face.isClassified
                ? "#\(face.trackID) \(face.emotion.name) \(Int((face.smoothed.confidence * 100).rounded()))%" : "#\(face.trackID)"
            let (textWidth, textHeight) = canvas.measure(label, pixelSize: fontSize)
            let labelHeight = textHeight + 2 * padding
            let labelX = Int(box.x)
            // Above the box when there is room, inside its top edge otherwise.
            let labelY = Int(box.y) - labelHeight >= 0 ? Int(box.y) - labelHeight : Int(box.y)
            canvas.fill(x: labelX, y: labelY, width: textWidth + 2 * padding, height: labelHeight, color: color, opacity: 0.85)
            canvas.draw(label, x: labelX + padding, y: labelY + padding, pixelSize: fontSize, color: color.contrasting)

            if showsBars && face.isClassified {
                drawBars(face, on: &canvas, box: box, labelY: labelY, fontSize: fontSize, padding: padding)
            }
        }
        return canvas.image
    }

    /// Seven short bars beside the face, one per class, length = smoothed probability: under the box when there is
    /// room, else to its right, to its left or above its label, and only as a last resort over the bottom of the box,
    /// so the chart does not hide the face it describes.
    private func drawBars(_ face: FaceAnnotation, on canvas: inout Canvas, box: Box, labelY: Int, fontSize: Int, padding: Int) {
        let barFont = max(10, fontSize * 2 / 3)
        let rowHeight = barFont + padding
        let nameWidth = Emotion.allCases.map { canvas.measure($0.name, pixelSize: barFont).width }.max() ?? 0
        let barLength = max(40, min(Int(box.width), 200) - nameWidth - 3 * padding)
        let panelWidth = nameWidth + barLength + 3 * padding, panelHeight = rowHeight * 7 + padding
        let (width, height) = (canvas.image.width, canvas.image.height)
        let candidates = [
            (Int(box.x), Int(box.maxY) + padding),
            (Int(box.maxX) + padding, Int(box.y)),
            (Int(box.x) - panelWidth - padding, Int(box.y)),
            (Int(box.x), labelY - panelHeight - padding),
        ]
        let fallback = (min(max(0, Int(box.x)), max(0, width - panelWidth)), max(0, min(Int(box.maxY), height) - panelHeight))
        let (x, y) = candidates.first { x, y in x >= 0 && y >= 0 && x + panelWidth <= width && y + panelHeight <= height }
            ?? fallback
        canvas.fill(x: x, y: y, width: panelWidth, height: panelHeight, color: .black, opacity: 0.55)
        for emotion in Emotion.allCases {
            let rowY = y + padding + emotion.rawValue * rowHeight
            canvas.draw(emotion.name, x: x + padding, y: rowY, pixelSize: barFont, color: .white)
            let length = Int(Float(barLength) * face.smoothed.probabilities[emotion.rawValue])
            canvas.fill(x: x + nameWidth + 2 * padding, y: rowY + padding / 2, width: max(1, length), height: barFont - padding / 2,
                        color: Color.of(emotion))
        }
    }
}
