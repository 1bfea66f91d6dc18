import CFFmpeg
import Foundation

/// What kind of input a path or URL names: a file (read as fast as it decodes), a network stream or
/// a capture device (both live: they deliver frames at their own pace and may drop out).
public enum InputKind: Sendable, Equatable, CustomStringConvertible {
    case file
    /// A network URL; `scheme` is lowercased ("rtsp", "rtmp", "http", "udp", "srt", ...).
    case network(scheme: String)
    /// A capture device path such as /dev/video0 (V4L2).
    case device

    /// Schemes that are always streams.
    public static let liveSchemes: Set<String> = ["rtsp", "rtsps", "rtmp", "rtmps", "rtmpt", "rtp", "udp", "srt", "tcp"]
    /// http(s) URLs ending like these are files on a web server, not streams.
    static let fileExtensions: Set<String> = ["mp4", "m4v", "mov", "mkv", "webm", "avi", "mpg", "mpeg", "wmv", "flv",
                                              "jpg", "jpeg", "png"]

    /// Recognises `url` by its scheme or device path (`--format v4l2` is handled by the caller).
    public init(url: String) {
        if url.hasPrefix("/dev/video") || url.hasPrefix("/dev/v4l/") {
            self = .device
            return
        }
        guard let range = url.range(of: "://") else {
            self = .file
            return
        }
        let scheme = url[..<range.lowerBound].lowercased()
        if InputKind.liveSchemes.contains(scheme) {
            self = .network(scheme: scheme)
        } else if scheme == "http" || scheme == "https" {
            let path = url[range.upperBound...].split(separator: "?", maxSplits: 1).first.map(String.init) ?? ""
            let ext = (path as NSString).pathExtension.lowercased()
            self = InputKind.fileExtensions.contains(ext) ? .file : .network(scheme: scheme)
        } else {
            self = .file
        }
    }

    /// Whether frames come at the source's pace (and the source may drop out and come back).
    public var isLive: Bool { self != .file }

    public var description: String {
        switch self {
        case .file: return "file"
        case .network(let scheme): return scheme
        case .device: return "v4l2"
        }
    }
}

/// How to open an input: which demuxer (nil: FFmpeg probes), and options for the demuxer and protocol,
/// exactly as `ffmpeg -f FORMAT -OPTION VALUE -i URL` would take them.
public struct InputOptions: Sendable, Equatable {
    public var format: String?
    public var options: [String: String]

    public init(format: String? = nil, options: [String: String] = [:]) {
        self.format = format
        self.options = options
    }

    /// The options for a live input of `kind`, from the usual knobs; `extra` (raw `key=value`
    /// options) wins over everything derived here.
    /// - Parameters:
    ///   - timeout: seconds an open or read may stall before FFmpeg gives up (nil: FFmpeg's default).
    ///   - rtspTransport: "tcp" or "udp" for RTSP.
    ///   - videoSize, frameRate, pixelFormat: V4L2 capture settings ("1280x720", "30", "mjpeg").
    public static func live(kind: InputKind, format: String? = nil, timeout: Double? = nil, rtspTransport: String? = nil,
                            videoSize: String? = nil, frameRate: String? = nil, pixelFormat: String? = nil,
                            extra: [String: String] = [:]) -> InputOptions {
        var options: [String: String] = [:]
        let isDevice = kind == .device || format == "v4l2" || format == "video4linux2"
        switch kind {
        case .network(let scheme):
            if let timeout {
                let micros = String(Int64(timeout * 1_000_000))
                if scheme == "rtsp" || scheme == "rtsps" {
                    // FFmpeg 5.x: the RTSP demuxer's socket I/O timeout ("stimeout" before 5.0).
                    options["timeout"] = micros
                } else {
                    // Any protocol's read/write timeout, plus tcp/http/udp/srt's own for connecting.
                    options["rw_timeout"] = micros
                    options["timeout"] = micros
                }
            }
            if scheme == "rtsp" || scheme == "rtsps", let rtspTransport { options["rtsp_transport"] = rtspTransport }
            // Guess the nominal frame rate from 2 frames, not FFmpeg's 20: the frames read while probing reach the
            // pipeline late, in a burst, and are dropped as stale. Timestamps, not this rate, time every frame.
            options["fpsprobesize"] = "2"
        case .device, .file:
            break
        }
        if isDevice {
            if let videoSize { options["video_size"] = videoSize }
            if let frameRate { options["framerate"] = frameRate }
            if let pixelFormat { options["input_format"] = pixelFormat }
        }
        options.merge(extra) { _, new in new }
        return InputOptions(format: format ?? (kind == .device ? "v4l2" : nil), options: options)
    }

    /// Options this struct adds on its own that a protocol may legitimately leave unused.
    static let derivedKeys: Set<String> = ["timeout", "rw_timeout"]
}

/// `avdevice_register_all` once per process, before looking up a device format such as v4l2.
enum DeviceSetup {
    private static let done: Bool = { avdevice_register_all(); return true }()
    static func once() { _ = done }
}

/// A check FFmpeg calls while it waits on the network or a device; returning true aborts the wait
/// (the call then fails with "Immediate exit requested").
final class InterruptCheck {
    let shouldInterrupt: @Sendable () -> Bool
    init(_ shouldInterrupt: @escaping @Sendable () -> Bool) { self.shouldInterrupt = shouldInterrupt }

    /// The C callback: `opaque` is an unretained `InterruptCheck` kept alive by its `DemuxerHandle`.
    static let callback: @convention(c) (UnsafeMutableRawPointer?) -> Int32 = { opaque in
        guard let opaque else { return 0 }
        return Unmanaged<InterruptCheck>.fromOpaque(opaque).takeUnretainedValue().shouldInterrupt() ? 1 : 0
    }
}

/// `[String: String]` <-> `AVDictionary`, inside MediaIO only.
enum FFmpegDictionary {
    /// A new AVDictionary holding `options`; the caller frees it with `av_dict_free`.
    static func make(_ options: [String: String]) -> OpaquePointer? {
        var dictionary: OpaquePointer? = nil
        for (key, value) in options.sorted(by: { $0.key < $1.key }) { av_dict_set(&dictionary, key, value, 0) }
        return dictionary
    }

    static func keys(_ dictionary: OpaquePointer?) -> [String] {
        var keys: [String] = []
        var entry: UnsafeMutablePointer<AVDictionaryEntry>? = nil
        while let next = av_dict_get(dictionary, "", entry, AV_DICT_IGNORE_SUFFIX) {
            keys.append(String(cString: next.pointee.key))
            entry = next
        }
        return keys
    }
}
