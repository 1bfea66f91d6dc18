import Foundation
import VisionCore

/// What one person did over the run: presence, mean probabilities, time share per shown emotion and the
/// segments of constant shown emotion.
public struct TrackSummary: Sendable, Codable {
    public struct Segment: Sendable, Codable {
        public var emotion: String
        public var start: Double
        public var end: Double
    }

    public var id: Int
    public var firstTime: Double
    public var lastTime: Double
    public var framesSeen: Int
    /// Mean of the raw per-frame probabilities, by class name (empty with --faces-only, as the next three).
    public var meanProbabilities: [String: Double]
    /// Share of the track's frames showing each emotion (after smoothing).
    public var timeShare: [String: Double]
    public var dominantEmotion: String?
    public var segments: [Segment]

    enum CodingKeys: String, CodingKey {
        case id, framesSeen = "frames_seen", firstTime = "first_time", lastTime = "last_time"
        case meanProbabilities = "mean_probabilities", timeShare = "time_share"
        case dominantEmotion = "dominant_emotion", segments
    }
}

/// Accumulates per-track summaries frame by frame (constant memory per track plus its segments).
public struct TrackSummaryAccumulator {
    private struct Running {
        var first: Double, last: Double
        var frames = 0
        var classifiedFrames = 0
        var probabilitySums = [Double](repeating: 0, count: Emotion.allCases.count)
        var labelCounts = [Int](repeating: 0, count: Emotion.allCases.count)
        var segments: [TrackSummary.Segment] = []
    }

    private var tracks: [Int: Running] = [:]

    public init() {}

    public mutating func add(_ annotated: AnnotatedFrame) {
        let time = annotated.frame.seconds
        for face in annotated.faces {
            var running = tracks[face.trackID] ?? Running(first: time, last: time)
            running.last = time
            running.frames += 1
            guard face.isClassified else { tracks[face.trackID] = running; continue }
            running.classifiedFrames += 1
            for (index, value) in face.rawProbabilities.enumerated() { running.probabilitySums[index] += Double(value) }
            running.labelCounts[face.smoothed.label] += 1
            let name = face.emotion.name
            if var current = running.segments.last, current.emotion == name {
                current.end = time
                running.segments[running.segments.count - 1] = current
            } else {
                if !running.segments.isEmpty { running.segments[running.segments.count - 1].end = time }
                running.segments.append(TrackSummary.Segment(emotion: name, start: time, end: time))
            }
            tracks[face.trackID] = running
        }
    }

    public var summaries: [TrackSummary] {
        tracks.keys.sorted().map { id in
            let running = tracks[id]!
            guard running.classifiedFrames > 0 else {
                return TrackSummary(id: id, firstTime: running.first, lastTime: running.last, framesSeen: running.frames,
                                    meanProbabilities: [:], timeShare: [:], dominantEmotion: nil, segments: [])
            }
            let frames = Double(max(running.classifiedFrames, 1))
            var means: [String: Double] = [:]
            var shares: [String: Double] = [:]
            for emotion in Emotion.allCases {
                means[emotion.name] = running.probabilitySums[emotion.rawValue] / frames
                shares[emotion.name] = Double(running.labelCounts[emotion.rawValue]) / frames
            }
            let dominant = Emotion.allCases.max { running.labelCounts[$0.rawValue] < running.labelCounts[$1.rawValue] }!
            return TrackSummary(id: id, firstTime: running.first, lastTime: running.last, framesSeen: running.frames,
                                meanProbabilities: means, timeShare: shares, dominantEmotion: dominant.name,
                                segments: running.segments)
        }
    }
}
