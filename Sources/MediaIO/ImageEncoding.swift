import CFFmpeg
import Foundation
import VisionCore

/// The still-image formats `encodeImage` writes.
public enum StillImageFormat: Sendable {
    /// Lossless, rgb24.
    case png
    /// Full-range 4:2:0, quality 2 of 31.
    case jpeg
}

/// Encodes one picture to a still-image file through FFmpeg's encoders: PNG or JPEG, picked by the extension.
/// The file is written whole or not at all.
public func encodeImage(_ image: Image, to path: String) throws(MediaError) {
    let format: StillImageFormat
    switch (path as NSString).pathExtension.lowercased() {
    case "png": format = .png
    case "jpg", "jpeg": format = .jpeg
    default: throw .unknownContainer(path: path)
    }
    let bytes = try encodeImage(image, as: format)
    do { try bytes.write(to: URL(fileURLWithPath: path), options: .atomic) } catch {
        throw .cannotWrite(path: path, reason: error.localizedDescription)
    }
}

/// Encodes one rgb24 picture in memory (a camera's latest frame for the web page, for example).
public func encodeImage(_ image: Image, as format: StillImageFormat) throws(MediaError) -> Data {
    let codecID: AVCodecID
    let encodedFormat: AVPixelFormat
    switch format {
    case .png: (codecID, encodedFormat) = (AV_CODEC_ID_PNG, AV_PIX_FMT_RGB24)
    case .jpeg: (codecID, encodedFormat) = (AV_CODEC_ID_MJPEG, AV_PIX_FMT_YUVJ420P)
    }
    guard image.format == .rgb24 else { throw .invalidArgument("encodeImage takes rgb24 images") }
    guard let codec = avcodec_find_encoder(codecID) else { throw .noEncoder(tried: [format == .png ? "png" : "mjpeg"]) }
    let context = try CodecHandle(codec: codec)
    let encoder = context.pointer
    encoder.pointee.width = Int32(image.width)
    encoder.pointee.height = Int32(image.height)
    encoder.pointee.pix_fmt = encodedFormat
    encoder.pointee.time_base = AVRational(num: 1, den: 25)
    if codecID == AV_CODEC_ID_MJPEG {
        encoder.pointee.flags |= AV_CODEC_FLAG_QSCALE
        encoder.pointee.global_quality = 2 * FF_QP2LAMBDA
        encoder.pointee.color_range = AVCOL_RANGE_JPEG
    }
    var code = avcodec_open2(encoder, codec, nil)
    guard code >= 0 else { throw .ffmpeg(operation: "avcodec_open2", code: code, message: errorString(code)) }

    let frame = FrameHandle()
    frame.pointer.pointee.width = Int32(image.width)
    frame.pointer.pointee.height = Int32(image.height)
    frame.pointer.pointee.format = encodedFormat.rawValue
    code = av_frame_get_buffer(frame.pointer, 0)
    guard code >= 0 else { throw .ffmpeg(operation: "av_frame_get_buffer", code: code, message: errorString(code)) }
    if encodedFormat == AV_PIX_FMT_RGB24 {
        let stride = Int(frame.pointer.pointee.linesize.0)
        image.pixels.withUnsafeBufferPointer { source in
            for row in 0..<image.height {
                (frame.pointer.pointee.data.0! + row * stride)
                    .update(from: source.baseAddress! + row * image.bytesPerRow, count: image.bytesPerRow)
            }
        }
    } else {
        let scaler = ScalerHandle()
        guard let sws = scaler.context(
            sourceWidth: Int32(image.width), sourceHeight: Int32(image.height), sourceFormat: AV_PIX_FMT_RGB24,
            width: Int32(image.width), height: Int32(image.height), format: encodedFormat,
            sourceColorspace: SWS_CS_ITU601, sourceFullRange: true, colorspace: SWS_CS_ITU601, fullRange: true) else {
            throw .ffmpeg(operation: "sws_init_context", code: 0, message: "no rgb24 to yuvj420p converter")
        }
        image.pixels.withUnsafeBufferPointer { source in
            var planes: [UnsafePointer<UInt8>?] = [source.baseAddress, nil, nil, nil]
            var strides: [Int32] = [Int32(image.bytesPerRow), 0, 0, 0]
            withUnsafeMutablePointer(to: &frame.pointer.pointee.data) { data in
                data.withMemoryRebound(to: UnsafeMutablePointer<UInt8>?.self, capacity: 8) { targets in
                    withUnsafeMutablePointer(to: &frame.pointer.pointee.linesize) { lines in
                        lines.withMemoryRebound(to: Int32.self, capacity: 8) { targetStrides in
                            _ = sws_scale(sws, &planes, &strides, 0, Int32(image.height), targets, targetStrides)
                        }
                    }
                }
            }
        }
    }

    var bytes = Data()
    let packet = PacketHandle()
    code = avcodec_send_frame(encoder, frame.pointer)
    guard code >= 0 else { throw .ffmpeg(operation: "avcodec_send_frame", code: code, message: errorString(code)) }
    avcodec_send_frame(encoder, nil)
    while avcodec_receive_packet(encoder, packet.pointer) >= 0 {
        bytes.append(packet.pointer.pointee.data, count: Int(packet.pointer.pointee.size))
        av_packet_unref(packet.pointer)
    }
    guard !bytes.isEmpty else { throw .ffmpeg(operation: "avcodec_receive_packet", code: 0, message: "the encoder gave no picture") }
    return bytes
}
