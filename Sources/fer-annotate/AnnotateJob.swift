import AnnotationPipeline
import EmotionModel
import FaceDetection
import Foundation
import MediaIO
import NeuralEngine
import VisionCore

/// A failure outside the media layer (model, detector, outputs), with its exit code.
struct JobError: Error, CustomStringConvertible {
    let description: String
    let exitCode: Int32
}

/// One run: read, analyse and write, through the pipeline's bounded stages.
struct AnnotateJob {
    let command: FerAnnotate
    let console: Console

    struct Summary {
        var frames: Int
        var seconds: Double
        var encoder: String?
        var audio: AudioHandling
        var corruptPackets: Int
        var adjustedTimestamps: Int
        var rescaledFrames: Int
        var stoppedBy: String?
        var faces: Int
        var tracks: Int
    }

    func run() throws -> Summary {
        StopSignal.install()  // before opening: a network or pipe input can take a while to probe
        // Streams, cameras and inputs with FFmpeg options open through the live session (nil: a plain file).
        let live = try LiveSession.open(command.input, arguments: command.live, console: console)
        // One decoder thread per core (FFmpeg's automatic count is one more): as fast here, one frame less held.
        let reader = live == nil
            ? try VideoReader(url: command.input, threads: ProcessInfo.processInfo.activeProcessorCount) : nil
        let start = command.live.startSeconds
        if start > 0 {
            if live?.isLive == true { throw JobError(description: "--start is for files; a live input starts now", exitCode: 64) }
            if let reader { try seek(reader, to: start) }
        }
        let source: FrameSource = live?.source ?? reader!
        let info = live?.info ?? reader!.info
        let writesImage = command.output.map { ImageSink.handles(path: $0) } ?? false
        if info.isStillImage && command.output != nil && !writesImage {
            throw JobError(description: "\(command.input) is a still image, not a video: write an image "
                           + "(-o NAME.jpg or .png) or use --no-video", exitCode: 65)
        }
        if !info.isStillImage && writesImage {
            throw JobError(description: "\(command.output!) is an image file name; a video needs .mp4, .mkv or .mov",
                           exitCode: 64)
        }
        // A video file keeps every core busy with its pipeline's stages (decode, detect, classify, encode run
        // concurrently); splitting each network call over the cores as well only adds waiting (measured: 10% of
        // the CPU in sched_yield and wake-ups, 5-10% longer runs). A photo is one frame and a live stream is paced
        // by its source, so there each frame's latency is what counts, and the networks take every core.
        let splitsNetworks = info.isStillImage || live?.isLive == true
        Parallelism.workers = command.analysis.threads ?? (splitsNetworks ? Parallelism.workers : 1)
        let classifier = try loadClassifier()
        let (detector, framing) = try makeDetector(for: info)
        var analysisOptions = command.analysis.options(isStillImage: info.isStillImage)
        // The classifier's crop is framed from the boxes of the detector that drew them.
        analysisOptions.cropper.scale = framing.cropScale
        analysisOptions.cropper.verticalOffset = framing.verticalOffset
        // A photo is one frame: every face counts at once, with no confirmation over time.
        if info.isStillImage { analysisOptions.tracker.confirmHits = 1 }
        // A video file up to 720p: detection, the costliest stage there, on one thread per core (up to four),
        // frames dealt in turn and tracked in order (PipelineRunner). Larger frames are dominated by decoding and
        // encoding and would keep more of them in memory; a live source keeps one detection thread, to drop frames
        // freely.
        var frameStages: [FaceDetector] = []
        let cores = ProcessInfo.processInfo.activeProcessorCount
        if !info.isStillImage, live?.isLive != true, cores > 1, info.width * info.height <= 1280 * 720,
           let staged = detector as? StagedFaceDetector {
            do {
                frameStages = try (0..<min(cores, 4)).compactMap { _ in try staged.makeFrameStage() }
            } catch {
                throw JobError(description: "\(error)", exitCode: 66)
            }
        }
        let analyzer = FrameAnalyzer(detector: detector, classifier: classifier, options: analysisOptions,
                                     frameStages: frameStages)

        var sinks: [FrameSink] = []
        var videoSink: VideoSink?
        var liveVideoSink: FrameSink?
        if let output = command.output, let live, live.isLive {
            let renderer: FrameRenderer
            do { renderer = try FrameRenderer(showsBars: command.bars) } catch {
                throw JobError(description: "\(error)", exitCode: 66)
            }
            liveVideoSink = try live.makeVideoSink(output: output, settings: command.encoding.settings, renderer: renderer)
            sinks.append(liveVideoSink!)
        } else if let output = command.output, writesImage {
            do { sinks.append(ImageSink(path: output, renderer: try FrameRenderer(showsBars: command.bars))) } catch {
                throw JobError(description: "\(error)", exitCode: 66)
            }
        } else if let output = command.output {
            let writer: VideoWriter
            do {
                writer = try VideoWriter(path: output, matching: info, settings: command.encoding.settings, from: start)
            } catch {
                try? FileManager.default.removeItem(atPath: output)
                throw error
            }
            if info.hasAudio && !info.isSeekable {
                console.warning("the input is a stream that cannot be read twice: its audio is not copied")
            }
            let renderer: FrameRenderer
            do { renderer = try FrameRenderer(showsBars: command.bars) } catch {
                throw JobError(description: "\(error)", exitCode: 66)
            }
            videoSink = VideoSink(writer: writer, renderer: renderer, audioThroughEnd: command.live.duration == nil)
            sinks.append(videoSink!)
        }
        if let csvPath = command.csvPath {
            do {
                if let live, live.isLive { sinks.append(try live.makeCSVSink(path: csvPath)) } else {
                    sinks.append(CSVSink(writer: try TimelineCSVWriter(path: csvPath)))
                }
            } catch {
                throw JobError(description: "cannot write \(csvPath)", exitCode: 73)
            }
        }
        if command.jsonl { sinks.append(JSONLinesSink()) }
        let summarySink = SummarySink()
        sinks.append(summarySink)

        let framesSkipped = Int(start * (info.frameRate?.value ?? 0))
        var progress = Progress(total: info.estimatedFrameCount.map { max(1, $0 - framesSkipped) }, console: console)
        let runner = PipelineRunner(source: source, analyzer: analyzer,
                                    sinks: live?.arrange(sinks, videoSink: liveVideoSink) ?? sinks,
                                    queueCapacity: Self.queueCapacity(width: info.width, height: info.height),
                                    dropsStaleFrames: live?.isLive ?? false, analysisQueueCapacity: live?.analysisQueueCapacity)
        let statistics: PipelineStatistics
        do {
            statistics = try runner.run(shouldStop: { StopSignal.isRequested }) { progress.advance(to: $0.framesAnalyzed) }
        } catch {
            progress.end()
            throw error
        }
        progress.end()
        let tracks = summarySink.accumulator.summaries
        try writeReports(tracks: tracks, statistics: statistics, info: info, classifier: classifier, live: live)
        if command.live.stats { console.write(LiveSession.statisticsText(statistics, live: live)) }
        if let failure = statistics.sourceError { throw live?.translate(failure) ?? failure }
        return Summary(frames: statistics.framesAnalyzed, seconds: statistics.seconds,
                       encoder: videoSink?.encoderName ?? live?.encoderName,
                       audio: videoSink?.audio ?? .none, corruptPackets: live?.corruptPacketCount ?? reader!.corruptPacketCount,
                       adjustedTimestamps: videoSink?.adjustedTimestamps ?? live?.adjustedTimestamps ?? 0,
                       rescaledFrames: videoSink?.rescaledFrames ?? live?.videoSink?.rescaledFrames ?? 0,
                       stoppedBy: StopSignal.signalName,
                       faces: statistics.facesAnalyzed, tracks: tracks.count)
    }

    private func loadClassifier() throws -> EmotionClassifier {
        do {
            if let path = command.analysis.model { return try EmotionClassifier(contentsOf: URL(fileURLWithPath: path)) }
            return try ShippedModel.load()
        } catch {
            throw JobError(description: "\(error)", exitCode: 66)
        }
    }

    /// Frames each queue between the pipeline's stages holds: four, fewer for large frames so that the frames
    /// in flight take at most 12 MB a queue (four 720p frames, one 1080p frame), which keeps a 1080p file under
    /// 400 MB; one frame a queue still lets every stage work while the next waits.
    static func queueCapacity(width: Int, height: Int) -> Int {
        max(1, min(4, (12 << 20) / max(1, width * height * 3)))
    }

    /// The detector --detector asks for, and the framing of the boxes it reports.
    private func makeDetector(for info: VideoInfo) throws -> (FaceDetector, DetectorFraming) {
        let arguments = command.analysis
        guard let folder = DetectorAssets.modelsFolder(override: arguments.detectorModels) else {
            throw JobError(description: "detector models not found in \(DetectorAssets.relativeFolder) "
                           + "(run Scripts/setup.sh, or pass --detector-models DIR)", exitCode: 66)
        }
        do {
            // The detectors also report low-score faces: the tracker's second pass uses them to keep tracks alive.
            let lowScore = min(arguments.detThreshold, 0.3)
            let minimumFaceSize = arguments.minimumFaceSize(isStillImage: info.isStillImage)
            func blazeFace() throws -> BlazeFaceDetector {
                try BlazeFaceDetector(modelsFolder: folder, options: BlazeFaceDetector.Options(
                    model: BlazeFaceModel(rawValue: arguments.blazefaceModel) ?? .fullRange, scoreThreshold: lowScore,
                    minimumFaceSize: minimumFaceSize))
            }
            func mtcnn() throws -> MTCNNDetector {
                // MTCNN's pyramid starts at the smallest face wanted: a larger --min-face makes it cheaper.
                try MTCNNDetector(modelsFolder: folder, options: MTCNNDetector.Options(minimumFaceSize: max(12, minimumFaceSize)))
            }
            let blazeFaceFraming = DetectorFraming.blazeFace(BlazeFaceModel(rawValue: arguments.blazefaceModel) ?? .fullRange)
            switch arguments.detector {
            case "blazeface":
                return (try blazeFace(), blazeFaceFraming)
            case "mtcnn":
                return (try mtcnn(), .mtcnn)
            default:
                // A photo gets both detectors on the whole image; a video BlazeFace on every frame and MTCNN on the
                // whole frame every --full-search seconds (and around the faces only it found, every frame).
                let frameRate = info.frameRate?.value ?? 25
                let interval = info.isStillImage ? 1 : max(1, Int((arguments.fullSearch * frameRate / Double(arguments.detectEvery)).rounded()))
                let hybrid = HybridFaceDetector(fast: try blazeFace(), fastFraming: blazeFaceFraming,
                                                accurate: try mtcnn(), accurateFraming: .mtcnn, fullSearchInterval: interval,
                                                strongScore: arguments.detThreshold)
                return (hybrid, blazeFaceFraming)
            }
        } catch {
            throw JobError(description: "\(error)", exitCode: 66)
        }
    }

    /// The detector as the JSON summary names it.
    private var detectorName: String {
        let blazeFace = "blazeface-\(command.analysis.blazefaceModel)"
        switch command.analysis.detector {
        case "blazeface": return blazeFace
        case "mtcnn": return "mtcnn"
        default: return "auto (\(blazeFace) + mtcnn every \(command.analysis.fullSearch) s)"
        }
    }

    private func writeReports(tracks: [TrackSummary], statistics: PipelineStatistics, info: VideoInfo,
                              classifier: EmotionClassifier, live: LiveSession? = nil) throws {
        if let path = command.json {
            let report = RunReport(
                input: command.input, output: command.output, csv: command.csvPath,
                model: command.analysis.model ?? ShippedModel.fileName, modelArchitecture: classifier.architecture.name,
                detector: detectorName, detectEvery: command.analysis.detectEvery,
                smoothing: command.analysis.smoothing, halfLife: command.analysis.halfLife,
                frames: statistics.framesAnalyzed, seconds: statistics.seconds,
                fps: statistics.seconds > 0 ? Double(statistics.framesAnalyzed) / statistics.seconds : 0,
                width: info.width, height: info.height, duration: info.duration,
                completed: statistics.sourceError == nil && !statistics.stoppedEarly,
                peakMemoryMB: peakResidentMegabytes(), tracks: tracks, live: live?.report(statistics))
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
            do { try encoder.encode(report).write(to: URL(fileURLWithPath: path)) } catch {
                throw JobError(description: "cannot write \(path): \(error.localizedDescription)", exitCode: 73)
            }
        }
        if let path = command.plot {
            let svg = TimelinePlot.svg(tracks: tracks, duration: info.duration ?? 0,
                                       title: "Emotions over time: \(URL(fileURLWithPath: command.input).lastPathComponent)")
            do { try svg.write(toFile: path, atomically: true, encoding: .utf8) } catch {
                throw JobError(description: "cannot write \(path): \(error.localizedDescription)", exitCode: 73)
            }
        }
    }
}

/// The --json document: run metadata and one summary per track.
struct RunReport: Encodable {
    let version = "0.1.0"
    let input: String
    let output: String?
    let csv: String?
    let model: String
    let modelArchitecture: String
    let detector: String
    let detectEvery: Int
    let smoothing: String
    let halfLife: Double
    let frames: Int
    let seconds: Double
    let fps: Double
    let width: Int
    let height: Int
    let duration: Double?
    let completed: Bool
    let peakMemoryMB: Double
    let tracks: [TrackSummary]
    /// Live inputs only: frames read/analysed/dropped/late, latency percentiles, reconnect gaps.
    var live: LiveReport? = nil

    enum CodingKeys: String, CodingKey {
        case version, input, output, csv, model, detector, smoothing, frames, seconds, fps, width, height, duration
        case completed, tracks, peakMemoryMB = "peak_memory_mb", live
        case modelArchitecture = "model_architecture", detectEvery = "detect_every", halfLife = "half_life_s"
    }
}

/// `--start`: a start the file cannot have (past its end, a still image) is a bad command line.
func seek(_ reader: VideoReader, to start: Double) throws {
    do { try reader.seek(to: start) } catch {
        if case .invalidArgument(let reason) = error { throw JobError(description: reason, exitCode: 64) }
        throw error
    }
}

/// This process's peak resident memory so far, in MB: Linux's VmHWM (/proc/self/status), the high-water mark of
/// this program's own address space. Not getrusage's ru_maxrss: for a process started by posix_spawn or vfork (as
/// Foundation's Process and Python's subprocess start it) the kernel folds the parent's peak into it at exec, so a
/// 1 GB parent made a 190 MB run report 1 GB. getrusage only where /proc is missing.
func peakResidentMegabytes() -> Double {
    if let status = try? String(contentsOfFile: "/proc/self/status", encoding: .utf8),
       let line = status.split(separator: "\n").first(where: { $0.hasPrefix("VmHWM:") }),
       let kilobytes = Double(line.dropFirst("VmHWM:".count).split(whereSeparator: \.isWhitespace).first ?? "") {
        return kilobytes / 1024
    }
    var usage = rusage()
    getrusage(__rusage_who_t(RUSAGE_SELF.rawValue), &usage)
    return Double(usage.ru_maxrss) / 1024
}
