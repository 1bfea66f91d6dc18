/// How `VideoWriter` encodes video.
public struct EncoderSettings: Sendable, Equatable {
    /// libx264 constant rate factor, 0 (lossless) to 51; 18 looks transparent, 23 is x264's default.
    /// Fallback encoders map it to their own quality scale.
    public var crf: Int
    /// libx264 speed/size trade-off: ultrafast, superfast, veryfast, faster, fast, medium, slow, slower, veryslow.
    public var preset: String
    /// An FFmpeg encoder name to use instead of the default chain libx264 -> libopenh264 -> mpeg4.
    public var encoder: String?
    /// Encoder threads; 0 lets the encoder choose.
    public var threads: Int

    public init(crf: Int = 23, preset: String = "medium", encoder: String? = nil, threads: Int = 0) {
        self.crf = crf
        self.preset = preset
        self.encoder = encoder
        self.threads = threads
    }

    public static let presets = ["ultrafast", "superfast", "veryfast", "faster", "fast",
                                 "medium", "slow", "slower", "veryslow", "placebo"]

    /// Encoders tried in order when `encoder` is nil.
    public static let defaultEncoders = ["libx264", "libopenh264", "mpeg4"]
}

/// What a `VideoWriter` does with the audio of its source.
public enum AudioHandling: Sendable, Equatable, CustomStringConvertible {
    /// No audio in the output (none asked for, or the source has none).
    case none
    /// Packets copied unchanged, codec as named.
    case copied(codec: String)
    /// Decoded and re-encoded to AAC, because the container cannot hold the source codec.
    case reencoded(from: String, to: String)

    public var description: String {
        switch self {
        case .none: return "no audio"
        case .copied(let codec): return "audio copied (\(codec))"
        case .reencoded(let from, let to): return "audio re-encoded \(from) -> \(to)"
        }
    }
}
