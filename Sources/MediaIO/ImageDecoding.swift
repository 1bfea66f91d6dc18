import VisionCore

/// Decodes a still image (JPEG, PNG, BMP, ... anything FFmpeg's image demuxers read), or the first
/// frame of a video, into a tightly packed `Image`.
///
/// Every call owns its own FFmpeg contexts, so it is safe to call from many threads at once.
public func decodeImage(at path: String, as format: PixelFormat) throws(MediaError) -> Image {
    let reader = try VideoReader(url: path, threads: 1, probeStreams: false)
    guard let frame = try reader.nextFrame(as: format) else {
        throw .truncated(path: path, reason: "no picture could be decoded")
    }
    return frame.image
}
