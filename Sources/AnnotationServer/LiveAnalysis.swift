import AnnotationPipeline
import EmotionModel
import FaceDetection
import Foundation
import MediaIO
import VisionCore

/// First come, first served admission to the cores: at most `slots` frames are analysed at once, and viewers
/// waiting for a slot get it in the order they asked, so N viewers share the machine evenly.
actor FairGate {
    private var free: Int
    private var waiting: [CheckedContinuation<Void, Never>] = []

    init(slots: Int) { free = max(1, slots) }

    func enter() async {
        if free > 0 {
            free -= 1
            return
        }
        await withCheckedContinuation { waiting.append($0) }
    }

    func leave() {
        if waiting.isEmpty { free += 1 } else { waiting.removeFirst().resume() }
    }
}

/// What the server answers for one webcam frame.
struct LiveFrameResult: Encodable {
    struct Face: Encodable {
        var id: Int
        /// x, y, width, height in the frame's pixels.
        var box: [Float]
        var emotion: String?
        var confidence: Float?
        var probabilities: [String: Float]?
    }
    struct Timing: Encodable {
        var decodeMs: Double
        var analysisMs: Double
        var waitMs: Double
        enum CodingKeys: String, CodingKey { case decodeMs = "decode_ms", analysisMs = "analysis_ms", waitMs = "wait_ms" }
    }
    var type = "frame"
    var frame: Int
    var timeS: Double
    var width: Int
    var height: Int
    var faces: [Face]
    /// Webcam frames only: where the time went on the server.
    var timing: Timing?
    enum CodingKeys: String, CodingKey {
        case type, frame, timeS = "time_s", width, height, faces, timing
    }
}

/// One viewer's webcam: its own detector, tracker and smoother (IDs and smoothing are per connection), frames
/// timed by their arrival. Not shared between connections; calls come one at a time.
final class LiveViewer: @unchecked Sendable {
    private let analyzer: FrameAnalyzer
    private let started = Date()
    private var frames = 0
    static let maximumPixels = 1920 * 1080

    init(models: URL, classifier: EmotionClassifier, frameRate: Double = 12) throws {
        analyzer = try LiveAnalysis.analyzer(models: models, classifier: classifier, frameRate: frameRate)
    }

    /// Decodes and analyses one JPEG; a frame that is not a JPEG, or too large, throws a message for the viewer.
    func analyze(jpeg: [UInt8], waited: TimeInterval) throws -> LiveFrameResult {
        let decodeStart = Date()
        let image: Image
        do { image = try decodeJPEG(jpeg, as: .rgb24) } catch { throw LiveError(message: "\(error)") }
        guard image.width * image.height <= Self.maximumPixels else {
            throw LiveError(message: "frame of \(image.width)x\(image.height) is larger than 1920x1080; send it downscaled")
        }
        let analysisStart = Date()
        let time = analysisStart.timeIntervalSince(started)
        let frame = Frame(image: image, timestamp: Timestamp(seconds: time, timeBase: Rational(1, 1000)), index: frames)
        frames += 1
        let annotated = try analyzer.analyze(frame)
        return LiveFrameResult(frame: frame.index, timeS: time, width: image.width, height: image.height,
                               faces: annotated.faces.map(LiveFrameResult.Face.init),
                               timing: .init(decodeMs: analysisStart.timeIntervalSince(decodeStart) * 1000,
                                             analysisMs: Date().timeIntervalSince(analysisStart) * 1000, waitMs: waited * 1000))
    }
}

/// The analysis of live pictures (webcam frames, server cameras), as `--detector auto` runs on video: BlazeFace on
/// every frame, MTCNN over the whole frame every 2 s and around the faces BlazeFace misses; faces of 24 px and up.
enum LiveAnalysis {
    static func analyzer(models: URL, classifier: EmotionClassifier, frameRate: Double) throws -> FrameAnalyzer {
        let fast = try BlazeFaceDetector(modelsFolder: models, options: .init(model: .fullRange, scoreThreshold: 0.3,
                                                                               minimumFaceSize: 24))
        let accurate = try MTCNNDetector(modelsFolder: models, options: .init(minimumFaceSize: 24))
        let detector = HybridFaceDetector(fast: fast, fastFraming: .blazeFace(.fullRange), accurate: accurate,
                                          accurateFraming: .mtcnn, fullSearchInterval: max(1, Int(2 * frameRate)))
        var options = AnalysisOptions()
        options.minimumFaceSize = 24
        options.tracker.highScoreThreshold = 0.7
        options.tracker.lowScoreThreshold = 0.3
        return FrameAnalyzer(detector: detector, classifier: classifier, options: options)
    }
}

extension LiveFrameResult.Face {
    init(_ face: FaceAnnotation) {
        let classified = !face.smoothed.probabilities.isEmpty
        self.init(id: face.trackID, box: [face.box.x, face.box.y, face.box.width, face.box.height],
                  emotion: classified ? face.emotion.name : nil, confidence: classified ? face.smoothed.confidence : nil,
                  probabilities: classified ? Dictionary(uniqueKeysWithValues: zip(Emotion.names, face.smoothed.probabilities)) : nil)
    }
}

struct LiveError: Error, CustomStringConvertible {
    let message: String
    var description: String { message }
}
