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
///
/// With `frameStages` (copies of a `StagedFaceDetector`'s frame-only part), the runner detects consecutive
/// frames on several threads (`frameStageDetections`) and `locate(_:arrival:frameStageDetections:)` finishes
/// each in order: the same results as `locate` alone.
public final class FrameAnalyzer: @unchecked Sendable {
    public let options: AnalysisOptions
    /// One per detection thread; empty: detection runs inside `locate`.
    public let frameStages: [FaceDetector]
    private let detector: FaceDetector
    private let classifier: EmotionClassifier
    private let tracker: FaceTracker
    private let smoother: EmotionSmoother
    private var framesSinceDetection = Int.max

    /// `frameStages`: from `detector`'s `makeFrameStage()` (so `detector` must be a `StagedFaceDetector`).
    public init(detector: FaceDetector, classifier: EmotionClassifier, options: AnalysisOptions = AnalysisOptions(),
                frameStages: [FaceDetector] = []) {
        precondition(frameStages.isEmpty || detector is StagedFaceDetector, "frame stages need a StagedFaceDetector")
        self.options = options
        self.frameStages = frameStages
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
        var detections: [Detection]? = nil
        if framesSinceDetection >= options.detectEvery - 1 {
            detections = try detector.detect(in: frame.image)
            framesSinceDetection = 0
        } else {
            framesSinceDetection += 1
        }
        return track(frame, detections: detections, arrival: arrival)
    }

    /// Whether the frame at `position` in the stream (0 first) is one the detector runs on (`detectEvery`):
    /// the frames `locate` detects on, counted from the start.
    public func detects(atPosition position: Int) -> Bool {
        position % options.detectEvery == 0
    }

    /// The frame-only detections of `frame` on frame stage `stage`: any thread, one thread per stage.
    public func frameStageDetections(_ frame: Frame, stage: Int) throws -> [Detection] {
        try frameStages[stage].detect(in: frame.image)
    }

    /// `locate` for a frame whose frame stage ran on a detection thread (nil: a frame without detection).
    /// Called for every frame in order, like `locate`.
    public func locate(_ frame: Frame, arrival: Date?, frameStageDetections: [Detection]?) throws -> LocatedFrame {
        let staged = detector as! StagedFaceDetector  // checked at init
        let detections = try frameStageDetections.map { try staged.detect(in: frame.image, frameStageDetections: $0) }
        return track(frame, detections: detections, arrival: arrival)
    }

    /// Tracking (an update with `detections`, or the prediction when there are none this frame) and crops.
    private func track(_ frame: Frame, detections: [Detection]?, arrival: Date?) -> LocatedFrame {
        let time = frame.seconds
        var tracked: [TrackedFace]
        if let detections {
            tracked = tracker.update(detections: detections.filter { $0.box.width >= options.minimumFaceSize }, time: time)
        } else {
            tracked = tracker.predict(time: time)
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
