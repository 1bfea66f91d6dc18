import ArgumentParser
import Foundation
import MediaIO

struct FerAnnotate: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "fer-annotate",
        abstract: "Annotate faces and their emotions in a video. For now it transcodes: "
            + "every frame re-encoded to H.264, timestamps and audio kept.",
        discussion: """
            The output keeps the input's frames, timestamps, duration and audio \
            (copied, or re-encoded to AAC when the container cannot hold it). \
            Ctrl-C (SIGINT) or SIGTERM stops early and still finishes the file.

            Exit codes:
              0    success
              1    encoding or writing failed part way
              64   bad command line (unknown option, --crf out of range)
              65   input is not a usable video: not media, no video
                   stream, a still image, an unknown codec, or
                   truncated (frames before the damage are kept)
              66   input missing or unreadable
              73   output cannot be written, or exists (see --overwrite)
              130  stopped by SIGINT (143: SIGTERM); output finished
            """)

    @Argument(help: ArgumentHelp("Input video: a file path or any URL FFmpeg can open.", valueName: "input"))
    var input: String

    @Option(name: [.short, .long], help: ArgumentHelp(
        "Output video. Its extension picks the container: .mp4, .mkv or .mov.", valueName: "output"))
    var output: String

    @OptionGroup(title: "Encoding")
    var encoding: EncodingOptions

    @Flag(help: "Replace the output file if it already exists.")
    var overwrite = false

    @Flag(name: .shortAndLong, help: "Print no progress line and no warnings (errors are still printed).")
    var quiet = false

    @Flag(help: "Also show FFmpeg's own log messages (damaged packets, stream details).")
    var verbose = false

    mutating func validate() throws {
        try encoding.validate()
        if URL(fileURLWithPath: input).standardizedFileURL == URL(fileURLWithPath: output).standardizedFileURL {
            throw ValidationError("the output must not be the input")
        }
    }

    func run() throws {
        MediaLog.setLevel(verbose ? .warning : .quiet)
        let console = Console(quiet: quiet)
        if !overwrite && FileManager.default.fileExists(atPath: output) {
            console.error("\(output) already exists (use --overwrite to replace it)")
            throw ExitCode(73)
        }
        let job = TranscodeJob(input: input, output: output, settings: encoding.settings, console: console)
        do {
            let summary = try job.run()
            console.finished(summary, output: output)
            if let signal = summary.stoppedBy { throw ExitCode(signal == "SIGTERM" ? 143 : 130) }
        } catch let error as MediaError {
            console.error(error.description)
            throw ExitCode(FerAnnotate.exitCode(for: error))
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

    var settings: EncoderSettings { EncoderSettings(crf: crf, preset: preset) }
}
