import CFFmpeg

/// How much FFmpeg itself prints to stderr (process-wide; FFmpeg has one log level).
public enum MediaLog {
    public enum Level: Sendable {
        /// Nothing, not even FFmpeg's errors: callers report `MediaError`s themselves.
        case quiet
        /// Errors only, such as a damaged packet.
        case error
        /// Errors and warnings.
        case warning
        /// FFmpeg's default: also stream information.
        case info

        var ffmpegValue: Int32 {
            switch self {
            case .quiet: return AV_LOG_QUIET
            case .error: return AV_LOG_ERROR
            case .warning: return AV_LOG_WARNING
            case .info: return AV_LOG_INFO
            }
        }
    }

    public static func setLevel(_ level: Level) { av_log_set_level(level.ffmpegValue) }
}
