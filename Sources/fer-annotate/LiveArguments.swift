import ArgumentParser
import Foundation
import MediaIO

/// Options for cameras and network streams (and `--start` and `--duration`, which files take too).
struct LiveArguments: ParsableArguments {
    @Flag(help: "Treat the input as live even when it looks like a file: real-time mode (frames at the source's pace, stale ones dropped), wall_time in the CSV. A file is then read at its own frame rate.")
    var live = false

    @Option(help: ArgumentHelp("FFmpeg input format to use instead of probing: v4l2 (camera), mpegts, ...", valueName: "name"))
    var format: String?

    @Option(help: ArgumentHelp("RTSP transport: tcp (works through NAT, loses nothing) or udp.", valueName: "tcp|udp"))
    var rtspTransport = "tcp"

    @Option(help: ArgumentHelp("Seconds a live input may stall (opening or reading) before it counts as lost.", valueName: "seconds"))
    var timeout = 10.0

    @Option(name: .customLong("input-option"), help: ArgumentHelp(
        "An FFmpeg demuxer or protocol option, as ffmpeg's -key value before -i (repeatable): --input-option probesize=500000.",
        valueName: "key=value"))
    var inputOptions: [String] = []

    @Option(help: ArgumentHelp("Camera (V4L2) frame size.", valueName: "WxH"))
    var videoSize: String?

    @Option(help: ArgumentHelp("Camera (V4L2) frame rate.", valueName: "fps"))
    var framerate: String?

    @Option(help: ArgumentHelp("Camera (V4L2) pixel format: mjpeg, yuyv422, h264, ...", valueName: "name"))
    var inputFormat: String?

    @Option(help: ArgumentHelp("Reconnects tried after a live input is lost, before giving up; 0 tries forever.", valueName: "n"))
    var reconnectAttempts = 0

    @Option(help: ArgumentHelp("Seconds before the first reconnect; doubled after each failed one (at most 30 s).", valueName: "seconds"))
    var reconnectDelay = 1.0

    @Option(help: ArgumentHelp("Split the annotated video into files of this much stream time (90s, 10m, 1h), named with their start time.",
                               valueName: "time"))
    var segmentTime: String?

    @Option(help: ArgumentHelp("Start this far into a file: 90, 90s, 1.5m or 00:01:30. CSV times stay the file's own; the annotated video starts at 0. Files only.",
                               valueName: "time"))
    var start: String?

    @Option(help: ArgumentHelp("Stop after this many seconds of stream time (a clean stop: files finished, summary written).",
                               valueName: "seconds"))
    var duration: Double?

    @Option(help: ArgumentHelp("Frames whose CSV row comes later than this after the frame arrived count as late.", valueName: "seconds"))
    var lateAfter = 0.5

    @Flag(help: "Print frame, drop and latency statistics (p50/p95/max) at the end.")
    var stats = false

    func validate() throws {
        guard ["tcp", "udp", "udp_multicast", "http", "https"].contains(rtspTransport) else {
            throw ValidationError("--rtsp-transport must be tcp or udp (or udp_multicast, http, https)")
        }
        guard timeout > 0 else { throw ValidationError("--timeout must be positive") }
        guard reconnectAttempts >= 0 else { throw ValidationError("--reconnect-attempts must be 0 (forever) or more") }
        guard reconnectDelay > 0 else { throw ValidationError("--reconnect-delay must be positive") }
        guard lateAfter > 0 else { throw ValidationError("--late-after must be positive") }
        if let duration, !(duration > 0) { throw ValidationError("--duration must be positive") }
        for option in inputOptions where !option.contains("=") || option.hasPrefix("=") {
            throw ValidationError("--input-option takes key=value, not '\(option)'")
        }
        if let videoSize, videoSize.split(separator: "x").count != 2
            || !videoSize.split(separator: "x").allSatisfy({ Int($0).map { $0 > 0 } ?? false }) {
            throw ValidationError("--video-size takes WIDTHxHEIGHT, for example 1280x720")
        }
        if let framerate, (Double(framerate) ?? LiveArguments.fraction(framerate)).map({ $0 <= 0 }) ?? true {
            throw ValidationError("--framerate takes a positive number, for example 30 or 30000/1001")
        }
        if let start {
            guard let seconds = LiveArguments.seconds(start), seconds >= 0 else {
                throw ValidationError("--start takes a time of 0 or more: 90, 90s, 1.5m or 00:01:30")
            }
            if live || format == "v4l2" { throw ValidationError("--start is for files; a live input starts now") }
        }
        if let segmentTime {
            guard let seconds = LiveArguments.seconds(segmentTime), seconds >= 1 else {
                throw ValidationError("--segment-time takes a time of at least 1 s: 90, 90s, 10m, 1h or 00:10:00")
            }
        }
    }

    /// Whether `input` runs in real-time mode.
    func isLive(_ input: String) -> Bool { live || format == "v4l2" || InputKind(url: input).isLive }

    /// --start in seconds (0 without it).
    var startSeconds: Double { start.flatMap(LiveArguments.seconds) ?? 0 }

    /// --segment-time in seconds.
    var segmentSeconds: Double? { segmentTime.flatMap(LiveArguments.seconds) }

    /// The FFmpeg options for `input`.
    func inputOptions(for input: String) -> InputOptions {
        var extra: [String: String] = [:]
        for option in inputOptions {
            let parts = option.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
            extra[String(parts[0])] = parts.count > 1 ? String(parts[1]) : ""
        }
        let kind = InputKind(url: input)
        return InputOptions.live(kind: kind, format: format, timeout: kind.isLive ? timeout : nil,
                                 rtspTransport: rtspTransport, videoSize: videoSize, frameRate: framerate,
                                 pixelFormat: inputFormat, extra: extra)
    }

    /// "90", "90s", "10m", "1.5h" or "HH:MM:SS" in seconds.
    static func seconds(_ text: String) -> Double? {
        let trimmed = text.trimmingCharacters(in: .whitespaces).lowercased()
        if trimmed.contains(":") {
            let parts = trimmed.split(separator: ":").map { Double($0) }
            guard (2...3).contains(parts.count), parts.allSatisfy({ $0 != nil }) else { return nil }
            return parts.reduce(0) { $0 * 60 + $1! }
        }
        let units: [(String, Double)] = [("ms", 0.001), ("s", 1), ("m", 60), ("h", 3600)]
        for (suffix, scale) in units where trimmed.hasSuffix(suffix) {
            if let value = Double(trimmed.dropLast(suffix.count)) { return value * scale }
        }
        return Double(trimmed)
    }

    static func fraction(_ text: String) -> Double? {
        let parts = text.split(separator: "/")
        guard parts.count == 2, let top = Double(parts[0]), let bottom = Double(parts[1]), bottom > 0 else { return nil }
        return top / bottom
    }
}
