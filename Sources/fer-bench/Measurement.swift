import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// Wall-clock and process CPU time (all threads), for one timed region.
struct Stopwatch {
    private let wallStart = ContinuousClock.now
    private let cpuStart = Stopwatch.processCPUSeconds()

    var wallSeconds: Double { Stopwatch.seconds(ContinuousClock.now - wallStart) }
    var cpuSeconds: Double { Stopwatch.processCPUSeconds() - cpuStart }

    static func seconds(_ duration: Duration) -> Double {
        let (seconds, attoseconds) = duration.components
        return Double(seconds) + Double(attoseconds) * 1e-18
    }

    static func processCPUSeconds() -> Double {
        var time = timespec()
        clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &time)
        return Double(time.tv_sec) + Double(time.tv_nsec) * 1e-9
    }

    /// Seconds that `body` takes on the wall clock.
    static func time(_ body: () -> Void) -> Double {
        let start = ContinuousClock.now
        body()
        return seconds(ContinuousClock.now - start)
    }
}

/// Order statistics of a list of durations, in milliseconds.
struct LatencySummary: Encodable {
    let p50Ms: Double
    let p95Ms: Double
    let meanMs: Double
    let minMs: Double

    init(seconds: [Double]) {
        precondition(!seconds.isEmpty, "no samples")
        let sorted = seconds.sorted()
        func quantile(_ q: Double) -> Double { sorted[min(sorted.count - 1, Int((q * Double(sorted.count - 1)).rounded()))] }
        p50Ms = quantile(0.5) * 1e3
        p95Ms = quantile(0.95) * 1e3
        meanMs = seconds.reduce(0, +) / Double(seconds.count) * 1e3
        minMs = sorted[0] * 1e3
    }
}

/// The 1-minute load average when a measurement starts: well above 0 means other work shared the cores.
func loadAverage() -> Double {
    guard let text = try? String(contentsOfFile: "/proc/loadavg", encoding: .utf8),
          let first = text.split(separator: " ").first, let value = Double(first) else { return -1 }
    return value
}

/// Prints one measurement as a single JSON line (snake_case keys, sorted).
func emit<Value: Encodable>(_ value: Value) {
    let encoder = JSONEncoder()
    encoder.keyEncodingStrategy = .convertToSnakeCase
    encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
    FileHandle.standardOutput.write(try! encoder.encode(value) + Data("\n".utf8))
}
