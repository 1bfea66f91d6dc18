import CFFmpeg
import VisionCore

/// Decodes a still image (JPEG, PNG, BMP, ... anything FFmpeg's image demuxers read), or the first
/// frame of a video, into a tightly packed `Image`.
///
/// Every call owns its own FFmpeg contexts, so it is safe to call from many threads at once.
public func decodeImage(at path: String, as format: PixelFormat) throws(MediaError) -> Image {
    let reader = try VideoReader(url: path, threads: 1, probeStreams: false)
    guard let frame = try reader.nextFrame(as: format) else {
        throw .notMedia(path: path, reason: "no picture could be decoded")
    }
    return frame.image
}

/// Decodes one JPEG held in memory (a webcam frame sent by a browser), with FFmpeg's MJPEG decoder and no file.
/// Bytes that are not a complete JPEG throw `MediaError.notMedia`; nothing is ever read past `data`.
public func decodeJPEG(_ data: [UInt8], as format: PixelFormat, name: String = "JPEG frame") throws(MediaError) -> Image {
    // SOI marker first: other formats never reach the decoder, whose error messages would be less clear.
    guard data.count > 4, data[0] == 0xFF, data[1] == 0xD8 else {
        throw .notMedia(path: name, reason: "not a JPEG image (no start-of-image marker)")
    }
    guard let codec = avcodec_find_decoder(AV_CODEC_ID_MJPEG) else { throw .noEncoder(tried: ["mjpeg decoder"]) }
    let context = try CodecHandle(codec: codec)
    context.pointer.pointee.thread_count = 1
    var code = avcodec_open2(context.pointer, codec, nil)
    guard code >= 0 else { throw .ffmpeg(operation: "avcodec_open2", code: code, message: errorString(code)) }
    let packet = PacketHandle()
    // The decoder reads up to AV_INPUT_BUFFER_PADDING_SIZE bytes past the data: give it a padded copy it owns.
    code = av_new_packet(packet.pointer, Int32(data.count))
    guard code >= 0 else { throw .ffmpeg(operation: "av_new_packet", code: code, message: errorString(code)) }
    data.withUnsafeBufferPointer { bytes in packet.pointer.pointee.data.update(from: bytes.baseAddress!, count: data.count) }
    let frame = FrameHandle()
    code = avcodec_send_packet(context.pointer, packet.pointer)
    if code >= 0 { code = avcodec_send_packet(context.pointer, nil) }
    if code >= 0 { code = avcodec_receive_frame(context.pointer, frame.pointer) }
    guard code >= 0 else { throw .notMedia(path: name, reason: "not a decodable JPEG (\(errorString(code)))") }
    return try FrameConverter(exactRounding: true).image(from: frame.pointer, as: format)
}
