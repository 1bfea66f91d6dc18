import VisionCore

/// What a `VideoReader` learned about its input when it opened it.
public struct VideoInfo: Sendable, Equatable {
    /// The path or URL that was opened.
    public var url: String
    /// The demuxer FFmpeg chose, for example "mov,mp4,m4a,3gp,3g2,mj2" or "image2".
    public var containerFormat: String
    /// The video codec, for example "h264".
    public var codec: String
    /// Coded frame size in pixels (before any rotation for display).
    public var width: Int
    public var height: Int
    /// The decoder's pixel format, for example "yuv420p", "yuvj420p" or "yuv420p10le".
    public var pixelFormat: String
    /// Bits per component of `pixelFormat` (8, 10, 12, ...).
    public var bitDepth: Int
    /// Time base of the video stream: frame timestamps count ticks of this.
    public var timeBase: Rational
    /// Average frame rate when the container states one (nil for unknown; VFR files still report an average).
    public var frameRate: Rational?
    /// Presentation time in seconds at which the file starts (the earliest stream start; often 0,
    /// 1.4 for MPEG-TS). Frame timestamps are not shifted by it; `VideoWriter(matching:)` subtracts it.
    public var startTime: Double
    /// Duration of the whole file in seconds (what `ffprobe` shows as format duration), when known.
    public var duration: Double?
    /// Duration of the video stream alone in seconds, when known.
    public var videoDuration: Double?
    /// Number of video frames stated by the container, or estimated from duration and frame rate.
    public var estimatedFrameCount: Int?
    /// Degrees the frames must be turned clockwise for display (0, 90, 180 or 270), from the display matrix.
    public var rotation: Int
    /// Whether the input holds an audio stream.
    public var hasAudio: Bool
    /// Whether the input can be seeked, and so opened a second time for its audio
    /// (false for pipes, FIFOs and live streams).
    public var isSeekable: Bool
    /// Whether the input is a single still image (JPEG, PNG, ...) rather than a video.
    public var isStillImage: Bool
}
