import Foundation

/// Latency samples in constant memory: a histogram of 1 ms bins up to 10 s (longer ones share the last bin),
/// plus the exact count, sum and maximum. Percentiles are nearest-rank, exact to the bin width (1 ms).
public struct LatencyStatistics: Sendable {
    public static let binSeconds = 0.001
    static let binCount = 10_000

    public private(set) var count = 0
    public private(set) var sum = 0.0
    public private(set) var maximum = 0.0
    private var bins = [Int](repeating: 0, count: LatencyStatistics.binCount + 1)

    public init() {}

    public mutating func add(_ seconds: Double) {
        let value = max(0, seconds)
        count += 1
        sum += value
        maximum = max(maximum, value)
        bins[min(Int(value / LatencyStatistics.binSeconds), LatencyStatistics.binCount)] += 1
    }

    public var mean: Double? { count > 0 ? sum / Double(count) : nil }

    /// The smallest latency that at least `percent` % of the samples do not exceed (nearest rank), rounded up to
    /// the end of its 1 ms bin and never above the maximum; nil without samples.
    public func percentile(_ percent: Double) -> Double? {
        guard count > 0 else { return nil }
        let rank = max(1, Int((percent / 100 * Double(count)).rounded(.up)))
        var seen = 0
        for (bin, samples) in bins.enumerated() {
            seen += samples
            if seen >= rank {
                if bin == LatencyStatistics.binCount { return maximum }
                return min(Double(bin + 1) * LatencyStatistics.binSeconds, maximum)
            }
        }
        return maximum
    }
}

/// Measures each frame's latency from its arrival (when the reader got it) to this point in the sink chain:
/// put it right after the CSV sink to time "arrival to CSV row". Frames later than `lateAfter` seconds count as late.
public final class LatencySink: FrameSink {
    public let lateAfter: Double
    public private(set) var latency = LatencyStatistics()
    public private(set) var lateFrames = 0

    public init(lateAfter: Double = 0.5) { self.lateAfter = lateAfter }

    public func consume(_ annotated: AnnotatedFrame) throws {
        guard let arrival = annotated.arrival else { return }
        let seconds = Date().timeIntervalSince(arrival)
        latency.add(seconds)
        if seconds > lateAfter { lateFrames += 1 }
    }

    public func finish(completed: Bool) throws {}
}
