import Foundation
import MediaIO
import VisionCore

/// One interruption of a live source, from the last frame before the loss to the first after the reconnect.
public struct StreamGap: Sendable, Equatable {
    /// Why the source was lost: "the stream ended", or the read error.
    public var reason: String
    /// Arrival (wall clock) and output stream time (the CSV's time_s) of the last frame before the loss.
    public var lastFrameWallTime: Date
    public var lastFrameTime: Double
    /// The same for the first frame after the reconnect; nil while (or if never) reconnected.
    public var resumedWallTime: Date?
    public var resumedTime: Double?
    /// Index (the CSV's frame) of the first frame after the reconnect.
    public var resumedFrameIndex: Int?
    /// Opening attempts made, the successful one included.
    public var attempts: Int

    public init(reason: String, lastFrameWallTime: Date, lastFrameTime: Double, resumedWallTime: Date? = nil,
                resumedTime: Double? = nil, resumedFrameIndex: Int? = nil, attempts: Int = 0) {
        self.reason = reason
        self.lastFrameWallTime = lastFrameWallTime
        self.lastFrameTime = lastFrameTime
        self.resumedWallTime = resumedWallTime
        self.resumedTime = resumedTime
        self.resumedFrameIndex = resumedFrameIndex
        self.attempts = attempts
    }

    /// Wall-clock seconds without frames.
    public var seconds: Double? { resumedWallTime.map { $0.timeIntervalSince(lastFrameWallTime) } }
}

/// When and how often to reopen a live source.
public struct ReconnectPolicy: Sendable {
    /// Reopen a source that fails or ends (live streams); false: the first error or end finishes the run.
    public var reconnects: Bool
    /// Attempts per loss before giving up; 0 tries forever.
    public var attempts: Int
    /// Seconds before the first attempt; each failed attempt doubles it, up to `maximumDelay`.
    public var initialDelay: Double
    public var maximumDelay: Double
    /// The first open is retried this long (a server not up yet, a camera still booting) before the run
    /// fails; 0 tries once.
    public var openTimeout: Double

    public init(reconnects: Bool = true, attempts: Int = 0, initialDelay: Double = 1, maximumDelay: Double = 30,
                openTimeout: Double = 10) {
        self.reconnects = reconnects
        self.attempts = attempts
        self.initialDelay = initialDelay
        self.maximumDelay = maximumDelay
        self.openTimeout = openTimeout
    }
}

/// A live source that could not be opened, or was lost for good.
public enum LiveSourceError: Error, CustomStringConvertible {
    /// The first open kept failing for `seconds`.
    case neverOpened(name: String, seconds: Double, attempts: Int, lastError: String)
    /// The source was lost and `attempts` reconnects failed.
    case lost(name: String, afterTime: Double, attempts: Int, lastError: String)

    public var description: String {
        switch self {
        case .neverOpened(let name, let seconds, let attempts, let lastError):
            let tries = attempts == 1 ? "" : ", \(attempts) attempts"
            return "cannot open \(name): no stream within \(String(format: "%g", seconds)) s (\(lastError)\(tries))"
        case .lost(let name, let time, let attempts, let lastError):
            return "lost \(name) at \(String(format: "%.1f", time)) s and could not reconnect in \(attempts) attempt(s) (\(lastError))"
        }
    }
}

/// Wraps a live source: reopens it with exponential backoff when it fails or ends, and rewrites every frame's
/// timestamp and index onto one output timeline, so time_s and the video's timestamps only go forward although
/// each new session of the stream starts its clock again.
///
/// The output timeline starts at 0 with the first frame. A new session continues after the last frame before the
/// loss, shifted by the wall-clock time without frames, so time_s keeps tracking elapsed time and a player shows
/// the last picture for the length of the outage. Backward jumps inside a session are treated the same way.
///
/// Runs on the pipeline's reader thread; `gaps` and `restartCount(throughFrame:)` may be read from any thread.
public final class ReconnectingSource<Source: FrameSource>: RestartingFrameSource, @unchecked Sendable {
    /// The session now being read.
    public private(set) var current: Source
    public let name: String
    public let policy: ReconnectPolicy
    /// Output seconds after which the source ends (`--duration`); nil for no limit.
    public let stopAfter: Double?
    /// Sleep so frames come no faster than their timestamps (a file read as if live); false for real sources.
    public let pacesFrames: Bool

    private let open: () throws -> Source
    private let shouldStop: @Sendable () -> Bool
    private let describe: (Error) -> String
    private let wait: (Double) -> Bool
    /// Wall-clock time: gaps, pacing and the first open's timeout are measured with it (tests pass a virtual one,
    /// advanced by their `wait`).
    private let now: () -> Date
    private let lock = NSLock()
    private var recordedGaps: [StreamGap] = []
    private var ended = false
    /// Whether the source ended because it reached `stopAfter`.
    public private(set) var reachedStopTime = false

    // The output timeline, in the first session's time base.
    private var timeBase: Rational?
    private var session: (firstTicks: Int64, timeBase: Rational, offset: Int64)?
    private var last: (ticks: Int64, duration: Int64, arrival: Date)?
    private var nextIndex = 0
    private var started: Date?
    private var lagBaseline: Double?
    private var lagStorage = (current: 0.0, maximum: 0.0)

    /// Opens the source (retrying for `policy.openTimeout` seconds).
    /// - Parameters:
    ///   - name: the input as the user gave it, for messages.
    ///   - shouldStop: polled while waiting to reconnect; true ends the source (nextFrame returns nil).
    ///   - describe: the short reason for an open or read error, for gap records and messages.
    ///   - wait: sleeps the given seconds unless stopped; returns false when stopped (tests replace it).
    ///   - clock: the wall clock (tests replace it with a virtual one that their `wait` advances).
    ///   - open: opens a new session of the source.
    public init(name: String, policy: ReconnectPolicy, stopAfter: Double? = nil, pacesFrames: Bool = false,
                shouldStop: @escaping @Sendable () -> Bool = { false },
                describe: @escaping (Error) -> String = { "\($0)" },
                wait: ((Double) -> Bool)? = nil,
                clock: @escaping () -> Date = { Date() },
                open: @escaping () throws -> Source) throws {
        self.name = name
        self.policy = policy
        self.stopAfter = stopAfter
        self.pacesFrames = pacesFrames
        self.open = open
        self.shouldStop = shouldStop
        self.describe = describe
        now = clock
        let waiter = wait ?? { seconds in ReconnectingSource.sleep(seconds, unless: shouldStop) }
        self.wait = waiter

        let start = clock()
        var delay = min(policy.initialDelay, 1)
        var attempts = 0
        var opened: Source?
        while opened == nil {
            attempts += 1
            do {
                opened = try open()
            } catch {
                let remaining = policy.openTimeout - clock().timeIntervalSince(start)
                if policy.openTimeout <= 0 { throw error }
                guard remaining > 0, !shouldStop(), waiter(min(delay, remaining)) else {
                    let waited = shouldStop() ? (clock().timeIntervalSince(start) * 10).rounded() / 10 : policy.openTimeout
                    throw LiveSourceError.neverOpened(name: name, seconds: waited, attempts: attempts,
                                                      lastError: describe(error))
                }
                delay = min(delay * 2, policy.maximumDelay)
            }
        }
        current = opened!
    }

    /// Every gap so far, the one being waited out included.
    public var gaps: [StreamGap] { lock.withLock { recordedGaps } }

    /// Gaps whose first frame after the reconnect has index <= `index`.
    public func resumedGaps(throughFrame index: Int) -> [StreamGap] {
        lock.withLock { recordedGaps.filter { ($0.resumedFrameIndex ?? .max) <= index } }
    }

    public func restartCount(throughFrame index: Int) -> Int {
        lock.withLock { recordedGaps.reduce(0) { $0 + (($1.resumedFrameIndex ?? .max) <= index ? 1 : 0) } }
    }

    /// How far behind its own timestamps the source is delivering, in seconds: arrival minus stream time,
    /// relative to the best frame so far. Growing means a backlog is building up before the reader.
    public var lag: (current: Double, maximum: Double) { lock.withLock { lagStorage } }

    public func nextFrame() throws -> Frame? {
        while !ended {
            if shouldStop() { return nil }
            var failure: Error?
            var frame: Frame?
            do { frame = try current.nextFrame() } catch { failure = error }
            if let frame {
                let placed = place(frame)
                if let stopAfter, placed.seconds >= stopAfter {
                    ended = true
                    reachedStopTime = true
                    return nil
                }
                return placed
            }
            // Ended, failed, or interrupted by a stop request.
            if shouldStop() { return nil }
            guard policy.reconnects else {
                ended = true
                if let failure { throw failure }
                return nil
            }
            guard try reconnect(reason: failure.map(describe) ?? "the stream ended") else { return nil }
        }
        return nil
    }

    /// Reopens with backoff; false when a stop was requested meanwhile.
    private func reconnect(reason: String) throws -> Bool {
        let before = last
        let lastTime = before.map { seconds($0.ticks) } ?? 0
        lock.withLock {
            recordedGaps.append(StreamGap(reason: reason, lastFrameWallTime: before?.arrival ?? now(),
                                          lastFrameTime: lastTime, attempts: 0))
        }
        var delay = policy.initialDelay
        var attempts = 0
        var lastError = reason
        while policy.attempts == 0 || attempts < policy.attempts {
            guard wait(delay) else { return false }
            attempts += 1
            lock.withLock { recordedGaps[recordedGaps.count - 1].attempts = attempts }
            do {
                current = try open()
                session = nil
                return true
            } catch {
                if shouldStop() { return false }
                lastError = describe(error)
                delay = min(delay * 2, policy.maximumDelay)
            }
        }
        ended = true
        throw LiveSourceError.lost(name: name, afterTime: lastTime, attempts: attempts, lastError: lastError)
    }

    /// The frame moved onto the output timeline, with the next output index; records a gap's end.
    private func place(_ frame: Frame) -> Frame {
        let source = frame.timestamp.timeBase
        let output = timeBase ?? source
        timeBase = output
        if started == nil { started = now() }

        var ticks: Int64
        if let session, session.timeBase == source {
            ticks = session.offset + rescale(frame.timestamp.ticks - session.firstTicks, from: source, to: output)
        } else {
            ticks = startOfSession(output: output)
            session = (frame.timestamp.ticks, source, ticks)
        }
        if let last, ticks <= last.ticks {
            // The source's clock went back without a reconnect (a camera restarting its counter): a new session.
            ticks = startOfSession(output: output)
            session = (frame.timestamp.ticks, source, ticks)
        }
        if pacesFrames, let started {
            let due = started.addingTimeInterval(seconds(ticks))
            let early = due.timeIntervalSinceNow
            if early > 0 { _ = wait(early) }
        }
        let arrival = now()
        var placed = frame
        placed.timestamp = Timestamp(ticks: ticks, timeBase: output)
        placed.duration = frame.duration > 0 ? max(1, rescale(frame.duration, from: source, to: output)) : 0
        placed.index = nextIndex
        nextIndex += 1

        lock.withLock {
            if let index = recordedGaps.indices.last, recordedGaps[index].resumedFrameIndex == nil {
                recordedGaps[index].resumedWallTime = arrival
                recordedGaps[index].resumedTime = seconds(ticks)
                recordedGaps[index].resumedFrameIndex = placed.index
            }
            let behind = arrival.timeIntervalSince(started ?? arrival) - seconds(ticks)
            lagBaseline = min(lagBaseline ?? behind, behind)
            lagStorage.current = behind - (lagBaseline ?? behind)
            lagStorage.maximum = max(lagStorage.maximum, lagStorage.current)
        }
        last = (ticks, placed.duration, arrival)
        return placed
    }

    /// Where a new session's first frame goes: 0 for the first, else after the last frame by the longer of
    /// its duration and the wall-clock time since it arrived.
    private func startOfSession(output: Rational) -> Int64 {
        guard let last else { return 0 }
        let frameTicks = last.duration > 0 ? last.duration : 1
        let wallTicks = Int64((now().timeIntervalSince(last.arrival) * Double(output.denominator)
            / Double(output.numerator)).rounded())
        return last.ticks + max(frameTicks, wallTicks, 1)
    }

    private func seconds(_ ticks: Int64) -> Double {
        guard let timeBase else { return 0 }
        return Double(ticks) * Double(timeBase.numerator) / Double(timeBase.denominator)
    }

    private func rescale(_ ticks: Int64, from source: Rational, to target: Rational) -> Int64 {
        if source == target { return ticks }
        let value = Double(ticks) * Double(source.numerator) * Double(target.denominator)
            / (Double(source.denominator) * Double(target.numerator))
        return Int64(value.rounded())
    }

    /// Sleeps up to `seconds` in short steps; false as soon as `shouldStop` says so.
    static func sleep(_ seconds: Double, unless shouldStop: () -> Bool) -> Bool {
        let end = Date().addingTimeInterval(seconds)
        while true {
            if shouldStop() { return false }
            let left = end.timeIntervalSinceNow
            if left <= 0 { return true }
            Thread.sleep(forTimeInterval: min(left, 0.05))
        }
    }
}

/// Ends a source after `seconds` of stream time from its first frame (`--duration` on a file).
public final class DurationLimitedSource: FrameSource {
    private let source: FrameSource
    public let seconds: Double
    private var first: Double?
    /// Whether the source ended because it reached `seconds`.
    public private(set) var reachedLimit = false

    public init(_ source: FrameSource, seconds: Double) {
        self.source = source
        self.seconds = seconds
    }

    public func nextFrame() throws -> Frame? {
        guard !reachedLimit, let frame = try source.nextFrame() else { return nil }
        let start = first ?? frame.seconds
        first = start
        if frame.seconds - start >= seconds {
            reachedLimit = true
            return nil
        }
        return frame
    }
}
