import VisionCore

/// A fast detector on every frame, helped by an accurate one where the fast one is blind: BlazeFace misses small
/// faces (about half of those under 48 px), MTCNN finds them but costs 8-20x more per 720p frame. So the accurate
/// detector searches the whole frame only every `fullSearchInterval` calls (a new small face is found within that
/// many frames), and it follows every face it found: on the frames between, a face that the fast detector finds
/// with a strong score costs nothing more, and around one that it misses or finds only weakly the accurate
/// detector looks again in a window a few face widths wide (about the fast detector's cost), so the face is
/// detected on every frame, not only now and then. Its boxes are redrawn in the fast detector's framing, so one
/// tracker and one cropper serve both. With an interval of 1 (still images) both search everything.
///
/// The two detectors' results are merged one to one: a fast and an accurate detection are the same face when
/// their boxes overlap (IoU above 0.3) and neither is the better match of another; the face then keeps the
/// stronger detection (higher score; landmarks from the other when it has none). No other detection is dropped,
/// so faces side by side are never merged with each other, and a confident detection is never lost to a weak
/// duplicate.
///
/// Owns its detectors' buffers: one instance per thread. Its frame stage (`StagedFaceDetector`) is the fast
/// detector; the accurate searches depend on the calls before and run in frame order.
public final class HybridFaceDetector: StagedFaceDetector {
    public let fast: FaceDetector
    public let accurate: FaceDetector
    public let fullSearchInterval: Int
    /// A fast detection at least this strong needs no second look (the tracker's score that starts a track).
    public let strongScore: Float
    private let fastFraming: DetectorFraming
    private let accurateFraming: DetectorFraming
    /// Faces the accurate detector found and follows, where they were last seen, in its own framing.
    private var followed: [Box] = []
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
                fullSearchInterval: Int, strongScore: Float = 0.7) {
        precondition(fullSearchInterval >= 1, "the full-search interval is a number of calls, at least 1")
        self.fast = fast
        self.fastFraming = fastFraming
        self.accurate = accurate
        self.accurateFraming = accurateFraming
        self.fullSearchInterval = fullSearchInterval
        self.strongScore = strongScore
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

    /// `fastDetections` merged with what the accurate detector finds (see the type's description).
    private func addingAccurateDetections(to fastDetections: [Detection], in image: Image) throws -> [Detection] {
        defer { calls += 1 }
        var found: [Detection]
        if calls % fullSearchInterval == 0 {
            fullSearches += 1
            found = try accurate.detect(in: image)
            followed = []
        } else {
            // A followed face the fast detector finds strongly is seen; the others get a window of their own.
            found = []
            var stillFollowed: [Box] = []
            for face in followed {
                let expected = fastFraming.box(redrawing: face, framedBy: accurateFraming)
                if let seen = fastDetections.filter({ $0.score >= strongScore })
                    .max(by: { $0.box.intersectionOverUnion(expected) < $1.box.intersectionOverUnion(expected) }),
                   seen.box.intersectionOverUnion(expected) > Self.sameFaceOverlap {
                    stillFollowed.append(accurateFraming.box(redrawing: seen.box, framedBy: fastFraming))
                } else {
                    // A window may find a neighbour whose own window found it too: keep the face once.
                    found += try search(around: face, in: image).filter { window in
                        !found.contains { $0.box.intersectionOverUnion(window.box) > 0.5 }
                    }
                }
            }
            followed = stillFollowed
        }
        followed += found.map(\.box)
        return Self.merged(fast: fastDetections, accurate: found.map(redraw))
    }

    /// Fast and accurate detections (in one framing) with each true duplicate pair replaced by its stronger half.
    static func merged(fast: [Detection], accurate: [Detection]) -> [Detection] {
        var pairs: [(overlap: Float, fast: Int, accurate: Int)] = []
        for (f, fastDetection) in fast.enumerated() {
            for (a, accurateDetection) in accurate.enumerated() {
                let overlap = fastDetection.box.intersectionOverUnion(accurateDetection.box)
                if overlap > sameFaceOverlap { pairs.append((overlap, f, a)) }
            }
        }
        var result = fast
        var partnerOfAccurate = [Int?](repeating: nil, count: accurate.count)
        var pairedFast = Set<Int>()
        // Best overlaps first; ties keep the detectors' own order, so the result is deterministic.
        for pair in pairs.sorted(by: { ($0.overlap, -$0.fast, -$0.accurate) > ($1.overlap, -$1.fast, -$1.accurate) })
        where partnerOfAccurate[pair.accurate] == nil && !pairedFast.contains(pair.fast) {
            partnerOfAccurate[pair.accurate] = pair.fast
            pairedFast.insert(pair.fast)
        }
        for (a, accurateDetection) in accurate.enumerated() {
            guard let f = partnerOfAccurate[a] else {
                result.append(accurateDetection)
                continue
            }
            var (stronger, weaker) = accurateDetection.score > fast[f].score ? (accurateDetection, fast[f]) : (fast[f], accurateDetection)
            if stronger.landmarks == nil { stronger.landmarks = weaker.landmarks }
            result[f] = stronger
        }
        return result
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
