import EmotionModel
import FaceTracking
import Foundation
import VisionCore

public struct AnalysisOptions: Sendable {
    /// Run the detector on every Nth frame; the tracker's prediction carries faces in between.
    public var detectEvery = 1
    /// Detections smaller than this many pixels (box width) are ignored.
    public var minimumFaceSize: Float = 0
    public var smoothing = SmoothingConfiguration()
    public var tracker = TrackerConfiguration()
    public var cropper = FaceCropper()
    /// A track the detector has not confirmed for longer than this is kept (its ID survives short gaps) but not
    /// reported, so faces that left the picture do not linger in the outputs.
    public var maximumCoastSeconds = 0.3
    /// False: find and track faces only (`--faces-only`), no emotion.
    public var classifiesEmotions = true

    public init() {}
}

/// A frame after detection and tracking: the faces to classify and their crops, ready for the classifier.
public struct LocatedFrame: Sendable {
    public var frame: Frame
    public var faces: [TrackedFace]
    /// Every live track, shown or not: a face coasting unseen for a moment keeps its smoothing state.
    public var liveTrackIDs: Set<Int>
    /// One `cropper.side` x `cropper.side` grayscale crop per face, back to back.
    public var crops: [UInt8]
    public var arrival: Date?
}

/// The stateful middle of the pipeline in two phases: `locate` (detect every N frames, track, crop) and
/// `classify` (every face of the frame in one batch, then smoothing per track). Each phase owns its own state
/// (detector and tracker; classifier and smoother), so the two may run on two threads, one frame apart, which
/// is how `PipelineRunner` overlaps detection of the next frame with classification of this one. Within a
/// phase, one owner calls it for every frame in order, faces or not (the tracker and the smoother keep time).
public final class FrameAnalyzer: @unchecked Sendable {
    public let options: AnalysisOptions
    private let detector: FaceDetector
    private let classifier: EmotionClassifier
    private let tracker: FaceTracker
    private let smoother: EmotionSmoother
    private var framesSinceDetection = Int.max

    public init(detector: FaceDetector, classifier: EmotionClassifier, options: AnalysisOptions = AnalysisOptions()) {
        self.options = options
        self.detector = detector
        self.classifier = classifier
        tracker = FaceTracker(configuration: options.tracker)
        smoother = EmotionSmoother(configuration: options.smoothing)
    }

    /// Both phases, one after the other.
    public func analyze(_ frame: Frame, arrival: Date? = nil) throws -> AnnotatedFrame {
        classify(try locate(frame, arrival: arrival))
    }

    /// Detection (every `detectEvery` frames), tracking and the classifier's crops.
    public func locate(_ frame: Frame, arrival: Date? = nil) throws -> LocatedFrame {
        let time = frame.seconds
        var tracked: [TrackedFace]
        if framesSinceDetection >= options.detectEvery - 1 {
            let detections = try detector.detect(in: frame.image).filter { $0.box.width >= options.minimumFaceSize }
            tracked = tracker.update(detections: detections, time: time)
            framesSinceDetection = 0
        } else {
            tracked = tracker.predict(time: time)
            framesSinceDetection += 1
        }
        let liveTrackIDs = Set(tracked.map(\.id))
        tracked.removeAll { $0.secondsSinceDetection > options.maximumCoastSeconds }
        var crops: [UInt8] = []
        crops.reserveCapacity(tracked.count * options.cropper.side * options.cropper.side)
        for face in tracked where options.classifiesEmotions {
            crops += options.cropper.crop(frame.image, box: face.box, landmarks: face.detection?.landmarks)
        }
        return LocatedFrame(frame: frame, faces: tracked, liveTrackIDs: liveTrackIDs, crops: crops, arrival: arrival)
    }

    /// The emotion of every located face, smoothed over time per track.
    public func classify(_ located: LocatedFrame) -> AnnotatedFrame {
        smoother.retainOnly(located.liveTrackIDs)
        guard !located.faces.isEmpty else { return AnnotatedFrame(frame: located.frame, faces: [], arrival: located.arrival) }
        let time = located.frame.seconds
        guard options.classifiesEmotions else {
            let faces = located.faces.map { face in
                FaceAnnotation(trackID: face.id, box: face.box, detectionScore: face.detection?.score, rawProbabilities: [],
                               smoothed: SmoothedEmotion(probabilities: [], label: 0, confidence: 0))
            }
            return AnnotatedFrame(frame: located.frame, faces: faces, arrival: located.arrival)
        }
        let probabilities = classifier.probabilities(pixels: located.crops, count: located.faces.count)
        let faces = zip(located.faces, probabilities).map { face, raw in
            FaceAnnotation(trackID: face.id, box: face.box, detectionScore: face.detection?.score, rawProbabilities: raw,
                           smoothed: smoother.update(track: face.id, probabilities: raw, time: time))
        }
        return AnnotatedFrame(frame: located.frame, faces: faces, arrival: located.arrival)
    }

    /// After a live source reconnects: tracks restart, IDs continue (never reused). Call from the `locate` side;
    /// the old tracks' smoothing ends when `classify` no longer sees them.
    public func sourceRestarted() {
        tracker.reset()
        framesSinceDetection = Int.max
    }
}
