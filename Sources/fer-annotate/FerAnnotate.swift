import ArgumentParser
import Foundation
import MediaIO

struct FerAnnotate: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "fer-annotate",
        abstract: "Find the faces in a video, follow each person, and tell which emotion each shows, frame by frame.",
        discussion: """
            Writes an annotated copy of the video (a box, ID, emotion and confidence per face; audio kept) and a \
            timeline CSV with one row per face per frame (and one row for each frame without a face). \
            The CSV goes next to the output as OUTPUT.csv unless --csv says otherwise.

            Examples:
              fer-annotate interview.mp4 -o interview-annotated.mp4
              fer-annotate interview.mp4 --no-video --csv timeline.csv --json summary.json --plot timeline.svg
              fer-annotate interview.mp4 -o out.mp4 --detect-every 3 --bars
              fer-annotate serve          the web app: webcam live, uploads (see fer-annotate serve --help)

            CSV columns: frame, time_s, face_id, x, y, w, h, det_score, angry, disgust, fear, happy, sad, \
            surprise, neutral (smoothed probabilities), emotion, confidence, raw_angry ... raw_neutral \
            (this frame's probabilities before smoothing). Time comes from the stream's timestamps; boxes are in \
            source pixels. Rows are flushed as they are written: Ctrl-C keeps everything analysed so far.

            Exit codes:
              0    success
              1    analysis, encoding or writing failed part way
              64   bad command line
              65   input is not a usable video: not media, no video stream, an unknown codec, or truncated \
            (frames before the damage are kept)
              66   input, model or detector file missing or unreadable
              73   output cannot be written, or exists (see --overwrite)
              130  stopped by SIGINT (143: SIGTERM); outputs finished up to there
            """)

    @Argument(help: ArgumentHelp("Input video: a file path or any URL FFmpeg can open.", valueName: "input"))
    var input: String

    @Option(name: [.short, .long], help: ArgumentHelp(
        "Annotated output video; its extension picks the container: .mp4, .mkv or .mov.", valueName: "output"))
    var output: String?

    @Flag(help: "Analyse only: write no video (much faster; needs --csv, --json or --jsonl).")
    var noVideo = false

    @Option(help: ArgumentHelp("Timeline CSV (default: OUTPUT with .csv).", valueName: "path"))
    var csv: String?

    @Option(help: ArgumentHelp("Per-track summary and run metadata as JSON.", valueName: "path"))
    var json: String?

    @Option(help: ArgumentHelp("Emotion timeline chart (SVG): one lane per face, coloured by emotion over time.", valueName: "path"))
    var plot: String?

    @Flag(help: "Also print every frame's record as JSON Lines on stdout.")
    var jsonl = false

    @Flag(help: "Draw a small probability bar chart beside each face (under it, or to a side where there is room).")
    var bars = false

    @OptionGroup(title: "Analysis")
    var analysis: AnalysisArguments

    @OptionGroup(title: "Encoding")
    var encoding: EncodingOptions

    @OptionGroup(title: "Time range, live streams and cameras")
    var live: LiveArguments

    @Flag(help: "Replace output files that already exist.")
    var overwrite = false

    @Flag(name: .shortAndLong, help: "Print no progress line and no warnings (errors are still printed).")
    var quiet = false

    @Flag(help: "Also show FFmpeg's own log messages (damaged packets, stream details).")
    var verbose = false

    mutating func validate() throws {
        try encoding.validate()
        try live.validate()
        if noVideo {
            guard output == nil else { throw ValidationError("--no-video writes no video: drop -o or --no-video") }
            guard csv != nil || json != nil || jsonl || plot != nil else {
                throw ValidationError("--no-video needs somewhere to write: --csv, --json, --plot or --jsonl")
            }
        } else {
            guard let output else { throw ValidationError("give an output video with -o, or use --no-video") }
            if URL(fileURLWithPath: input).standardizedFileURL == URL(fileURLWithPath: output).standardizedFileURL {
                throw ValidationError("the output must not be the input")
            }
        }
    }

    /// The CSV path: --csv, or next to the output video.
    var csvPath: String? {
        if let csv { return csv }
        guard let output, !LiveOutput.isURL(output) else { return nil }
        return URL(fileURLWithPath: output).deletingPathExtension().path + ".csv"
    }

    func run() throws {
        MediaLog.setLevel(verbose ? .warning : .quiet)
        let console = Console(quiet: quiet)
        let outputs = [output, csvPath, json, plot].compactMap { $0 }
        if !overwrite, let existing = outputs.first(where: { FileManager.default.fileExists(atPath: $0) }) {
            console.error("\(existing) already exists (use --overwrite to replace it)")
            throw ExitCode(73)
        }
        let job = AnnotateJob(command: self, console: console)
        do {
            let summary = try job.run()
            console.finished(summary, output: output ?? csvPath ?? "analysis")
            if let signal = summary.stoppedBy { throw ExitCode(signal == "SIGTERM" ? 143 : 130) }
        } catch let error as MediaError {
            console.error(error.description)
            throw ExitCode(FerAnnotate.exitCode(for: error))
        } catch let error as JobError {
            console.error(error.description)
            throw ExitCode(error.exitCode)
        }
    }

    static func exitCode(for error: MediaError) -> Int32 {
        switch error {
        case .fileNotFound, .unreadable: return 66
        case .notMedia, .noVideoStream, .unsupportedCodec, .truncated: return 65
        case .cannotWrite, .unknownContainer: return 73
        case .noEncoder, .invalidArgument, .ffmpeg: return 1
        }
    }
}

/// The encoder options, shared by every command that writes video.
struct EncodingOptions: ParsableArguments {
    @Option(help: ArgumentHelp(
        "x264 constant rate factor, 0-51: lower is better and bigger; 18 looks transparent.", valueName: "n"))
    var crf = 20

    @Option(help: ArgumentHelp(
        "x264 preset, from ultrafast to veryslow: slower presets give smaller files at the same quality.",
        valueName: "name"))
    var preset = "veryfast"

    func validate() throws {
        guard (0...51).contains(crf) else { throw ValidationError("--crf must be between 0 and 51, not \(crf)") }
        guard EncoderSettings.presets.contains(preset) else {
            throw ValidationError("--preset must be one of \(EncoderSettings.presets.joined(separator: ", "))")
        }
    }

    /// x264 with one thread per core rather than its default 1.5 per core: the analysis needs the cores too, and
    /// each encoder thread holds frames of its own (25 MB less at 1080p on 2 cores, no slower).
    var settings: EncoderSettings {
        EncoderSettings(crf: crf, preset: preset, threads: ProcessInfo.processInfo.activeProcessorCount)
    }
}
