import AnnotationPipeline
import ArgumentParser
import EmotionModel
import FaceTracking
import Foundation

/// What to find and how to smooth it.
struct AnalysisArguments: ParsableArguments {
    @Option(help: ArgumentHelp("Emotion model (safetensors from fer-train). Default: the model shipped with fer-annotate.",
                               valueName: "path"))
    var model: String?

    @Option(help: ArgumentHelp(
        "Face detector: blazeface (fast; misses faces under about 40 px), mtcnn (finds faces down to 20 px, 8-20x slower at 720p), "
        + "or auto: BlazeFace on every frame plus an MTCNN search of the whole frame every --full-search seconds and "
        + "around the small faces only MTCNN sees; both detectors on still images.", valueName: "name"))
    var detector = "auto"

    @Option(help: ArgumentHelp("With --detector auto on video: seconds between MTCNN's searches of the whole frame (new small faces appear within this time).",
                               valueName: "seconds"))
    var fullSearch = 2.0

    @Option(help: ArgumentHelp("BlazeFace model: short (faces near the camera, 128 px input), full (any distance, 192 px), back (256 px).",
                               valueName: "variant"))
    var blazefaceModel = "full"

    @Option(help: ArgumentHelp("Folder with the detector weights: BlazeFace .tflite files and mtcnn.safetensors (default: Samples/thirdparty/models from setup).",
                               valueName: "dir"))
    var detectorModels: String?

    @Flag(help: "Find and track faces only, no emotion: numbered boxes in one colour per run, to check detection and tracking (faster; the CSV's emotion columns stay empty).")
    var facesOnly = false

    @Option(help: ArgumentHelp("Run the detector on every Nth frame; the tracker carries faces in between (faster on long videos).",
                               valueName: "n"))
    var detectEvery = 1

    @Option(help: ArgumentHelp(
        "Ignore faces narrower than this many pixels (default: 20 for photos, 24 for video).",
        discussion: "Photos are searched down to 20 px, where MTCNN still finds faces reliably (on a benchmark of group "
            + "photos: 90% of faces at 20 px against 85% at 24); a photo is one image, so the finer search costs "
            + "little. Video keeps 24 px: MTCNN's full-frame search costs about 40% more at 20 (720p frame: 75 against 55 ms).",
        valueName: "pixels"))
    var minFace: Float?

    /// Smallest face searched for: --min-face, or the default for the kind of input.
    func minimumFaceSize(isStillImage: Bool) -> Float { minFace ?? (isStillImage ? 20 : 24) }

    @Option(help: ArgumentHelp("Detector score that starts a face track, 0-1 (BlazeFace scores real faces 0.9+; "
                               + "text and patterns reach 0.6). Weaker detections down to 0.3 only keep existing tracks alive.",
                               valueName: "score"))
    var detThreshold: Float = 0.7

    @Option(help: ArgumentHelp("Temporal smoothing per face: ema (exponential, by --half-life), window (mean over --window), none.",
                               valueName: "method"))
    var smoothing = "ema"

    @Option(help: ArgumentHelp("EMA half-life in seconds.", valueName: "seconds"))
    var halfLife = 0.5

    @Option(help: ArgumentHelp("Window length in seconds for --smoothing window.", valueName: "seconds"))
    var window = 1.0

    @Option(help: ArgumentHelp("The shown emotion is the smoothed leader; one that trails the leader by less than this "
                               + "(a near tie) may stay on screen a little longer...", valueName: "p"))
    var switchMargin: Float = 0.1

    @Option(help: ArgumentHelp("...for at most this many seconds, so close emotions do not flicker.", valueName: "seconds"))
    var switchTime = 0.3

    @Option(help: ArgumentHelp("Seconds a face may go undetected before its track (and ID) is retired.", valueName: "seconds"))
    var retention = 1.0

    @Option(help: ArgumentHelp("Threads inside each neural network call (default: 1 for video files, whose pipeline stages already keep every core busy; all cores for photos and live inputs, where one frame's latency counts).", valueName: "n"))
    var threads: Int?

    func validate() throws {
        if let threads, threads < 1 { throw ValidationError("--threads must be at least 1") }
        guard ["auto", "blazeface", "mtcnn"].contains(detector) else {
            throw ValidationError("--detector must be auto, blazeface or mtcnn")
        }
        guard fullSearch > 0 else { throw ValidationError("--full-search must be positive") }
        guard ["short", "full", "back"].contains(blazefaceModel) else {
            throw ValidationError("--blazeface-model must be short, full or back")
        }
        if let minFace, minFace < 0 { throw ValidationError("--min-face must not be negative") }
        guard detectEvery >= 1 else { throw ValidationError("--detect-every must be at least 1") }
        guard (0...1).contains(detThreshold) else { throw ValidationError("--det-threshold must be between 0 and 1") }
        guard ["ema", "window", "none"].contains(smoothing) else { throw ValidationError("--smoothing must be ema, window or none") }
        guard halfLife > 0, window > 0, switchTime >= 0, retention > 0 else {
            throw ValidationError("--half-life, --window and --retention must be positive, --switch-time not negative")
        }
    }

    func options(isStillImage: Bool) -> AnalysisOptions {
        var options = AnalysisOptions()
        options.detectEvery = detectEvery
        options.classifiesEmotions = !facesOnly
        options.minimumFaceSize = minimumFaceSize(isStillImage: isStillImage)
        switch smoothing {
        case "none": options.smoothing = SmoothingConfiguration(method: .none, switchMargin: switchMargin, switchSeconds: switchTime)
        case "window": options.smoothing = SmoothingConfiguration(method: .window(seconds: window), switchMargin: switchMargin,
                                                                   switchSeconds: switchTime)
        default: options.smoothing = SmoothingConfiguration(method: .exponential(halfLife: halfLife), switchMargin: switchMargin,
                                                             switchSeconds: switchTime)
        }
        options.tracker.retentionSeconds = retention
        options.tracker.highScoreThreshold = detThreshold
        options.tracker.lowScoreThreshold = min(detThreshold, 0.3)
        return options
    }
}
