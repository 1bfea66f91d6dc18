import VisionCore

/// Tracker settings. Times are in seconds of stream time, never frames.
public struct TrackerConfiguration: Sendable, Hashable {
    /// Detections scoring at least this are matched first and may start tracks (ByteTrack's 0.5).
    public var highScoreThreshold: Float = 0.5
    /// Detections in [low, high) may only keep an existing confirmed track alive (ByteTrack's second pass);
    /// below `low` they are ignored.
    public var lowScoreThreshold: Float = 0.2
    /// Minimum IoU between a track's predicted box and a high-score detection (SORT's 0.3).
    public var matchIoUThreshold: Float = 0.3
    /// Minimum IoU for the low-score pass: stricter, since weak detections are more often wrong
    /// (ByteTrack's 0.5).
    public var lowScoreMatchIoUThreshold: Float = 0.5
    /// Detection hits before a tentative track is confirmed; 1 confirms at once (for a still image).
    /// A tentative track is dropped at its first missed detection.
    public var confirmHits: Int = 3
    /// A confirmed track without a detection for longer than this is retired; until then it coasts on
    /// the filter's prediction and can pick its face up again under the same ID.
    public var retentionSeconds: Double = 1.0
    /// Also report tentative tracks (they take an ID when first reported).
    public var reportsTentativeTracks: Bool = false
    /// Noise levels of each track's Kalman filter.
    public var noise = KalmanBoxFilter.Noise()

    public init() {}
}

/// One tracked face in one frame.
public struct TrackedFace: Sendable, Hashable {
    /// Stable for the track's whole life, from 1, never reused by the tracker that issued it.
    public var id: Int
    /// The filtered box (or, with no detection this frame, the predicted one).
    public var box: Box
    /// The detection matched this frame, with its raw box, score and landmarks; nil when predicted.
    public var detection: Detection?
    public var isConfirmed: Bool
    /// Seconds since the track started.
    public var age: Double
    /// Detections matched to the track so far.
    public var hits: Int
    /// Seconds since the last matched detection (0 when matched this frame).
    public var secondsSinceDetection: Double

    /// No detection this frame: the box is the filter's prediction.
    public var isPredicted: Bool { detection == nil }
}

/// Multi-face tracker: Kalman box filters, IoU matching by the Hungarian algorithm in two passes
/// (ByteTrack), tentative tracks, retention in seconds.
///
/// One owner calls `update` every frame, with or without detections (SORT's contract), or `predict`
/// on frames where detection was skipped; it holds no locks.
public final class FaceTracker {
    struct Track {
        var id: Int?
        var filter: KalmanBoxFilter
        var startTime: Double
        var lastDetectionTime: Double
        var hits = 1
        var isConfirmed: Bool
        var detection: Detection?
    }

    public let configuration: TrackerConfiguration
    private var tracks: [Track] = []
    private var nextID = 1
    private var lastTime: Double?

    public init(configuration: TrackerConfiguration = TrackerConfiguration()) {
        self.configuration = configuration
    }

    /// Advances every track to `time` (seconds, stream time), matches `detections`, and returns the
    /// reported tracks sorted by ID. Call it for every frame, with an empty array when nothing was found.
    public func update(detections: [Detection], time: Double) -> [TrackedFace] {
        advance(to: time)
        let high = detections.filter { $0.score >= configuration.highScoreThreshold }
        let low = detections.filter { $0.score >= configuration.lowScoreThreshold && $0.score < configuration.highScoreThreshold }

        // Pass 1: confident detections against every track.
        let unmatchedHigh = associate(high, with: Array(tracks.indices), minimumIoU: configuration.matchIoUThreshold, time: time)
        // Pass 2: weak detections against confirmed tracks still unmatched; leftovers are dropped.
        let remaining = tracks.indices.filter { tracks[$0].detection == nil && tracks[$0].isConfirmed }
        _ = associate(low, with: remaining, minimumIoU: configuration.lowScoreMatchIoUThreshold, time: time)

        tracks.removeAll { track in
            track.detection == nil
                && (!track.isConfirmed || time - track.lastDetectionTime > configuration.retentionSeconds)
        }
        for detection in unmatchedHigh {
            tracks.append(Track(filter: KalmanBoxFilter(box: detection.box, noise: configuration.noise),
                                startTime: time, lastDetectionTime: time,
                                isConfirmed: configuration.confirmHits <= 1, detection: detection))
        }
        return report(time: time)
    }

    /// Advances every track to `time` without detections, for frames where the caller skipped the
    /// detector (`--detect-every N`): nothing counts as a miss and nothing is retired.
    public func predict(time: Double) -> [TrackedFace] {
        advance(to: time)
        return report(time: time)
    }

    /// Drops every track (for a stream that reconnects or jumps). IDs continue from where they were, so
    /// none is ever reused; make a new tracker to count from 1 again.
    public func reset() {
        tracks.removeAll()
        lastTime = nil
    }

    /// Predicts every track forward by the time since the previous call; a repeated or backward
    /// timestamp predicts nothing.
    private func advance(to time: Double) {
        let elapsed = lastTime.map { max(time - $0, 0) } ?? 0
        lastTime = max(time, lastTime ?? time)
        for index in tracks.indices {
            tracks[index].filter.predict(elapsed: elapsed)
            tracks[index].detection = nil
        }
    }

    /// Matches detections to the given tracks by 1 - IoU, updates the matched tracks, and returns the
    /// detections left unmatched.
    private func associate(_ detections: [Detection], with candidates: [Int], minimumIoU: Float, time: Double) -> [Detection] {
        guard !detections.isEmpty, !candidates.isEmpty else { return detections }
        let predicted = candidates.map { tracks[$0].filter.box }
        let cost = predicted.map { box in detections.map { 1 - Double(box.intersectionOverUnion($0.box)) } }
        var unmatched = Array(repeating: true, count: detections.count)
        for (row, column) in HungarianAssignment.match(cost: cost, maximumCost: 1 - Double(minimumIoU)) {
            let index = candidates[row]
            tracks[index].filter.update(with: detections[column].box)
            tracks[index].detection = detections[column]
            tracks[index].lastDetectionTime = time
            tracks[index].hits += 1
            if tracks[index].hits >= configuration.confirmHits { tracks[index].isConfirmed = true }
            unmatched[column] = false
        }
        return detections.indices.filter { unmatched[$0] }.map { detections[$0] }
    }

    /// The tracks to report, giving an ID to any reported for the first time.
    private func report(time: Double) -> [TrackedFace] {
        var faces: [TrackedFace] = []
        for index in tracks.indices where tracks[index].isConfirmed || configuration.reportsTentativeTracks {
            if tracks[index].id == nil {
                tracks[index].id = nextID
                nextID += 1
            }
            let track = tracks[index]
            faces.append(TrackedFace(id: track.id!, box: track.filter.box, detection: track.detection,
                                     isConfirmed: track.isConfirmed, age: time - track.startTime, hits: track.hits,
                                     secondsSinceDetection: time - track.lastDetectionTime))
        }
        return faces.sorted { $0.id < $1.id }
    }
}
