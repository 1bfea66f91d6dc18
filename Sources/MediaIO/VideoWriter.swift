import CFFmpeg
import Foundation
import VisionCore

/// Encodes `Frame`s to H.264 (yuv420p) in an mp4, mkv or mov file, keeping their timestamps,
/// and copies the audio of a source file alongside.
///
/// Feed frames in presentation order from one thread, then call `finish()`; without it the file
/// has no trailer (an mp4 would not play). Interrupted runs call `finish(audioThroughEnd: false)`.
/// Like `VideoReader`, it may be handed to the thread that owns it, but is not for concurrent use.
public final class VideoWriter: @unchecked Sendable {
    public let path: String
    /// The encoder in use, for example "libx264" (or a fallback such as "mpeg4").
    public let encoderName: String
    /// What happens to the source's audio.
    public var audio: AudioHandling { audioTrack?.handling ?? .none }
    /// Frames given to `write` so far.
    public private(set) var framesWritten = 0
    /// Frames whose timestamp did not increase and had to be nudged forward by one tick.
    public private(set) var adjustedTimestamps = 0
    /// Frames of another size than the writer's, scaled to fit (a source that changed resolution).
    public private(set) var rescaledFrames = 0

    private let width: Int
    private let height: Int
    private let muxer: MuxerHandle
    private let encoder: CodecHandle
    private let stream: UnsafeMutablePointer<AVStream>
    private let audioTrack: AudioTrack?
    private let picture = FrameHandle()
    private let packet = PacketHandle()
    private let scaler = ScalerHandle()
    private var lastPTS: Int64? = nil
    private var lastEndSeconds: Double = 0
    /// Durations of frames still inside the encoder, by pts (x264 does not set packet durations).
    private var pendingDurations: [Int64: Int64] = [:]
    private var finished = false
    private var startTicks: Int64 = 0

    /// Creates `path` (container from its extension) for frames of `width` x `height` whose
    /// timestamps count ticks of `timeBase`.
    ///
    /// - Parameters:
    ///   - frameRate: the nominal rate, a hint for rate control and players; timestamps decide timing.
    ///   - rotation: clockwise degrees players should turn the picture (copied into the display matrix).
    ///   - audioSource: a file or URL whose best audio stream is copied in (re-encoded to AAC when
    ///     the container cannot hold its codec); nil for no audio.
    ///   - startTime: seconds subtracted from every video and audio timestamp, so that a source
    ///     starting late (MPEG-TS) gives a file starting at 0. Sync between the streams is kept.
    ///   - trimsAudioBeforeStart: the source is being read from `startTime` on (a seek, `--start`): its audio
    ///     is seeked there too and packets before it are left out.
    ///   - live: `LiveOutput` settings for a file or URL written while a live source plays (muxer by name,
    ///     fragmented MP4, short keyframe interval); nil for an ordinary file.
    public init(path: String, width: Int, height: Int, timeBase: Rational, frameRate: Rational? = nil,
                rotation: Int = 0, settings: EncoderSettings = EncoderSettings(),
                audioSource: String? = nil, startTime: Double = 0, trimsAudioBeforeStart: Bool = false,
                live: LiveOutput? = nil) throws(MediaError) {
        guard width > 0, height > 0 else { throw .invalidArgument("frame size \(width)x\(height) is empty") }
        guard timeBase.numerator > 0, timeBase.denominator > 0,
              timeBase.numerator <= Int(Int32.max), timeBase.denominator <= Int(Int32.max)
        else { throw .invalidArgument("time base \(timeBase) is not a positive fraction") }
        guard (0...51).contains(settings.crf) else { throw .invalidArgument("crf \(settings.crf) is outside 0...51") }
        if path.contains("://") { NetworkSetup.once() } else { try VideoWriter.checkWritable(path) }

        self.path = path
        self.width = width
        self.height = height
        let muxer = try MuxerHandle(path: path, format: live?.format)
        self.muxer = muxer
        let format = muxer.pointer.pointee.oformat!

        // Encoder: the asked one, or the first of the default chain that this FFmpeg has and the container takes.
        let candidates = settings.encoder.map { [$0] } ?? EncoderSettings.defaultEncoders
        var opened: (CodecHandle, String)? = nil
        var lastFailure: MediaError? = nil
        for name in candidates {
            guard let codec = avcodec_find_encoder_by_name(name),
                  avformat_query_codec(format, codec.pointee.id, FF_COMPLIANCE_NORMAL) != 0 else { continue }
            do {
                let context = try VideoWriter.openEncoder(codec, width: width, height: height, timeBase: timeBase,
                                                          frameRate: frameRate, settings: settings, muxer: muxer,
                                                          live: live)
                opened = (context, name)
                break
            } catch {
                lastFailure = error
            }
        }
        guard let (encoder, encoderName) = opened else {
            if settings.encoder != nil, let lastFailure { throw lastFailure }
            throw .noEncoder(tried: candidates)
        }
        self.encoder = encoder
        self.encoderName = encoderName

        guard let stream = avformat_new_stream(muxer.pointer, nil) else {
            throw .ffmpeg(operation: "avformat_new_stream", code: AVCode.posix(ENOMEM), message: "out of memory")
        }
        self.stream = stream
        try checked(avcodec_parameters_from_context(stream.pointee.codecpar, encoder.pointer), "video stream parameters")
        stream.pointee.time_base = encoder.pointer.pointee.time_base
        if let frameRate, frameRate.numerator > 0, frameRate.denominator > 0 {
            stream.pointee.avg_frame_rate = AVRational(num: Int32(frameRate.numerator), den: Int32(frameRate.denominator))
        }
        let turn = ((rotation % 360) + 360) % 360
        if turn != 0, let matrix = av_stream_new_side_data(stream, AV_PKT_DATA_DISPLAYMATRIX, 9 * 4) {
            // av_display_rotation_set turns clockwise; VideoInfo.rotation is clockwise too.
            matrix.withMemoryRebound(to: Int32.self, capacity: 9) { av_display_rotation_set($0, Double(turn)) }
        }

        startTicks = Int64((startTime * Double(timeBase.denominator) / Double(timeBase.numerator)).rounded())
        audioTrack = try audioSource.flatMap { source throws(MediaError) in
            try AudioTrack(source: source, muxer: muxer, startTime: startTime, trimsBeforeStart: trimsAudioBeforeStart)
        }

        try muxer.openFile(path)
        let formatName = String(cString: format.pointee.name)
        var options = FFmpegDictionary.make(live?.muxerOptions(format: formatName) ?? [:])
        if live == nil, formatName == "mp4" || formatName == "mov" { av_dict_set(&options, "movflags", "+faststart", 0) }
        let code = avformat_write_header(muxer.pointer, &options)
        av_dict_free(&options)
        if code < 0 { throw .cannotWrite(path: path, reason: "writing the \(formatName) header: \(errorString(code))") }

        let picture = self.picture.pointer
        picture.pointee.format = AV_PIX_FMT_YUV420P.rawValue
        picture.pointee.width = encoder.pointer.pointee.width
        picture.pointee.height = encoder.pointer.pointee.height
        try checked(av_frame_get_buffer(picture, 0), "allocating the encoder picture")
    }

    /// A writer for frames from `info`'s video: same size, time base, frame rate and rotation,
    /// with `info.url`'s audio when `copyAudio` is set, shifted so the output starts at 0.
    /// `from` is where a reader was seeked to (seconds after the file's start): the output starts there.
    /// The audio comes from a second demuxer on `info.url`, so a source that cannot be opened
    /// twice (`isSeekable` false: a pipe, a live stream) gives no audio.
    public convenience init(path: String, matching info: VideoInfo, settings: EncoderSettings = EncoderSettings(),
                            copyAudio: Bool = true, from start: Double = 0) throws(MediaError) {
        try self.init(path: path, width: info.width, height: info.height, timeBase: info.timeBase,
                      frameRate: info.frameRate, rotation: info.rotation, settings: settings,
                      audioSource: copyAudio && info.hasAudio && info.isSeekable ? info.url : nil,
                      startTime: info.startTime + start, trimsAudioBeforeStart: start > 0)
    }

    /// Encodes one frame. Frames must come in presentation order. A frame of another size (a camera or stream
    /// that changed resolution across a reconnect) is scaled to the writer's size and counted in `rescaledFrames`.
    public func write(_ frame: Frame) throws(MediaError) {
        guard !finished else { throw .invalidArgument("write after finish") }
        let image = frame.image
        if image.width != width || image.height != height { rescaledFrames += 1 }
        try convert(image)

        let timeBase = encoder.pointer.pointee.time_base
        let source = AVRational(num: Int32(frame.timestamp.timeBase.numerator), den: Int32(frame.timestamp.timeBase.denominator))
        var pts = av_rescale_q(frame.timestamp.ticks, source, timeBase) - startTicks
        if let lastPTS, pts <= lastPTS {
            pts = lastPTS + 1
            adjustedTimestamps += 1
        }
        var duration = frame.duration > 0 ? max(1, av_rescale_q(frame.duration, source, timeBase)) : 0
        // A frame without a duration lasts until the next one; the last one as long as the one before.
        if let lastPTS, let previous = pendingDurations[lastPTS], previous == 0 {
            pendingDurations[lastPTS] = pts - lastPTS
        }
        if duration == 0, let lastPTS { duration = pts - lastPTS }
        pendingDurations[pts] = duration
        lastPTS = pts
        picture.pointer.pointee.pts = pts
        lastEndSeconds = Double(pts + startTicks + duration) * Double(timeBase.num) / Double(timeBase.den)

        try encode(picture.pointer)
        framesWritten += 1
        try audioTrack?.write(until: frame.seconds, into: muxer)
    }

    /// Flushes the encoder, writes the rest of the audio and the trailer, and closes the file.
    /// - Parameter audioThroughEnd: copy the source's audio to its end (a full transcode), or only
    ///   up to the end of the last frame written (an interrupted one).
    public func finish(audioThroughEnd: Bool = true) throws(MediaError) {
        guard !finished else { return }
        finished = true
        try encode(nil)
        try audioTrack?.write(until: audioThroughEnd ? nil : lastEndSeconds, into: muxer)
        try audioTrack?.finish(into: muxer)
        let code = av_write_trailer(muxer.pointer)
        if code < 0 { throw .cannotWrite(path: path, reason: "writing the trailer: \(errorString(code))") }
        try muxer.closeFile()
    }

    // MARK: Internals

    private static func checkWritable(_ path: String) throws(MediaError) {
        let folder = (path as NSString).deletingLastPathComponent
        let directory = folder.isEmpty ? "." : folder
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: directory, isDirectory: &isDirectory), isDirectory.boolValue else {
            throw .cannotWrite(path: path, reason: "folder \(directory) does not exist")
        }
        if FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory), isDirectory.boolValue {
            throw .cannotWrite(path: path, reason: "it is a directory")
        }
    }

    private static func openEncoder(_ codec: UnsafePointer<AVCodec>, width: Int, height: Int, timeBase: Rational,
                                    frameRate: Rational?, settings: EncoderSettings,
                                    muxer: MuxerHandle, live: LiveOutput?) throws(MediaError) -> CodecHandle {
        let handle = try CodecHandle(codec: codec)
        let context = handle.pointer
        // yuv420p needs even sizes: odd ones get one repeated column or row.
        context.pointee.width = Int32((width + 1) & ~1)
        context.pointee.height = Int32((height + 1) & ~1)
        context.pointee.pix_fmt = AV_PIX_FMT_YUV420P
        context.pointee.time_base = AVRational(num: Int32(timeBase.numerator), den: Int32(timeBase.denominator))
        let name = String(cString: codec.pointee.name)
        if name == "mpeg4" && timeBase.denominator > 65535 {
            // MPEG-4 part 2 allows 16-bit time base denominators only; frames are rescaled on the way in.
            context.pointee.time_base = AVRational(num: 1, den: 1000)
        }
        if let frameRate, frameRate.numerator > 0, frameRate.denominator > 0 {
            context.pointee.framerate = AVRational(num: Int32(frameRate.numerator), den: Int32(frameRate.denominator))
        }
        context.pointee.sample_aspect_ratio = AVRational(num: 1, den: 1)
        context.pointee.color_range = AVCOL_RANGE_MPEG
        context.pointee.colorspace = AVCOL_SPC_BT709
        context.pointee.color_primaries = AVCOL_PRI_BT709
        context.pointee.color_trc = AVCOL_TRC_BT709
        context.pointee.thread_count = Int32(max(0, settings.threads))
        if (muxer.pointer.pointee.oformat.pointee.flags & AVFMT_GLOBALHEADER) != 0 {
            context.pointee.flags |= AV_CODEC_FLAG_GLOBAL_HEADER
        }
        var options: OpaquePointer? = nil
        defer { av_dict_free(&options) }
        if let live {
            // A keyframe every `keyframeSeconds`: fragments, segments and joining viewers start there.
            let rate = (frameRate?.value).flatMap { $0 > 0 && $0 <= 240 ? $0 : nil } ?? 30
            context.pointee.gop_size = Int32(max(1, (rate * live.keyframeSeconds).rounded()))
            // No B-frames: packets leave in presentation order, so a fragmented MP4 (which has no edit list to
            // hide the reordering delay) still starts at 0, and nothing waits for later frames.
            context.pointee.max_b_frames = 0
        }
        switch name {
        case "libx264":
            av_dict_set(&options, "crf", String(settings.crf), 0)
            av_dict_set(&options, "preset", settings.preset, 0)
            if live?.zeroLatency == true {
                av_dict_set(&options, "tune", "zerolatency", 0)
            } else {
                av_dict_set(&options, "x264-params", Self.x264Parameters(width: width, height: height,
                                                                          preset: settings.preset,
                                                                          isLive: live != nil), 0)
            }
        case "libopenh264":
            // No CRF: a bit rate that gives x264-like quality at crf 23 for ordinary footage.
            let pixelsPerSecond = Double(width * height) * (frameRate?.value ?? 25)
            context.pointee.bit_rate = Int64(pixelsPerSecond * 0.1 * pow(2, Double(23 - settings.crf) / 6))
        default:
            // Quantiser scale 2...31 for MPEG-4 part 2 and similar.
            let q = 2 + (settings.crf * 29 + 25) / 51
            context.pointee.flags |= AV_CODEC_FLAG_QSCALE
            context.pointee.global_quality = Int32(q) * cffmpeg_qp2lambda()
        }
        let code = avcodec_open2(context, codec, &options)
        if code < 0 {
            throw .ffmpeg(operation: "opening the \(name) encoder (\(width)x\(height), preset \(settings.preset))",
                          code: code, message: errorString(code))
        }
        return handle
    }

    /// x264's frames in flight, which set its memory: at 1080p each costs 6 MB (padded planes and lookahead
    /// copies), so veryfast's 14 take 160 MB of a run's 400 MB budget. Always: no extra frames buffered for the
    /// threaded lookahead (the same stream, 45 MB less at 1080p). Above 720p, threads share each frame by slices
    /// instead of each encoding its own (20 MB less at 1080p and faster there; at 360p slices are slower), and
    /// the default preset and superfast use one B-frame instead of 3 and veryfast a lookahead of 5 frames instead
    /// of 10: 61 MB less at 1080p for about 2.5% more bits at the same PSNR (WolfgangLanger_Pexels.mp4 at 1080p,
    /// crf 20-26; one B-frame alone costs nothing measurable). Slower presets keep theirs: chosen for quality.
    /// Live outputs keep frame threads and their lookahead at every size (and have no B-frames): there the
    /// latency from a frame's arrival to its row matters more (1080p30 RTSP with the video written, 60 s runs:
    /// p95 50-74 ms with frame threads, 80-99 ms with the bounds above).
    static func x264Parameters(width: Int, height: Int, preset: String, isLive: Bool) -> String {
        guard width * height > 1280 * 720, !isLive else { return "sync-lookahead=0" }
        switch preset {
        case "veryfast": return "sliced-threads=1:bframes=1:rc-lookahead=5"
        case "superfast": return "sliced-threads=1:bframes=1"
        default: return "sliced-threads=1"
        }
    }

    /// Image -> yuv420p in `picture`, padding odd sizes by repeating the last column and row.
    private func convert(_ image: Image) throws(MediaError) {
        let picture = picture.pointer
        try checked(av_frame_make_writable(picture), "making the encoder picture writable")
        let paddedWidth = Int(picture.pointee.width), paddedHeight = Int(picture.pointee.height)
        let channels = image.format.channels
        var pixels = image.pixels
        var (sourceWidth, sourceHeight) = (image.width, image.height)
        if sourceWidth == width && sourceHeight == height && (paddedWidth != width || paddedHeight != height) {
            pixels = VideoWriter.pad(image, toWidth: paddedWidth, height: paddedHeight)
            (sourceWidth, sourceHeight) = (paddedWidth, paddedHeight)
        }
        guard let context = scaler.context(
            sourceWidth: Int32(sourceWidth), sourceHeight: Int32(sourceHeight), sourceFormat: image.format.ffmpegFormat,
            width: Int32(paddedWidth), height: Int32(paddedHeight), format: AV_PIX_FMT_YUV420P,
            sourceColorspace: SWS_CS_ITU709, sourceFullRange: true, colorspace: SWS_CS_ITU709, fullRange: false)
        else { throw .invalidArgument("cannot convert \(image.format.rawValue) to yuv420p") }
        pixels.withUnsafeBufferPointer { buffer in
            var sourcePlanes: [UnsafePointer<UInt8>?] = [buffer.baseAddress, nil, nil, nil]
            var sourceStrides: [Int32] = [Int32(sourceWidth * channels), 0, 0, 0]
            withUnsafePointer(to: &picture.pointee.data) { data in
                withUnsafePointer(to: &picture.pointee.linesize) { linesize in
                    data.withMemoryRebound(to: UnsafeMutablePointer<UInt8>?.self, capacity: 8) { planes in
                        linesize.withMemoryRebound(to: Int32.self, capacity: 8) { strides in
                            _ = sws_scale(context, &sourcePlanes, &sourceStrides, 0, Int32(sourceHeight), planes, strides)
                        }
                    }
                }
            }
        }
    }

    private static func pad(_ image: Image, toWidth paddedWidth: Int, height paddedHeight: Int) -> [UInt8] {
        let channels = image.format.channels
        let rowBytes = image.bytesPerRow, paddedRowBytes = paddedWidth * channels
        var padded = [UInt8](repeating: 0, count: paddedRowBytes * paddedHeight)
        image.pixels.withUnsafeBufferPointer { source in
            padded.withUnsafeMutableBufferPointer { target in
                for y in 0..<paddedHeight {
                    let sourceRow = min(y, image.height - 1) * rowBytes
                    let targetRow = y * paddedRowBytes
                    for x in 0..<rowBytes { target[targetRow + x] = source[sourceRow + x] }
                    for x in rowBytes..<paddedRowBytes { target[targetRow + x] = source[sourceRow + rowBytes - channels + (x - rowBytes) % channels] }
                }
            }
        }
        return padded
    }

    /// Sends a picture (nil: end of stream) and writes every packet the encoder has ready.
    private func encode(_ frame: UnsafeMutablePointer<AVFrame>?) throws(MediaError) {
        let sent = avcodec_send_frame(encoder.pointer, frame)
        if sent < 0 && sent != AVCode.eof {
            throw .ffmpeg(operation: "encoding frame \(framesWritten)", code: sent, message: errorString(sent))
        }
        while true {
            let received = avcodec_receive_packet(encoder.pointer, packet.pointer)
            if received == AVCode.again || received == AVCode.eof { return }
            if received < 0 {
                throw .ffmpeg(operation: "encoding frame \(framesWritten)", code: received, message: errorString(received))
            }
            let p = packet.pointer
            if let duration = pendingDurations.removeValue(forKey: p.pointee.pts), p.pointee.duration == 0 {
                p.pointee.duration = duration
            }
            p.pointee.stream_index = stream.pointee.index
            av_packet_rescale_ts(p, encoder.pointer.pointee.time_base, stream.pointee.time_base)
            let code = av_interleaved_write_frame(muxer.pointer, p)
            if code < 0 { throw .cannotWrite(path: path, reason: errorString(code)) }
        }
    }
}
