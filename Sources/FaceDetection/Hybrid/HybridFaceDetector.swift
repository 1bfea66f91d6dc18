import VisionCore

/// A fast detector on every frame, helped by an accurate one where the fast one is blind: BlazeFace misses small
/// faces (about half of those under 48 px), MTCNN finds them but costs 8-20x more per 720p frame. So the accurate
/// detector searches the whole frame only every `fullSearchInterval` calls (a new small face is found within that
/// many frames), and on the frames between it looks again only around the faces that it alone found last time
/// (a window a few face widths wide, which costs about as much as the fast detector), so those faces are detected
/// on every frame, not only now and then. Its boxes are redrawn in the fast detector's framing, so one tracker and
/// one cropper serve both. With an interval of 1 (still images) both search everything.
///
/// Owns its detectors' buffers: one instance per thread. Its frame stage (`StagedFaceDetector`) is the fast
/// detector; the accurate searches depend on the calls before and run in frame order.
public final class HybridFaceDetector: StagedFaceDetector {
    public let fast: FaceDetector
    public let accurate: FaceDetector
    public let fullSearchInterval: Int
    private let fastFraming: DetectorFraming
    private let accurateFraming: DetectorFraming
    /// Faces only the accurate detector found on the previous call, in its own framing.
    private var accurateOnly: [Box] = []
    private var calls = 0
    /// Full-frame searches by the accurate detector so far, and windows searched around faces.
    public private(set) var fullSearches = 0
    public private(set) var windowSearches = 0

    /// An accurate detection is the same face as a fast one when their boxes (in one framing) overlap this much.
    private static let sameFaceOverlap: Float = 0.3
    /// The window around a face, in face sizes: wide enough for the face's motion between two frames and for
    /// the accurate detector's smallest pyramid level.
    private static let windowScale: Float = 3

    public init(fast: FaceDetector, fastFraming: DetectorFraming, accurate: FaceDetector, accurateFraming: DetectorFraming,
                fullSearchInterval: Int) {
        precondition(fullSearchInterval >= 1, "the full-search interval is a number of calls, at least 1")
        self.fast = fast
        self.fastFraming = fastFraming
        self.accurate = accurate
        self.accurateFraming = accurateFraming
        self.fullSearchInterval = fullSearchInterval
    }

    public func detect(in image: Image) throws -> [Detection] {
        try addingAccurateDetections(to: try fast.detect(in: image), in: image)
    }

    /// The fast detector's frame stage, when it has one.
    public func makeFrameStage() throws -> FaceDetector? {
        try (fast as? StagedFaceDetector)?.makeFrameStage()
    }

    /// The rest of the fast detector given its frame stage's detections, then the accurate detector's part.
    public func detect(in image: Image, frameStageDetections: [Detection]) throws -> [Detection] {
        let fastDetections = try (fast as? StagedFaceDetector)?.detect(in: image, frameStageDetections: frameStageDetections)
        return try addingAccurateDetections(to: fastDetections ?? frameStageDetections, in: image)
    }

    /// `fastDetections` and the faces only the accurate detector finds (see the type's description).
    private func addingAccurateDetections(to fastDetections: [Detection], in image: Image) throws -> [Detection] {
        defer { calls += 1 }
        var detections = fastDetections
        let found: [Detection]
        if calls % fullSearchInterval == 0 {
            fullSearches += 1
            found = try accurate.detect(in: image)
        } else {
            found = try accurateOnly.flatMap { try search(around: $0, in: image) }
        }
        accurateOnly = []
        for detection in found {
            let redrawn = redraw(detection)
            if detections.contains(where: { $0.box.intersectionOverUnion(redrawn.box) > Self.sameFaceOverlap }) { continue }
            accurateOnly.append(detection.box)
            detections.append(redrawn)
        }
        return detections
    }

    /// The accurate detector on a window around `box`, boxes back in frame coordinates.
    private func search(around box: Box, in image: Image) throws -> [Detection] {
        let side = max(box.width, box.height) * Self.windowScale
        let x = Int((box.center.x - side / 2).rounded(.down)), y = Int((box.center.y - side / 2).rounded(.down))
        guard let window = image.cropped(x: x, y: y, width: Int(side.rounded(.up)), height: Int(side.rounded(.up))) else {
            return []
        }
        windowSearches += 1
        let (dx, dy) = (Float(max(0, x)), Float(max(0, y)))
        // The face nearest the window's centre is the one followed; others are left to the next full search.
        let found = try accurate.detect(in: window).map { detection in
            var moved = detection
            moved.box.x += dx
            moved.box.y += dy
            if let landmarks = detection.landmarks {
                let shift = { (point: Point) in Point(x: point.x + dx, y: point.y + dy) }
                moved.landmarks = FaceLandmarks(leftEye: shift(landmarks.leftEye), rightEye: shift(landmarks.rightEye),
                                                all: landmarks.all.map(shift))
            }
            return moved
        }
        return found.min { $0.box.center.distanceSquared(to: box.center) < $1.box.center.distanceSquared(to: box.center) }
            .map { [$0] } ?? []
    }

    private func redraw(_ detection: Detection) -> Detection {
        var redrawn = detection
        redrawn.box = fastFraming.box(redrawing: detection.box, framedBy: accurateFraming)
        return redrawn
    }
}

extension Point {
    func distanceSquared(to other: Point) -> Float {
        (x - other.x) * (x - other.x) + (y - other.y) * (y - other.y)
    }
}
