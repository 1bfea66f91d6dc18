import EmotionModel
import Foundation
import MediaIO
import VisionCore

/// One tracked face on one frame, with its emotion.
public struct FaceAnnotation: Sendable {
    public var trackID: Int
    /// Source pixels.
    public var box: Box
    /// The detector's score when a detection matched this frame; nil when the box is the tracker's prediction.
    public var detectionScore: Float?
    /// This frame's class probabilities, before smoothing.
    public var rawProbabilities: [Float]
    public var smoothed: SmoothedEmotion

    public init(trackID: Int, box: Box, detectionScore: Float?, rawProbabilities: [Float], smoothed: SmoothedEmotion) {
        self.trackID = trackID
        self.box = box
        self.detectionScore = detectionScore
        self.rawProbabilities = rawProbabilities
        self.smoothed = smoothed
    }

    public var emotion: Emotion { Emotion(rawValue: smoothed.label) ?? .neutral }
    /// False when faces were only found and tracked (`--faces-only`): no probabilities, no emotion.
    public var isClassified: Bool { !rawProbabilities.isEmpty }
}

/// A frame and what was found on it; what flows from the analysis stage to the sinks.
public struct AnnotatedFrame: Sendable {
    public var frame: Frame
    public var faces: [FaceAnnotation]
    /// When the frame arrived (live sources), for wall_time and latency.
    public var arrival: Date?

    public init(frame: Frame, faces: [FaceAnnotation], arrival: Date? = nil) {
        self.frame = frame
        self.faces = faces
        self.arrival = arrival
    }
}
