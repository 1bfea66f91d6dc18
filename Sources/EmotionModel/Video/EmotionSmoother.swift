#if canImport(Glibc)
import Glibc
#else
import Darwin
#endif

/// How per-frame probabilities are smoothed over time, per track. Every parameter is in seconds,
/// so 24, 30 and 120 fps and variable frame rates behave the same.
public enum SmoothingMethod: Sendable, Equatable {
    case none
    /// Exponential moving average: a frame's weight halves every `halfLife` seconds.
    case exponential(halfLife: Double)
    /// Mean over the frames of the last `seconds` seconds.
    case window(seconds: Double)
}

/// How the shown label follows the smoothed probabilities: it is the leader, except that a near tie keeps the
/// label it had for a short while, so two close classes do not flicker. Both bounds hold on every frame: the shown
/// label is never more than `switchMargin` below the leader (a larger gap switches at once), and it is never
/// anything but the leader for longer than `switchSeconds`. So the label never contradicts the numbers beside it.
public struct SmoothingConfiguration: Sendable, Equatable {
    public var method: SmoothingMethod
    /// A leader ahead of the shown label by at least this much takes over at once.
    public var switchMargin: Float
    /// A closer leader takes over once the shown label has not led for this long (seconds).
    public var switchSeconds: Double

    public init(method: SmoothingMethod = .exponential(halfLife: 0.5), switchMargin: Float = 0.1, switchSeconds: Double = 0.3) {
        self.method = method
        self.switchMargin = switchMargin
        self.switchSeconds = switchSeconds
    }

    /// No smoothing and no hysteresis: the shown label is the frame's argmax.
    public static let off = SmoothingConfiguration(method: .none, switchMargin: 0, switchSeconds: 0)
}

/// What a track shows on one frame.
public struct SmoothedEmotion: Sendable, Equatable {
    public var probabilities: [Float]
    /// Index of the shown class.
    public var label: Int
    /// Smoothed probability of the shown class.
    public var confidence: Float

    public init(probabilities: [Float], label: Int, confidence: Float) {
        self.probabilities = probabilities
        self.label = label
        self.confidence = confidence
    }
}

/// Per-track temporal smoothing with a bounded label hold (see `SmoothingConfiguration`). One owner (the analysis stage) calls it every frame.
public final class EmotionSmoother {
    public let configuration: SmoothingConfiguration
    private var tracks: [Int: TrackState] = [:]

    private struct TrackState {
        var time: Double
        var smoothed: [Float]
        var history: [(time: Double, probabilities: [Float])] = []
        var label: Int
        /// Since when the shown label has not been the leader (nil while it leads).
        var behindSince: Double?
    }

    public init(configuration: SmoothingConfiguration = SmoothingConfiguration()) {
        self.configuration = configuration
    }

    public func update(track: Int, probabilities: [Float], time: Double) -> SmoothedEmotion {
        guard var state = tracks[track] else {
            let label = argmax(probabilities)
            var state = TrackState(time: time, smoothed: probabilities, label: label)
            if case .window = configuration.method { state.history = [(time, probabilities)] }
            tracks[track] = state
            return SmoothedEmotion(probabilities: probabilities, label: label, confidence: probabilities[label])
        }
        let elapsed = max(0, time - state.time)
        state.time = time
        switch configuration.method {
        case .none:
            state.smoothed = probabilities
        case .exponential(let halfLife):
            let keep = halfLife > 0 ? Float(pow(0.5, elapsed / halfLife)) : 0
            for index in state.smoothed.indices {
                state.smoothed[index] = keep * state.smoothed[index] + (1 - keep) * probabilities[index]
            }
        case .window(let seconds):
            state.history.append((time, probabilities))
            state.history.removeAll { time - $0.time > seconds }
            var mean = [Float](repeating: 0, count: probabilities.count)
            for entry in state.history {
                for index in mean.indices { mean[index] += entry.probabilities[index] }
            }
            state.smoothed = mean.map { $0 / Float(state.history.count) }
        }

        let leader = argmax(state.smoothed)
        if leader == state.label {
            state.behindSince = nil
        } else {
            let behindSince = state.behindSince ?? time
            if state.smoothed[leader] - state.smoothed[state.label] >= configuration.switchMargin
                || time - behindSince >= configuration.switchSeconds {
                state.label = leader
                state.behindSince = nil
            } else {
                state.behindSince = behindSince
            }
        }
        tracks[track] = state
        return SmoothedEmotion(probabilities: state.smoothed, label: state.label, confidence: state.smoothed[state.label])
    }

    /// Forgets tracks that are no longer alive.
    public func retainOnly(_ alive: Set<Int>) {
        tracks = tracks.filter { alive.contains($0.key) }
    }

    private func argmax(_ values: [Float]) -> Int {
        values.indices.max { values[$0] < values[$1] } ?? 0
    }
}
