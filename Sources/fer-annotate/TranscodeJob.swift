import Foundation
import MediaIO
import VisionCore

/// One run: read the input, pass each frame through the (for now empty) analysis, write it out.
struct TranscodeJob {
    let input: String
    let output: String
    let settings: EncoderSettings
    let console: Console

    struct Summary {
        var frames: Int
        var seconds: Double
        var encoder: String
        var audio: AudioHandling
        var corruptPackets: Int
        var adjustedTimestamps: Int
        var stoppedBy: String?
    }

    func run() throws(MediaError) -> Summary {
        StopSignal.install()  // before opening: a network or pipe input can take a while to probe
        let reader = try VideoReader(url: input)
        let info = reader.info
        if info.isStillImage {
            throw .notMedia(path: input, reason: "it is a still image (\(info.codec)), not a video")
        }
        let writer: VideoWriter
        do {
            writer = try VideoWriter(path: output, matching: info, settings: settings)
        } catch {
            try? FileManager.default.removeItem(atPath: output)
            throw error
        }
        if info.hasAudio && !info.isSeekable {
            console.warning("the input is a stream that cannot be read twice: its audio is not copied")
        }

        var progress = Progress(total: info.estimatedFrameCount, console: console)
        var readFailure: MediaError? = nil
        do {
            while !StopSignal.isRequested {
                let frame: Frame?
                do {
                    frame = try reader.nextFrame(as: .rgb24)
                } catch {
                    readFailure = error  // keep the frames before the damage
                    break
                }
                guard let frame else { break }
                try writer.write(annotate(frame))
                progress.advance(to: writer.framesWritten)
            }
            progress.end()
            try writer.finish(audioThroughEnd: !StopSignal.isRequested && readFailure == nil)
        } catch {
            progress.end()
            try? FileManager.default.removeItem(atPath: output)
            throw error
        }
        if let readFailure {
            throw readFailure
        }
        return Summary(frames: writer.framesWritten, seconds: progress.elapsed, encoder: writer.encoderName,
                       audio: writer.audio, corruptPackets: reader.corruptPacketCount,
                       adjustedTimestamps: writer.adjustedTimestamps, stoppedBy: StopSignal.signalName)
    }

    /// The per-frame analysis stage: faces, emotions and drawing go here. Identity for now.
    func annotate(_ frame: Frame) -> Frame {
        frame
    }
}
