import CFFmpeg
import Foundation
import VisionCore

/// Decodes the video stream of a file or URL into `Frame`s, one at a time, in presentation order.
///
/// One owner at a time: it may be handed to the thread that runs the decoding stage (hence
/// `Sendable`), but must not be used from two threads at once. Separate readers share no state,
/// so many can run on different threads at once.
public final class VideoReader: @unchecked Sendable {
    public let info: VideoInfo
    /// Packets the decoder rejected as corrupt; they are skipped, not fatal.
    public private(set) var corruptPacketCount = 0
    /// Frames returned so far.
    public private(set) var framesRead = 0
    /// Options given to the demuxer or protocol that none of them took (probably misspelt).
    public private(set) var unusedOptions: [String] = []

    private let demuxer: DemuxerHandle
    private let decoder: CodecHandle
    private let streamIndex: Int32
    private let packet = PacketHandle()
    private let decoded = FrameHandle()
    private let converter: FrameConverter
    private let timeBase: Rational
    private var state = State.reading
    private var previous: (ticks: Int64, duration: Int64)? = nil
    private var readError: MediaError? = nil
    /// Video packets the demuxer gave, to tell a complete file from one cut short.
    private var packetsRead: Int64 = 0
    /// After a seek: frames before this presentation time (in ticks) are decoded but not returned.
    private var firstTicksWanted: Int64? = nil
    private var hasSeeked = false

    private enum State { case reading, draining, finished }

    /// Opens `url` (a path or anything FFmpeg accepts) and prepares its best video stream for decoding.
    /// - Parameter threads: decoder threads; 0 lets FFmpeg choose from the core count.
    public convenience init(url: String, threads: Int = 0) throws(MediaError) {
        try self.init(url: url, threads: threads, probeStreams: true)
    }

    /// Opens a live source or anything that needs a named input format or options: a camera
    /// (`/dev/video0`, format "v4l2"), an RTSP/RTMP/HTTP/UDP/SRT stream, ...
    /// - Parameters:
    ///   - input: the demuxer to use (nil: FFmpeg probes) and demuxer/protocol options, as `ffmpeg -f F -key value -i URL`.
    ///   - lowDelay: decode each frame as soon as its packet arrives (slice threads only, no frame reordering
    ///     delay): for live sources, where latency matters more than decoding throughput.
    ///   - interrupt: polled by FFmpeg while it waits on the network or device; true aborts the wait
    ///     (the open or read then fails), so a stop request is not stuck behind a stalled stream.
    public convenience init(url: String, input: InputOptions, threads: Int = 0, lowDelay: Bool = false,
                            interrupt: (@Sendable () -> Bool)? = nil) throws(MediaError) {
        try self.init(url: url, threads: threads, probeStreams: true, input: input, lowDelay: lowDelay, interrupt: interrupt)
    }

    init(url: String, threads: Int, probeStreams: Bool, input: InputOptions = InputOptions(), lowDelay: Bool = false,
         interrupt: (@Sendable () -> Bool)? = nil) throws(MediaError) {
        let isDevice = InputKind(url: url) == .device || input.format == "v4l2" || input.format == "video4linux2"
        let isLocal = !url.contains("://") && !url.hasPrefix("pipe:")
        if isDevice {
            try VideoReader.checkDevice(url)
        } else if isLocal {
            try VideoReader.checkReadable(url)
        } else {
            NetworkSetup.once()
        }
        var format: UnsafePointer<AVInputFormat>? = nil
        if let name = input.format {
            DeviceSetup.once()
            format = av_find_input_format(name)
            guard format != nil else {
                throw .invalidArgument("FFmpeg has no input format '\(name)' (`ffmpeg -formats` lists them)")
            }
        }

        let demuxer: DemuxerHandle
        do {
            if format == nil && input.options.isEmpty && interrupt == nil {
                demuxer = try DemuxerHandle(url: url)
            } else {
                demuxer = try DemuxerHandle(url: url, format: format, options: input.options,
                                            interrupt: interrupt.map { InterruptCheck($0) })
            }
        } catch {
            if isDevice { throw VideoReader.classifyDeviceFailure(url: url, code: error.code) }
            throw VideoReader.classifyOpenFailure(url: url, code: error.code, isLocal: isLocal)
        }
        unusedOptions = demuxer.unusedOptions.filter { !InputOptions.derivedKeys.contains($0) }
        let context = demuxer.pointer
        let containerFormat = String(cString: context.pointee.iformat.pointee.name)
        let isStillImage = containerFormat == "image2" || containerFormat.hasSuffix("_pipe")

        // Still images carry their codec in the container; skipping the probe halves the cost of decodeImage.
        if probeStreams || !VideoReader.firstVideoCodecKnown(context) {
            let code = avformat_find_stream_info(context, nil)
            if code < 0 { throw .truncated(path: url, reason: errorString(code)) }
        }

        let index = av_find_best_stream(context, AVMEDIA_TYPE_VIDEO, -1, -1, nil, 0)
        guard index >= 0,
              (demuxer.stream(index).pointee.disposition & AV_DISPOSITION_ATTACHED_PIC) == 0
        else { throw .noVideoStream(path: url) }
        let stream = demuxer.stream(index)
        let parameters = stream.pointee.codecpar!
        guard let codec = avcodec_find_decoder(parameters.pointee.codec_id) else {
            throw .unsupportedCodec(path: url, codec: String(cString: avcodec_get_name(parameters.pointee.codec_id)))
        }
        let decoder = try CodecHandle(codec: codec)
        try checked(avcodec_parameters_to_context(decoder.pointer, parameters), "avcodec_parameters_to_context")
        decoder.pointer.pointee.pkt_timebase = stream.pointee.time_base
        decoder.pointer.pointee.thread_count = Int32(max(0, threads))
        decoder.pointer.pointee.thread_type = lowDelay ? FF_THREAD_SLICE : FF_THREAD_FRAME | FF_THREAD_SLICE
        if lowDelay { decoder.pointer.pointee.flags |= AV_CODEC_FLAG_LOW_DELAY }
        try checked(avcodec_open2(decoder.pointer, codec, nil), "opening the \(String(cString: codec.pointee.name)) decoder")

        // Other streams are read but not decoded: their timestamps show where the data really ends.
        for i in 0..<Int32(context.pointee.nb_streams) where i != index {
            let type = demuxer.stream(i).pointee.codecpar.pointee.codec_type
            if type != AVMEDIA_TYPE_AUDIO { demuxer.stream(i).pointee.discard = AVDISCARD_ALL }
        }

        self.demuxer = demuxer
        self.decoder = decoder
        self.streamIndex = index
        self.timeBase = Rational(Int(stream.pointee.time_base.num), Int(stream.pointee.time_base.den))
        // A photo is converted once, bit for bit as libjpeg and Pillow do (the detectors' reference fixtures
        // are Pillow's pixels); video frames take swscale's SIMD path, four times faster, at most one level off.
        self.converter = FrameConverter(exactRounding: isStillImage)
        self.info = VideoReader.describe(url: url, context: context, stream: stream, decoder: decoder.pointer,
                                         containerFormat: containerFormat, isStillImage: isStillImage)
    }

    /// Moves to `seconds` after the start of the file (`info.startTime`): decoding restarts at the keyframe
    /// before it and the frames before it are decoded but not returned, so the next frame is the first one
    /// presented at or after `seconds` (as `ffmpeg -ss` before `-i` does). Call before the first `nextFrame`.
    public func seek(to seconds: Double) throws(MediaError) {
        guard seconds.isFinite, seconds >= 0 else { throw .invalidArgument("a start time must be 0 or more seconds") }
        guard info.isSeekable, !info.isStillImage else {
            throw .invalidArgument("\(info.url) cannot be seeked (a still image, a pipe or a live stream)")
        }
        if let duration = info.duration, seconds >= duration {
            throw .invalidArgument(String(format: "the start time %.2f s is past the end of %@ (%.2f s)",
                                          seconds, info.url, duration))
        }
        let target = info.startTime + seconds
        let targetMicroseconds = Int64((target * Double(AV_TIME_BASE)).rounded())
        let code = avformat_seek_file(demuxer.pointer, -1, Int64.min, targetMicroseconds, targetMicroseconds, 0)
        if code < 0 { throw .ffmpeg(operation: "seeking \(info.url) to \(seconds) s", code: code, message: errorString(code)) }
        avcodec_flush_buffers(decoder.pointer)
        state = .reading
        previous = nil
        readError = nil
        // A hair early, so a frame exactly at the start is not lost to rounding.
        hasSeeked = true
        firstTicksWanted = Int64(((target - 1e-4) * Double(timeBase.denominator) / Double(timeBase.numerator)).rounded(.down))
    }

    /// The next frame converted to `format`, or nil after the last one.
    ///
    /// Throws `.truncated` when the container breaks off early; the frames before that were
    /// already returned, so a caller can keep what it has.
    public func nextFrame(as format: PixelFormat) throws(MediaError) -> Frame? {
        while true {
            guard try receiveFrame() else {
                if let readError { self.readError = nil; throw readError }
                return nil
            }
            guard let firstTicksWanted else { break }
            let ticks = decoded.pointer.pointee.best_effort_timestamp
            if ticks == AVCode.noPTS || ticks >= firstTicksWanted { self.firstTicksWanted = nil; break }
            av_frame_unref(decoded.pointer)  // before the seek target
        }
        defer { av_frame_unref(decoded.pointer) }
        let image = try converter.image(from: decoded.pointer, as: format)
        let frame = decoded.pointer.pointee
        var ticks = frame.best_effort_timestamp
        let duration = max(0, frame.pkt_duration)
        if ticks == AVCode.noPTS {
            // No timestamp at all (raw streams): continue from the previous frame.
            ticks = previous.map { $0.ticks + max(1, $0.duration) } ?? 0
        }
        previous = (ticks, duration)
        let result = Frame(image: image, timestamp: Timestamp(ticks: ticks, timeBase: timeBase),
                           duration: duration, index: framesRead)
        framesRead += 1
        return result
    }

    /// Decodes until a frame is ready in `decoded`; false when the stream is drained.
    private func receiveFrame() throws(MediaError) -> Bool {
        var consecutiveErrors = 0
        while state != .finished {
            let received = avcodec_receive_frame(decoder.pointer, decoded.pointer)
            if received >= 0 { return true }
            if received == AVCode.eof { state = .finished; break }
            if received != AVCode.again {
                // A frame-threaded decoder reports a corrupt packet here rather than at send.
                corruptPacketCount += 1
                consecutiveErrors += 1
                if consecutiveErrors > 1000 {
                    throw .truncated(path: info.url, reason: "decoder keeps failing: \(errorString(received))")
                }
                continue
            }
            if state == .draining { state = .finished; break }
            try sendNextPacket()
        }
        return false
    }

    /// Reads packets until one of the video stream went to the decoder, or starts draining at the end.
    private func sendNextPacket() throws(MediaError) {
        while true {
            let read = av_read_frame(demuxer.pointer, packet.pointer)
            if read < 0 {
                let ioError = demuxer.pointer.pointee.pb.map { $0.pointee.error } ?? 0
                if read != AVCode.eof || ioError < 0 {
                    readError = .truncated(path: info.url, reason: errorString(read != AVCode.eof ? read : ioError))
                } else {
                    readError = endCheck()
                }
                avcodec_send_packet(decoder.pointer, nil)
                state = .draining
                return
            }
            defer { av_packet_unref(packet.pointer) }
            notePacketEnd(packet.pointer)
            guard packet.pointer.pointee.stream_index == streamIndex else { continue }
            packetsRead += 1
            if (packet.pointer.pointee.flags & AV_PKT_FLAG_CORRUPT) != 0 { corruptPacketCount += 1 }
            let sent = avcodec_send_packet(decoder.pointer, packet.pointer)
            if sent < 0 && sent != AVCode.again {
                corruptPacketCount += 1
                continue
            }
            return
        }
    }

    /// The latest end time, in seconds, of any packet read so far.
    private var dataEnd: Double? = nil

    private func notePacketEnd(_ packet: UnsafeMutablePointer<AVPacket>) {
        let p = packet.pointee
        let ticks = p.pts != AVCode.noPTS ? p.pts : p.dts
        guard ticks != AVCode.noPTS else { return }
        let timeBase = demuxer.stream(p.stream_index).pointee.time_base
        let end = Double(ticks + max(0, p.duration)) * Double(timeBase.num) / Double(timeBase.den)
        dataEnd = max(dataEnd ?? end, end)
    }

    /// At a clean end of file: was that the end the container promised? The sample index
    /// (mp4, mov) states the packet count; otherwise the data must reach the stated duration.
    private func endCheck() -> MediaError? {
        if info.isStillImage { return nil }
        let stream = demuxer.stream(streamIndex).pointee
        // After a seek the packet count no longer adds up; the data-end check below still holds.
        if stream.nb_frames > 0 && !hasSeeked {
            if packetsRead < stream.nb_frames {
                return .truncated(path: info.url, reason: "the data ends after \(packetsRead) of \(stream.nb_frames) video packets")
            }
            return nil
        }
        let context = demuxer.pointer.pointee
        // Durations guessed from the bit rate (raw streams, some MPEG files) promise nothing.
        guard context.duration > 0, context.duration_estimation_method != AVFMT_DURATION_FROM_BITRATE,
              let dataEnd else { return nil }
        let start = context.start_time == AVCode.noPTS ? 0 : Double(context.start_time) / Double(AV_TIME_BASE)
        let statedEnd = start + Double(context.duration) / Double(AV_TIME_BASE)
        if statedEnd - dataEnd > 0.5 {
            return .truncated(path: info.url, reason: String(
                format: "the data stops at %.2f s of a stated %.2f s", dataEnd - start, statedEnd - start))
        }
        return nil
    }

    // MARK: Opening

    private static func checkReadable(_ path: String) throws(MediaError) {
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) else {
            throw .fileNotFound(path: path)
        }
        if isDirectory.boolValue { throw .unreadable(path: path, reason: "it is a directory") }
        if !FileManager.default.isReadableFile(atPath: path) { throw .unreadable(path: path, reason: "permission denied") }
    }

    /// A capture device: one clear reason when it is missing or not ours to read.
    private static func checkDevice(_ path: String) throws(MediaError) {
        guard FileManager.default.fileExists(atPath: path) else {
            throw .unreadable(path: path, reason: "no such video device (\(availableDevices()))")
        }
        if access(path, R_OK) != 0 {
            throw .unreadable(path: path, reason: "permission denied (add the user to the 'video' group)")
        }
    }

    private static func availableDevices() -> String {
        let names = ((try? FileManager.default.contentsOfDirectory(atPath: "/dev")) ?? [])
            .filter { $0.hasPrefix("video") }.sorted().map { "/dev/" + $0 }
        return names.isEmpty ? "this machine has no /dev/video* devices" : "found: " + names.joined(separator: ", ")
    }

    private static func classifyDeviceFailure(url: String, code: Int32) -> MediaError {
        if code == AVCode.posix(ENOENT) || code == AVCode.posix(ENODEV) || code == AVCode.posix(ENXIO) {
            return .unreadable(path: url, reason: "no such video device (\(availableDevices()))")
        }
        if code == AVCode.posix(EACCES) || code == AVCode.posix(EPERM) {
            return .unreadable(path: url, reason: "permission denied (add the user to the 'video' group)")
        }
        if code == AVCode.posix(EBUSY) { return .unreadable(path: url, reason: "the device is busy (another program is using it)") }
        return .unreadable(path: url, reason: errorString(code))
    }

    private static func classifyOpenFailure(url: String, code: Int32, isLocal: Bool) -> MediaError {
        if code == AVCode.posix(ENOENT) { return .fileNotFound(path: url) }
        if code == AVCode.posix(EACCES) { return .unreadable(path: url, reason: errorString(code)) }
        if code == AVCode.invalidData, isLocal, let format = probeFormatName(url) {
            // FFmpeg knows the format but cannot parse the header: typically an mp4 cut before its index.
            return .truncated(path: url, reason: "\(format) header is incomplete or damaged")
        }
        if code == AVCode.invalidData { return .notMedia(path: url, reason: errorString(code)) }
        return .unreadable(path: url, reason: errorString(code))
    }

    /// The name of the format FFmpeg recognises from the first bytes of the file, if any.
    private static func probeFormatName(_ path: String) -> String? {
        var io: UnsafeMutablePointer<AVIOContext>? = nil
        guard avio_open(&io, path, AVIO_FLAG_READ) >= 0 else { return nil }
        defer { avio_closep(&io) }
        var format: UnsafePointer<AVInputFormat>? = nil
        let score = av_probe_input_buffer2(io, &format, path, nil, 0, 0)
        guard score > AVPROBE_SCORE_EXTENSION / 2, let format else { return nil }
        return String(cString: format.pointee.name)
    }

    private static func firstVideoCodecKnown(_ context: UnsafeMutablePointer<AVFormatContext>) -> Bool {
        guard context.pointee.nb_streams == 1, let parameters = context.pointee.streams[0]?.pointee.codecpar
        else { return false }
        return parameters.pointee.codec_type == AVMEDIA_TYPE_VIDEO && parameters.pointee.codec_id != AV_CODEC_ID_NONE
    }

    private static func describe(url: String, context: UnsafeMutablePointer<AVFormatContext>,
                                 stream: UnsafeMutablePointer<AVStream>, decoder: UnsafeMutablePointer<AVCodecContext>,
                                 containerFormat: String, isStillImage: Bool) -> VideoInfo {
        let parameters = stream.pointee.codecpar.pointee
        let pixelFormat = AVPixelFormat(rawValue: parameters.format)
        let descriptor = av_pix_fmt_desc_get(pixelFormat)
        let pixelFormatName = av_get_pix_fmt_name(pixelFormat).map { String(cString: $0) } ?? "unknown"

        func rational(_ value: AVRational) -> Rational? {
            value.num > 0 && value.den > 0 ? Rational(Int(value.num), Int(value.den)) : nil
        }
        let frameRate = rational(stream.pointee.avg_frame_rate) ?? rational(stream.pointee.r_frame_rate)
        let timeBase = stream.pointee.time_base
        let startTime = context.pointee.start_time != AVCode.noPTS
            ? Double(context.pointee.start_time) / Double(AV_TIME_BASE) : 0
        let duration = context.pointee.duration > 0 ? Double(context.pointee.duration) / Double(AV_TIME_BASE) : nil
        let videoDuration = stream.pointee.duration > 0
            ? Double(stream.pointee.duration) * Double(timeBase.num) / Double(timeBase.den) : nil

        var frameCount: Int? = stream.pointee.nb_frames > 0 ? Int(stream.pointee.nb_frames) : nil
        if frameCount == nil, let seconds = videoDuration ?? duration, let rate = frameRate?.value {
            frameCount = Int((seconds * rate).rounded())
        }
        if isStillImage { frameCount = 1 }

        var rotation = 0
        if let matrix = av_stream_get_side_data(stream, AV_PKT_DATA_DISPLAYMATRIX, nil) {
            let degrees = matrix.withMemoryRebound(to: Int32.self, capacity: 9) { av_display_rotation_get($0) }
            if degrees.isFinite {
                // The matrix turns counter-clockwise; players turn the picture the other way.
                let clockwise = Int((-degrees).rounded())
                rotation = ((clockwise % 360) + 360) % 360
            }
        }
        var hasAudio = false
        for i in 0..<Int(context.pointee.nb_streams)
        where context.pointee.streams[i]!.pointee.codecpar.pointee.codec_type == AVMEDIA_TYPE_AUDIO {
            hasAudio = true
        }
        return VideoInfo(
            url: url, containerFormat: containerFormat,
            codec: String(cString: avcodec_get_name(parameters.codec_id)),
            width: Int(parameters.width), height: Int(parameters.height),
            pixelFormat: pixelFormatName, bitDepth: Int(descriptor?.pointee.comp.0.depth ?? 8),
            timeBase: Rational(Int(timeBase.num), Int(timeBase.den)), frameRate: frameRate,
            startTime: startTime, duration: duration, videoDuration: videoDuration, estimatedFrameCount: frameCount,
            rotation: rotation, hasAudio: hasAudio,
            isSeekable: context.pointee.pb.map { ($0.pointee.seekable & AVIO_SEEKABLE_NORMAL) != 0 } ?? false,
            isStillImage: isStillImage)
    }
}

/// Throws `.ffmpeg` for a negative FFmpeg return code.
func checked(_ code: Int32, _ operation: @autoclosure () -> String) throws(MediaError) {
    if code < 0 { throw .ffmpeg(operation: operation(), code: code, message: errorString(code)) }
}

/// `avformat_network_init` once per process, before the first network URL.
enum NetworkSetup {
    private static let done: Bool = { avformat_network_init(); return true }()
    static func once() { _ = done }
}
