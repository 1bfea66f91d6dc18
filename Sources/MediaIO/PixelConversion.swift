import CFFmpeg
import VisionCore

extension PixelFormat {
    var ffmpegFormat: AVPixelFormat {
        switch self {
        case .gray8: return AV_PIX_FMT_GRAY8
        case .rgb24: return AV_PIX_FMT_RGB24
        }
    }
}

/// The swscale colour matrix for a stream: its tag, or BT.709 for HD and BT.601 below when untagged.
func swsColorspace(_ space: AVColorSpace, height: Int32) -> Int32 {
    switch space {
    case AVCOL_SPC_BT709: return SWS_CS_ITU709
    case AVCOL_SPC_BT470BG, AVCOL_SPC_SMPTE170M: return SWS_CS_ITU601
    case AVCOL_SPC_SMPTE240M: return SWS_CS_SMPTE240M
    case AVCOL_SPC_FCC: return SWS_CS_FCC
    case AVCOL_SPC_BT2020_NCL, AVCOL_SPC_BT2020_CL: return SWS_CS_BT2020
    default: return height >= 720 ? SWS_CS_ITU709 : SWS_CS_ITU601
    }
}

/// The deprecated full-range `yuvj*` formats as their plain `yuv*` twin plus a full-range flag,
/// so swscale does not warn and converts the range we say.
func normalisedSourceFormat(_ format: AVPixelFormat, range: AVColorRange) -> (AVPixelFormat, fullRange: Bool) {
    switch format {
    case AV_PIX_FMT_YUVJ420P: return (AV_PIX_FMT_YUV420P, true)
    case AV_PIX_FMT_YUVJ422P: return (AV_PIX_FMT_YUV422P, true)
    case AV_PIX_FMT_YUVJ444P: return (AV_PIX_FMT_YUV444P, true)
    case AV_PIX_FMT_YUVJ440P: return (AV_PIX_FMT_YUV440P, true)
    case AV_PIX_FMT_YUVJ411P: return (AV_PIX_FMT_YUV411P, true)
    default:
        // RGB and gray sources are full range unless tagged otherwise.
        let isYUV = (av_pix_fmt_desc_get(format)?.pointee.flags ?? 0) & UInt64(AV_PIX_FMT_FLAG_RGB) == 0
            && format != AV_PIX_FMT_GRAY8 && format != AV_PIX_FMT_GRAY16LE && format != AV_PIX_FMT_GRAY10LE
        return (format, isYUV ? range == AVCOL_RANGE_JPEG : range != AVCOL_RANGE_MPEG)
    }
}

/// Converts a decoded frame into a tightly packed `Image` through swscale.
final class FrameConverter {
    private let scaler: ScalerHandle
    private var scratch: AlignedBuffer? = nil

    /// `exactRounding`: swscale's accurate rounding (see `ScalerHandle`).
    init(exactRounding: Bool) {
        scaler = ScalerHandle(exactRounding: exactRounding)
    }

    func image(from frame: UnsafeMutablePointer<AVFrame>, as format: PixelFormat) throws(MediaError) -> Image {
        let width = frame.pointee.width, height = frame.pointee.height
        guard width > 0, height > 0 else { throw .invalidArgument("decoded frame has no size") }
        let (sourceFormat, sourceFullRange) = normalisedSourceFormat(
            AVPixelFormat(rawValue: frame.pointee.format), range: frame.pointee.color_range)
        // One matrix on both sides: YUV to gray then keeps luma as is, RGB to gray uses the stream's matrix.
        let colorspace = swsColorspace(frame.pointee.colorspace, height: height)
        guard let context = scaler.context(
            sourceWidth: width, sourceHeight: height, sourceFormat: sourceFormat,
            width: width, height: height, format: format.ffmpegFormat,
            sourceColorspace: colorspace, sourceFullRange: sourceFullRange,
            colorspace: colorspace, fullRange: true)
        else {
            let name = av_get_pix_fmt_name(sourceFormat).map { String(cString: $0) } ?? "unknown"
            throw .invalidArgument("cannot convert pixel format \(name) to \(format.rawValue)")
        }
        let bytesPerRow = Int(width) * format.channels
        let rows = Int(height)
        let pixels = [UInt8](unsafeUninitializedCapacity: bytesPerRow * rows) { buffer, count in
            let base = buffer.baseAddress!
            if bytesPerRow % 16 == 0 && Int(bitPattern: base) % 16 == 0 {
                scale(context, frame, into: base, stride: bytesPerRow, rows: height)
            } else {
                // swscale wants aligned rows: convert into scratch, then pack.
                let stride = (bytesPerRow + 63) & ~63
                if scratch == nil || scratch!.count < stride * rows + 64 {
                    scratch = AlignedBuffer(count: stride * rows + 64)
                }
                let temporary = scratch!.pointer
                scale(context, frame, into: temporary, stride: stride, rows: height)
                for row in 0..<rows {
                    (base + row * bytesPerRow).update(from: temporary + row * stride, count: bytesPerRow)
                }
            }
            count = bytesPerRow * rows
        }
        return Image(width: Int(width), height: rows, format: format, pixels: pixels)
    }

    private func scale(_ context: OpaquePointer, _ frame: UnsafeMutablePointer<AVFrame>,
                       into destination: UnsafeMutablePointer<UInt8>, stride: Int, rows: Int32) {
        var planes: [UnsafeMutablePointer<UInt8>?] = [destination, nil, nil, nil]
        var strides: [Int32] = [Int32(stride), 0, 0, 0]
        withUnsafePointer(to: &frame.pointee.data) { data in
            withUnsafePointer(to: &frame.pointee.linesize) { linesize in
                data.withMemoryRebound(to: UnsafePointer<UInt8>?.self, capacity: 8) { sourcePlanes in
                    linesize.withMemoryRebound(to: Int32.self, capacity: 8) { sourceStrides in
                        _ = sws_scale(context, sourcePlanes, sourceStrides, 0, rows, &planes, &strides)
                    }
                }
            }
        }
    }
}
