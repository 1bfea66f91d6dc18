import CFFmpeg

/// Everything that can go wrong reading or writing media, each with a one-line description
/// fit for an `error:` line.
public enum MediaError: Error, Sendable, Equatable, CustomStringConvertible {
    /// No file at this path.
    case fileNotFound(path: String)
    /// The file exists but cannot be read (permissions, a directory, ...).
    case unreadable(path: String, reason: String)
    /// FFmpeg does not recognise the contents as any media format.
    case notMedia(path: String, reason: String)
    /// The container holds no video stream (audio only, subtitles, ...).
    case noVideoStream(path: String)
    /// No decoder for the video codec in this FFmpeg build.
    case unsupportedCodec(path: String, codec: String)
    /// The container ends before its data does, or its structure is broken.
    case truncated(path: String, reason: String)
    /// The output file cannot be created or written.
    case cannotWrite(path: String, reason: String)
    /// The output's extension names no container FFmpeg can write.
    case unknownContainer(path: String)
    /// No usable video encoder (neither libx264 nor a fallback).
    case noEncoder(tried: [String])
    /// Frames or settings that do not fit the writer.
    case invalidArgument(String)
    /// Any other failing FFmpeg call: which one, and FFmpeg's message.
    case ffmpeg(operation: String, code: Int32, message: String)

    public var description: String {
        switch self {
        case .fileNotFound(let path):
            return "no such file: \(path)"
        case .unreadable(let path, let reason):
            return "cannot read \(path): \(reason)"
        case .notMedia(let path, let reason):
            return "\(path) is not a video or image FFmpeg can read (\(reason))"
        case .noVideoStream(let path):
            return "\(path) has no video stream"
        case .unsupportedCodec(let path, let codec):
            return "\(path): no decoder for video codec '\(codec)' in this FFmpeg build"
        case .truncated(let path, let reason):
            return "\(path) is truncated or corrupt (\(reason))"
        case .cannotWrite(let path, let reason):
            return "cannot write \(path): \(reason)"
        case .unknownContainer(let path):
            return "cannot tell the container from the extension of \(path) (use .mp4, .mkv or .mov)"
        case .noEncoder(let tried):
            return "no video encoder available (tried \(tried.joined(separator: ", ")))"
        case .invalidArgument(let message):
            return message
        case .ffmpeg(let operation, _, let message):
            return "\(operation) failed: \(message)"
        }
    }
}

/// FFmpeg's text for an error code (what `av_err2str` gives in C).
func errorString(_ code: Int32) -> String {
    var buffer = [CChar](repeating: 0, count: Int(AV_ERROR_MAX_STRING_SIZE))
    return buffer.withUnsafeMutableBufferPointer { buf in
        if av_strerror(code, buf.baseAddress, buf.count) < 0 { return "error \(code)" }
        return String(cString: buf.baseAddress!)
    }
}


enum AVCode {
    static let eof = cffmpeg_averror_eof()
    static let again = cffmpeg_averror_eagain()
    static let invalidData = cffmpeg_averror_invaliddata()
    static let noPTS = cffmpeg_nopts_value()
    static func posix(_ errno: Int32) -> Int32 { cffmpeg_averror(errno) }
}
