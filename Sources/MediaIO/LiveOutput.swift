/// How `VideoWriter` writes while a live source plays: the file stays playable at every moment
/// (fragmented MP4, or MKV/MPEG-TS/HLS, which are playable as written), keyframes come often, and
/// URL outputs (RTSP, RTMP, UDP/SRT MPEG-TS) get their muxer by name and a low-latency encoder.
public struct LiveOutput: Sendable, Equatable {
    /// The muxer FFmpeg should use ("rtsp", "flv", "mpegts"); nil guesses it from the file extension
    /// (".mp4", ".mkv", ".ts", ".m3u8" for HLS).
    public var format: String?
    /// Seconds between keyframes: fragment and segment length, and how long a joining viewer waits.
    public var keyframeSeconds: Double
    /// x264's zerolatency tune (no lookahead or B-frames): for viewers of a URL output.
    public var zeroLatency: Bool

    public init(format: String? = nil, keyframeSeconds: Double = 2, zeroLatency: Bool = false) {
        self.format = format
        self.keyframeSeconds = keyframeSeconds
        self.zeroLatency = zeroLatency
    }

    /// Settings for writing `path`: a URL picks its muxer from its scheme and gets the low-latency encoder.
    public init(path: String, keyframeSeconds: Double = 2) {
        self.init(format: LiveOutput.muxer(forURL: path), keyframeSeconds: keyframeSeconds,
                  zeroLatency: LiveOutput.isURL(path))
    }

    /// Whether `path` is a URL FFmpeg writes to over the network rather than a file.
    public static func isURL(_ path: String) -> Bool { path.contains("://") && !path.hasPrefix("file://") }

    /// The muxer a URL needs: MPEG-TS for datagram and byte-stream protocols, FLV for RTMP.
    public static func muxer(forURL path: String) -> String? {
        guard let range = path.range(of: "://") else { return nil }
        switch path[..<range.lowerBound].lowercased() {
        case "rtsp", "rtsps": return "rtsp"
        case "rtmp", "rtmps", "rtmpt": return "flv"
        case "udp", "srt", "tcp", "rist": return "mpegts"
        case "rtp": return "rtp_mpegts"
        default: return nil
        }
    }

    /// Muxer options for `format` (FFmpeg's short name of the muxer in use).
    func muxerOptions(format: String) -> [String: String] {
        switch format {
        case "mp4", "mov", "ipod", "ismv":
            // A moov with no samples up front, then self-contained fragments from each keyframe:
            // every complete fragment plays, however the run ends.
            return ["movflags": "frag_keyframe+empty_moov+default_base_moof"]
        case "hls":
            return ["hls_time": String(keyframeSeconds), "hls_playlist_type": "event"]
        case "rtsp":
            return ["rtsp_transport": "tcp"]
        case "flv":
            return ["flvflags": "no_duration_filesize"]
        default:
            return [:]
        }
    }
}
