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

    public init() {}
}

/// The stateful middle of the pipeline: detect (every N frames), track, crop, classify every face of the frame in
/// one batch, smooth per track. One owner calls it for every frame in order, faces or not (the tracker and the
/// smoother keep time), so it needs no locks.
public final class FrameAnalyzer {
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

    public func analyze(_ frame: Frame, arrival: Date? = nil) throws -> AnnotatedFrame {
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
        smoother.retainOnly(Set(tracked.map(\.id)))
        tracked.removeAll { $0.secondsSinceDetection > options.maximumCoastSeconds }
        guard !tracked.isEmpty else { return AnnotatedFrame(frame: frame, faces: [], arrival: arrival) }

        var crops: [UInt8] = []
        crops.reserveCapacity(tracked.count * options.cropper.side * options.cropper.side)
        for face in tracked {
            crops += options.cropper.crop(frame.image, box: face.box, landmarks: face.detection?.landmarks)
        }
        let probabilities = classifier.probabilities(pixels: crops, count: tracked.count)
        let faces = zip(tracked, probabilities).map { face, raw in
            FaceAnnotation(trackID: face.id, box: face.box, detectionScore: face.detection?.score, rawProbabilities: raw,
                           smoothed: smoother.update(track: face.id, probabilities: raw, time: time))
        }
        return AnnotatedFrame(frame: frame, faces: faces, arrival: arrival)
    }

    /// After a live source reconnects: tracks restart, IDs continue (never reused).
    public func sourceRestarted() {
        tracker.reset()
        smoother.retainOnly([])
        framesSinceDetection = Int.max
    }
}
