import VisionCore

/// How a detector's box sits on a face, measured against the square FER2013 frames its faces in (by
/// Scripts/measure_fer_framing.sh): the FER2013 square is `cropScale` times the box's larger side, and its centre
/// lies `verticalOffset` box heights below the box centre. Detectors frame faces differently (MTCNN's boxes are
/// taller and sit lower than BlazeFace's), so boxes from one are redrawn in the other's framing before they mix in
/// one tracker and one cropper.
public struct DetectorFraming: Sendable, Equatable {
    public var cropScale: Float
    public var verticalOffset: Float

    public init(cropScale: Float, verticalOffset: Float) {
        self.cropScale = cropScale
        self.verticalOffset = verticalOffset
    }

    /// The box this detector would draw around the face that `box` frames under `framing`: the same FER2013
    /// square, described in this detector's terms (a square box, as BlazeFace draws).
    public func box(redrawing box: Box, framedBy framing: DetectorFraming) -> Box {
        let square = max(box.width, box.height) * framing.cropScale
        let squareCenterY = box.center.y + framing.verticalOffset * box.height
        let side = square / cropScale
        let centerY = squareCenterY - verticalOffset * side
        return Box(x: box.center.x - side / 2, y: centerY - side / 2, width: side, height: side)
    }

    /// Measured on 210 PublicTest faces (Scripts/measure_fer_framing.sh): a FER2013 image spans 1.144x the
    /// short-range box, 1.112x the full-range box and 1.114x the back-camera box, whose centres sit 0.091, 0.031
    /// and 0.084 box heights below the image centre.
    public static func blazeFace(_ model: BlazeFaceModel) -> DetectorFraming {
        switch model {
        case .shortRange: return DetectorFraming(cropScale: 1.144, verticalOffset: -0.091)
        case .fullRange: return DetectorFraming(cropScale: 1.112, verticalOffset: -0.031)
        case .backCamera: return DetectorFraming(cropScale: 1.114, verticalOffset: -0.084)
        }
    }

    /// Measured the same way on MTCNN's boxes (188 of the 210 faces found): they are taller than wide and larger
    /// than BlazeFace's, so the FER2013 image spans only 0.947x their larger side; centres 0.005 box heights below.
    public static let mtcnn = DetectorFraming(cropScale: 0.947, verticalOffset: -0.005)
}
