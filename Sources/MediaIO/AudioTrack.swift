import CFFmpeg

/// The audio half of a `VideoWriter`: reads the source's audio stream with its own demuxer and
/// writes it into the muxer, copied or re-encoded to AAC, never running ahead of a time limit.
final class AudioTrack {
    let handling: AudioHandling
    private let demuxer: DemuxerHandle
    private let inputIndex: Int32
    private let inputTimeBase: AVRational
    private let outputStream: UnsafeMutablePointer<AVStream>
    private let packet = PacketHandle()
    private var holdingPacket = false
    private var sourceFinished = false
    private let transcoder: AACTranscoder?
    /// The writer's start time in ticks of the input stream, subtracted from every packet.
    private let startTicks: Int64

    /// Packets that start before `startTicks` are left out (the source was read from a seek point).
    private let trimsBeforeStart: Bool

    /// Adds an audio stream to `muxer` for the best audio stream of `source`; nil when it has none.
    init?(source: String, muxer: MuxerHandle, startTime: Double, trimsBeforeStart: Bool = false) throws(MediaError) {
        let demuxer: DemuxerHandle
        do { demuxer = try DemuxerHandle(url: source) } catch { return nil }
        guard avformat_find_stream_info(demuxer.pointer, nil) >= 0 else { return nil }
        let index = av_find_best_stream(demuxer.pointer, AVMEDIA_TYPE_AUDIO, -1, -1, nil, 0)
        guard index >= 0 else { return nil }
        for i in 0..<Int32(demuxer.pointer.pointee.nb_streams) where i != index {
            demuxer.stream(i).pointee.discard = AVDISCARD_ALL
        }
        let input = demuxer.stream(index)
        let parameters = input.pointee.codecpar!
        let codecName = String(cString: avcodec_get_name(parameters.pointee.codec_id))
        guard let stream = avformat_new_stream(muxer.pointer, nil) else {
            throw .ffmpeg(operation: "avformat_new_stream", code: AVCode.posix(ENOMEM), message: "out of memory")
        }
        self.demuxer = demuxer
        self.inputIndex = index
        self.inputTimeBase = input.pointee.time_base
        self.outputStream = stream
        self.startTicks = Int64((startTime * Double(input.pointee.time_base.den) / Double(input.pointee.time_base.num)).rounded())
        self.trimsBeforeStart = trimsBeforeStart
        if trimsBeforeStart {
            let target = Int64((startTime * Double(AV_TIME_BASE)).rounded())
            let code = avformat_seek_file(demuxer.pointer, -1, Int64.min, target, target, 0)
            if code < 0 { throw .ffmpeg(operation: "seeking the audio to \(startTime) s", code: code, message: errorString(code)) }
        }

        // 1: the container can hold it; 0: it cannot; negative: the muxer does not say (try to copy).
        let fits = avformat_query_codec(muxer.pointer.pointee.oformat, parameters.pointee.codec_id, FF_COMPLIANCE_NORMAL)
        if fits != 0 {
            try checked(avcodec_parameters_copy(stream.pointee.codecpar, parameters), "copying audio parameters")
            stream.pointee.codecpar.pointee.codec_tag = 0
            stream.pointee.time_base = input.pointee.time_base
            transcoder = nil
            handling = .copied(codec: codecName)
        } else {
            transcoder = try AACTranscoder(input: input, output: stream, muxer: muxer)
            handling = .reencoded(from: codecName, to: "aac")
        }
    }

    /// Writes source audio whose time is at most `limit` seconds (all of it when nil).
    func write(until limit: Double?, into muxer: MuxerHandle) throws(MediaError) {
        while !sourceFinished {
            if !holdingPacket {
                let read = av_read_frame(demuxer.pointer, packet.pointer)
                if read < 0 { sourceFinished = true; break }  // end, or a damaged tail: keep what we have
                if packet.pointer.pointee.stream_index != inputIndex { av_packet_unref(packet.pointer); continue }
                holdingPacket = true
            }
            let p = packet.pointer.pointee
            let ticks = p.pts != AVCode.noPTS ? p.pts : p.dts
            if let limit, ticks != AVCode.noPTS,
               Double(ticks) * Double(inputTimeBase.num) / Double(inputTimeBase.den) > limit {
                return
            }
            holdingPacket = false
            if trimsBeforeStart && ticks != AVCode.noPTS && ticks < startTicks {
                av_packet_unref(packet.pointer)
                continue
            }
            if packet.pointer.pointee.pts != AVCode.noPTS { packet.pointer.pointee.pts -= startTicks }
            if packet.pointer.pointee.dts != AVCode.noPTS { packet.pointer.pointee.dts -= startTicks }
            if let transcoder {
                defer { av_packet_unref(packet.pointer) }
                try transcoder.decode(packet.pointer, into: muxer)
            } else {
                packet.pointer.pointee.stream_index = outputStream.pointee.index
                packet.pointer.pointee.pos = -1
                av_packet_rescale_ts(packet.pointer, inputTimeBase, outputStream.pointee.time_base)
                // The muxer takes the packet's data and leaves it blank.
                let code = av_interleaved_write_frame(muxer.pointer, packet.pointer)
                if code < 0 { throw .ffmpeg(operation: "writing an audio packet", code: code, message: errorString(code)) }
            }
        }
    }

    /// Flushes the re-encoder, if any; call once after the last `write`.
    func finish(into muxer: MuxerHandle) throws(MediaError) {
        if holdingPacket { av_packet_unref(packet.pointer); holdingPacket = false }
        try transcoder?.finish(into: muxer)
    }
}

/// Decode -> resample to float planar -> 1024-sample frames -> AAC encoder.
final class AACTranscoder {
    private let decoder: CodecHandle
    private let encoder: CodecHandle
    private let resampler: ResamplerHandle
    private let fifo: AudioFIFOHandle
    private let output: UnsafeMutablePointer<AVStream>
    private let decoded = FrameHandle()
    private let converted = FrameHandle()
    private let encoderFrame = FrameHandle()
    private let encoded = PacketHandle()
    private var nextPTS: Int64? = nil

    init(input: UnsafeMutablePointer<AVStream>, output: UnsafeMutablePointer<AVStream>,
         muxer: MuxerHandle) throws(MediaError) {
        let parameters = input.pointee.codecpar!
        guard let decoderCodec = avcodec_find_decoder(parameters.pointee.codec_id) else {
            throw .unsupportedCodec(path: "audio", codec: String(cString: avcodec_get_name(parameters.pointee.codec_id)))
        }
        guard let encoderCodec = avcodec_find_encoder(AV_CODEC_ID_AAC) else { throw .noEncoder(tried: ["aac"]) }
        decoder = try CodecHandle(codec: decoderCodec)
        try checked(avcodec_parameters_to_context(decoder.pointer, parameters), "audio decoder parameters")
        decoder.pointer.pointee.pkt_timebase = input.pointee.time_base
        try checked(avcodec_open2(decoder.pointer, decoderCodec, nil), "opening the audio decoder")
        if decoder.pointer.pointee.ch_layout.order == AV_CHANNEL_ORDER_UNSPEC {
            let count = decoder.pointer.pointee.ch_layout.nb_channels
            av_channel_layout_uninit(&decoder.pointer.pointee.ch_layout)
            av_channel_layout_default(&decoder.pointer.pointee.ch_layout, max(1, count))
        }

        encoder = try CodecHandle(codec: encoderCodec)
        let e = encoder.pointer
        let inputRate = decoder.pointer.pointee.sample_rate
        let aacRates: Set<Int32> = [96000, 88200, 64000, 48000, 44100, 32000, 24000, 22050, 16000, 12000, 11025, 8000, 7350]
        let rate = aacRates.contains(inputRate) ? inputRate : 48000
        let channels = min(2, max(1, decoder.pointer.pointee.ch_layout.nb_channels))
        av_channel_layout_default(&e.pointee.ch_layout, channels)
        e.pointee.sample_rate = rate
        e.pointee.sample_fmt = AV_SAMPLE_FMT_FLTP
        e.pointee.bit_rate = 64_000 * Int64(channels)
        e.pointee.time_base = AVRational(num: 1, den: rate)
        if (muxer.pointer.pointee.oformat.pointee.flags & AVFMT_GLOBALHEADER) != 0 {
            e.pointee.flags |= AV_CODEC_FLAG_GLOBAL_HEADER
        }
        try checked(avcodec_open2(e, encoderCodec, nil), "opening the AAC encoder")
        try checked(avcodec_parameters_from_context(output.pointee.codecpar, e), "AAC stream parameters")
        output.pointee.time_base = e.pointee.time_base
        self.output = output

        resampler = try ResamplerHandle(from: decoder.pointer, to: e)
        fifo = try AudioFIFOHandle(format: AV_SAMPLE_FMT_FLTP, channels: channels, capacity: 4096)
    }

    func decode(_ packet: UnsafeMutablePointer<AVPacket>, into muxer: MuxerHandle) throws(MediaError) {
        // A damaged audio packet is dropped, as the video reader does.
        if avcodec_send_packet(decoder.pointer, packet) < 0 { return }
        try drainDecoder(into: muxer)
    }

    func finish(into muxer: MuxerHandle) throws(MediaError) {
        avcodec_send_packet(decoder.pointer, nil)
        try drainDecoder(into: muxer)
        try resample(nil)                          // what the resampler still holds
        try encodeFIFO(into: muxer, flushing: true)
        try send(nil, into: muxer)
    }

    private func drainDecoder(into muxer: MuxerHandle) throws(MediaError) {
        while avcodec_receive_frame(decoder.pointer, decoded.pointer) >= 0 {
            if nextPTS == nil {
                let ts = decoded.pointer.pointee.best_effort_timestamp
                nextPTS = ts == AVCode.noPTS ? 0
                    : av_rescale_q(ts, decoder.pointer.pointee.pkt_timebase, encoder.pointer.pointee.time_base)
            }
            try resample(decoded.pointer)
            av_frame_unref(decoded.pointer)
            try encodeFIFO(into: muxer, flushing: false)
        }
    }

    private func resample(_ frame: UnsafeMutablePointer<AVFrame>?) throws(MediaError) {
        let out = converted.pointer
        av_frame_unref(out)
        av_channel_layout_copy(&out.pointee.ch_layout, &encoder.pointer.pointee.ch_layout)
        out.pointee.format = AV_SAMPLE_FMT_FLTP.rawValue
        out.pointee.sample_rate = encoder.pointer.pointee.sample_rate
        let code = swr_convert_frame(resampler.pointer, out, frame)
        if code < 0 { throw .ffmpeg(operation: "resampling audio", code: code, message: errorString(code)) }
        if out.pointee.nb_samples > 0 {
            try out.pointee.extended_data.withMemoryRebound(to: UnsafeMutableRawPointer?.self, capacity: 8) { planes throws(MediaError) in
                let written = av_audio_fifo_write(fifo.pointer, planes, out.pointee.nb_samples)
                if written < 0 { throw .ffmpeg(operation: "buffering audio", code: written, message: errorString(written)) }
            }
        }
    }

    private func encodeFIFO(into muxer: MuxerHandle, flushing: Bool) throws(MediaError) {
        let frameSize = max(1, encoder.pointer.pointee.frame_size)
        while av_audio_fifo_size(fifo.pointer) >= frameSize || (flushing && av_audio_fifo_size(fifo.pointer) > 0) {
            let count = min(frameSize, av_audio_fifo_size(fifo.pointer))
            let frame = encoderFrame.pointer
            av_frame_unref(frame)
            frame.pointee.nb_samples = count
            frame.pointee.format = AV_SAMPLE_FMT_FLTP.rawValue
            frame.pointee.sample_rate = encoder.pointer.pointee.sample_rate
            av_channel_layout_copy(&frame.pointee.ch_layout, &encoder.pointer.pointee.ch_layout)
            try checked(av_frame_get_buffer(frame, 0), "allocating an audio frame")
            _ = frame.pointee.extended_data.withMemoryRebound(to: UnsafeMutableRawPointer?.self, capacity: 8) {
                av_audio_fifo_read(fifo.pointer, $0, count)
            }
            frame.pointee.pts = nextPTS ?? 0
            nextPTS = (nextPTS ?? 0) + Int64(count)
            try send(frame, into: muxer)
        }
    }

    private func send(_ frame: UnsafeMutablePointer<AVFrame>?, into muxer: MuxerHandle) throws(MediaError) {
        try checked(avcodec_send_frame(encoder.pointer, frame), "encoding audio")
        while avcodec_receive_packet(encoder.pointer, encoded.pointer) >= 0 {
            encoded.pointer.pointee.stream_index = output.pointee.index
            av_packet_rescale_ts(encoded.pointer, encoder.pointer.pointee.time_base, output.pointee.time_base)
            let code = av_interleaved_write_frame(muxer.pointer, encoded.pointer)
            if code < 0 { throw .ffmpeg(operation: "writing an audio packet", code: code, message: errorString(code)) }
        }
    }
}

final class ResamplerHandle {
    private(set) var pointer: OpaquePointer? = nil

    init(from decoder: UnsafeMutablePointer<AVCodecContext>, to encoder: UnsafeMutablePointer<AVCodecContext>) throws(MediaError) {
        var context: OpaquePointer? = nil
        var code = swr_alloc_set_opts2(&context, &encoder.pointee.ch_layout, encoder.pointee.sample_fmt,
                                       encoder.pointee.sample_rate, &decoder.pointee.ch_layout,
                                       decoder.pointee.sample_fmt, decoder.pointee.sample_rate, 0, nil)
        pointer = context
        if code >= 0 { code = swr_init(context) }
        if code < 0 { throw .ffmpeg(operation: "setting up the audio resampler", code: code, message: errorString(code)) }
    }

    deinit { swr_free(&pointer) }
}

final class AudioFIFOHandle {
    let pointer: OpaquePointer

    init(format: AVSampleFormat, channels: Int32, capacity: Int32) throws(MediaError) {
        guard let fifo = av_audio_fifo_alloc(format, channels, capacity) else {
            throw .ffmpeg(operation: "av_audio_fifo_alloc", code: AVCode.posix(ENOMEM), message: "out of memory")
        }
        pointer = fifo
    }

    deinit { av_audio_fifo_free(pointer) }
}
