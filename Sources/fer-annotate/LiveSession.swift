import AnnotationPipeline
import Foundation
import MediaIO
import VisionCore

/// The live half of a run: opens the input with its FFmpeg options (reconnecting when it is a stream or a
/// camera), and makes the live outputs: a video that stays playable while written (or segments, or a URL),
/// the CSV with wall_time and reconnect marks, latency measurement, and the JSON summary's `live` section.
final class LiveSession {
    let input: String
    let kind: InputKind
    let arguments: LiveArguments
    /// Real-time mode: the pipeline drops stale frames instead of building a backlog.
    let isLive: Bool
    let source: FrameSource
    let info: VideoInfo
    private let reader: VideoReader?
    private let reconnecting: ReconnectingSource<VideoReader>?
    private(set) var latencySink: LatencySink?
    private(set) var segmentedSink: SegmentedVideoSink?
    private(set) var videoSink: VideoSink?

    /// The session for `input`, or nil when it is an ordinary file with no live option (the run opens it as before).
    static func open(_ input: String, arguments: LiveArguments, console: Console) throws -> LiveSession? {
        let kind = InputKind(url: input)
        let isLive = arguments.isLive(input)
        let options = arguments.inputOptions(for: input)
        guard isLive || options != InputOptions() || arguments.duration != nil else { return nil }
        do {
            return try LiveSession(input: input, kind: kind, isLive: isLive, options: options, arguments: arguments,
                                   console: console)
        } catch let error as LiveSourceError {
            throw JobError(description: error.description, exitCode: 66)
        }
    }

    private init(input: String, kind: InputKind, isLive: Bool, options: InputOptions, arguments: LiveArguments,
                 console: Console) throws {
        self.input = input
        self.kind = kind
        self.arguments = arguments
        self.isLive = isLive
        if isLive {
            // Streams and cameras reconnect; a file read as live (--live) only keeps its own pace.
            // A server may not be up yet: retry the first open until --timeout. A missing camera fails at once.
            var openTimeout = 0.0
            if case .network = kind { openTimeout = arguments.timeout }
            let policy = ReconnectPolicy(reconnects: kind.isLive, attempts: arguments.reconnectAttempts,
                                         initialDelay: arguments.reconnectDelay, openTimeout: openTimeout)
            let source = try ReconnectingSource<VideoReader>(
                name: input, policy: policy, stopAfter: arguments.duration, pacesFrames: !kind.isLive,
                shouldStop: { StopSignal.isRequested }, describe: LiveSession.reason) {
                    try VideoReader(url: input, input: options, lowDelay: true, interrupt: { StopSignal.isRequested })
                }
            reconnecting = source
            reader = nil
            self.source = source
            info = source.current.info
            for key in source.current.unusedOptions { console.warning("FFmpeg did not use the input option '\(key)'") }
        } else {
            let reader = try VideoReader(url: input, input: options)
            if arguments.startSeconds > 0 { try seek(reader, to: arguments.startSeconds) }
            for key in reader.unusedOptions { console.warning("FFmpeg did not use the input option '\(key)'") }
            self.reader = reader
            reconnecting = nil
            source = arguments.duration.map { DurationLimitedSource(reader, seconds: $0) } ?? reader
            info = reader.info
        }
    }

    var corruptPacketCount: Int { reader?.corruptPacketCount ?? reconnecting?.current.corruptPacketCount ?? 0 }

    /// Frames that may wait for the analysis: with stale frames dropped, the oldest frame analysis can take is
    /// this many frame intervals old.
    var analysisQueueCapacity: Int? { isLive ? 2 : nil }

    // MARK: Outputs

    /// The annotated video for a live input: a fragmented MP4 (or MKV, TS, ...) that plays at every moment,
    /// segments with --segment-time, or a stream to a URL.
    func makeVideoSink(output: String, settings: EncoderSettings, renderer: FrameRenderer) throws -> FrameSink {
        let info = self.info
        let live = LiveOutput(path: output)
        // A stream opened without frame-rate probing may state a nonsense nominal rate (24000 fps): drop it.
        let frameRate = (info.frameRate?.value).map { $0 > 0 && $0 <= 240 } == true ? info.frameRate : nil
        func writer(_ path: String, startTime: Double) throws -> VideoWriter {
            do {
                return try VideoWriter(path: path, width: info.width, height: info.height, timeBase: info.timeBase,
                                       frameRate: frameRate, rotation: info.rotation, settings: settings,
                                       audioSource: nil, startTime: startTime, live: live)
            } catch {
                if !LiveOutput.isURL(path) { try? FileManager.default.removeItem(atPath: path) }
                throw error
            }
        }
        if let seconds = arguments.segmentSeconds, !LiveOutput.isURL(output) {
            let sink = SegmentedVideoSink(basePath: output, segmentSeconds: seconds, renderer: renderer) { path, start in
                try writer(path, startTime: start)
            }
            segmentedSink = sink
            return sink
        }
        let sink = VideoSink(writer: try writer(output, startTime: 0), renderer: renderer)
        videoSink = sink
        return sink
    }

    /// The CSV sink: wall_time always; event and gap_s columns for reconnecting inputs.
    func makeCSVSink(path: String) throws -> FrameSink {
        let writer = try TimelineCSVWriter(path: path, includesWallTime: true, includesEvents: reconnecting != nil)
        guard let reconnecting else { return LiveCSVSink(writer: writer) }
        return LiveCSVSink(writer: writer) { reconnecting.resumedGaps(throughFrame: $0) }
    }

    /// Orders the sinks for a live run: the CSV first (its row is what latency is measured to), then the latency
    /// meter, the other records, and the video last (encoding must not delay the CSV).
    func arrange(_ sinks: [FrameSink], videoSink: FrameSink?) -> [FrameSink] {
        guard isLive else { return sinks }
        let latency = LatencySink(lateAfter: arguments.lateAfter)
        latencySink = latency
        let csv = sinks.filter { $0 is LiveCSVSink || $0 is CSVSink }
        let others = sinks.filter { sink in !(sink is LiveCSVSink || sink is CSVSink) && sink !== videoSink }
        return csv + [latency] + others + (videoSink.map { [$0] } ?? [])
    }

    var encoderName: String? { videoSink?.encoderName ?? segmentedSink?.encoderName }
    var adjustedTimestamps: Int { videoSink?.adjustedTimestamps ?? segmentedSink?.adjustedTimestamps ?? 0 }

    // MARK: Reports

    /// An error from the source, as the one line the user sees.
    func translate(_ error: Error) -> Error {
        if let error = error as? LiveSourceError { return JobError(description: error.description, exitCode: 66) }
        return error
    }

    /// Why the run ended, when not at the end of the input.
    func stopReason(_ statistics: PipelineStatistics) -> String? {
        if let signal = StopSignal.signalName { return signal }
        if statistics.sourceError != nil { return "source lost" }
        if reconnecting?.reachedStopTime == true || (source as? DurationLimitedSource)?.reachedLimit == true {
            return "duration"
        }
        return nil
    }

    func report(_ statistics: PipelineStatistics) -> LiveReport? {
        guard isLive else { return nil }
        let latency = latencySink?.latency ?? LatencyStatistics()
        let milliseconds = { (value: Double?) in value.map { ($0 * 10_000).rounded() / 10 } }
        let gaps = reconnecting?.gaps ?? []
        let lag = reconnecting?.lag ?? (current: 0, maximum: 0)
        let wall = max(statistics.seconds, 1e-9)
        return LiveReport(
            inputKind: kind.description, framesRead: statistics.framesRead, framesAnalyzed: statistics.framesAnalyzed,
            framesDropped: statistics.framesDropped, framesLate: latencySink?.lateFrames ?? 0,
            lateAfter: arguments.lateAfter,
            sourceFPS: Double(statistics.framesRead) / wall, analyzedFPS: Double(statistics.framesAnalyzed) / wall,
            latencyMilliseconds: LiveReport.Latency(
                p50: milliseconds(latency.percentile(50)), p95: milliseconds(latency.percentile(95)),
                max: milliseconds(latency.count > 0 ? latency.maximum : nil), mean: milliseconds(latency.mean),
                frames: latency.count),
            sourceLag: LiveReport.Lag(current: lag.current, maximum: lag.maximum),
            reconnects: gaps.filter { $0.resumedFrameIndex != nil }.count,
            gaps: gaps.map(LiveReport.Gap.init), segments: segmentedSink?.paths,
            stoppedBy: stopReason(statistics))
    }

    /// The --stats lines (any run; the live ones add drops, latency and reconnects).
    static func statisticsText(_ statistics: PipelineStatistics, live: LiveSession?) -> String {
        let wall = max(statistics.seconds, 1e-9)
        var text = String(format: "frames: %d read, %d analysed (%.1f fps over %.1f s)",
                          statistics.framesRead, statistics.framesAnalyzed,
                          Double(statistics.framesAnalyzed) / wall, statistics.seconds)
        guard let live, let report = live.report(statistics) else { return text + "\n" }
        text += String(format: ", %d dropped, %d late (> %.2f s)\n", report.framesDropped, report.framesLate, report.lateAfter)
        let latency = report.latencyMilliseconds
        func ms(_ value: Double?) -> String { value.map { String(format: "%.0f ms", $0) } ?? "-" }
        text += "latency, arrival to CSV row: p50 \(ms(latency.p50)), p95 \(ms(latency.p95)), max \(ms(latency.max))"
        text += String(format: "; source lag %.2f s (max %.2f s)\n", report.sourceLag.current, report.sourceLag.maximum)
        if !report.gaps.isEmpty {
            let list = report.gaps.map { gap in
                gap.seconds.map { String(format: "%.1f s at %.1f s", $0, gap.startTime) }
                    ?? String(format: "from %.1f s, not reconnected", gap.startTime)
            }
            text += "reconnects: \(report.reconnects) (gaps: \(list.joined(separator: ", ")))\n"
        }
        return text
    }

    /// A short reason for a failed open or read.
    static func reason(_ error: Error) -> String {
        guard let error = error as? MediaError else { return "\(error)" }
        switch error {
        case .truncated(_, let reason): return "the stream broke off (\(reason))"
        case .unreadable(_, let reason), .notMedia(_, let reason): return reason
        case .fileNotFound: return "not found"
        default: return error.description
        }
    }
}

/// The JSON summary's `live` section.
struct LiveReport: Encodable {
    struct Latency: Encodable {
        let p50: Double?
        let p95: Double?
        let max: Double?
        let mean: Double?
        let frames: Int
    }

    struct Lag: Encodable {
        let current: Double
        let maximum: Double
        enum CodingKeys: String, CodingKey { case current = "final_s", maximum = "max_s" }
    }

    struct Gap: Encodable {
        let reason: String
        let startWallTime: String
        let endWallTime: String?
        let startTime: Double
        let endTime: Double?
        let seconds: Double?
        let attempts: Int
        let resumeFrame: Int?

        init(_ gap: StreamGap) {
            let formatter = ISO8601DateFormatter()
            formatter.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
            reason = gap.reason
            startWallTime = formatter.string(from: gap.lastFrameWallTime)
            endWallTime = gap.resumedWallTime.map { formatter.string(from: $0) }
            startTime = gap.lastFrameTime
            endTime = gap.resumedTime
            seconds = gap.seconds
            attempts = gap.attempts
            resumeFrame = gap.resumedFrameIndex
        }

        enum CodingKeys: String, CodingKey {
            case reason, seconds, attempts
            case startWallTime = "start_wall_time", endWallTime = "end_wall_time", startTime = "start_s"
            case endTime = "end_s", resumeFrame = "resume_frame"
        }
    }

    let inputKind: String
    let framesRead: Int
    let framesAnalyzed: Int
    let framesDropped: Int
    let framesLate: Int
    let lateAfter: Double
    let sourceFPS: Double
    let analyzedFPS: Double
    let latencyMilliseconds: Latency
    let sourceLag: Lag
    let reconnects: Int
    let gaps: [Gap]
    let segments: [String]?
    let stoppedBy: String?

    enum CodingKeys: String, CodingKey {
        case reconnects, gaps, segments
        case inputKind = "input_kind", framesRead = "frames_read", framesAnalyzed = "frames_analyzed"
        case framesDropped = "frames_dropped", framesLate = "frames_late", lateAfter = "late_after_s"
        case sourceFPS = "source_fps", analyzedFPS = "analyzed_fps", latencyMilliseconds = "latency_ms"
        case sourceLag = "source_lag", stoppedBy = "stopped_by"
    }
}
