import AnnotationPipeline
import EmotionModel
import FaceDetection
import Foundation
import MediaIO
import Synchronization
import VisionCore

/// A camera the server watches (`--camera NAME=URL`): the live pipeline of `fer-annotate URL --live` on a thread
/// of its own (reconnecting, stale frames dropped so latency stays bounded), the timeline CSV written to
/// `<data>/cameras/NAME.csv` as it goes, and the latest annotated frame (JPEG) and faces kept for the page.
/// A file given as a camera is read at its own pace and starts over at its end, which makes a demo camera.
final class CameraFeed: FrameSink, @unchecked Sendable {
    let name: String
    let url: String
    let csvPath: String

    struct Snapshot: Sendable {
        var jpeg: Data?
        var record: LiveFrameResult?
        var state = "starting"
        var error: String?
    }

    private let snapshot = Mutex(Snapshot())
    private let stopRequested = Atomic<Bool>(false)
    private let renderer: FrameRenderer
    private let started = Date()
    private var lastEncoded = Date.distantPast
    private var thread: Thread?
    /// At most this many frames a second are drawn and encoded for the page; every frame is analysed.
    private static let pageFrameRate = 10.0

    /// NAME=URL, with a name that is safe in a path and a URL (letters, digits, '-' and '_').
    static func parse(_ text: String) -> (name: String, url: String)? {
        guard let equals = text.firstIndex(of: "=") else { return nil }
        let name = String(text[..<equals]), url = String(text[text.index(after: equals)...])
        guard !name.isEmpty, name.count <= 64, !url.isEmpty,
              name.allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "-" || $0 == "_") }) else { return nil }
        return (name, url)
    }

    init(name: String, url: String, folder: URL) throws {
        self.name = name
        self.url = url
        csvPath = folder.appendingPathComponent(name + ".csv").path
        renderer = try FrameRenderer()
    }

    var current: Snapshot { snapshot.withLock { $0 } }

    func start(models: URL) {
        let thread = Thread { [self] in run(models: models) }
        thread.name = "camera \(name)"
        self.thread = thread
        thread.start()
    }

    /// Asks the pipeline to stop; it finishes its CSV and the thread ends.
    func stop() { stopRequested.store(true, ordering: .relaxed) }

    var isStopped: Bool { current.state == "stopped" || current.state == "failed" }

    private func run(models: URL) {
        let shouldStop: @Sendable () -> Bool = { [self] in stopRequested.load(ordering: .relaxed) }
        do {
            let kind = InputKind(url: url)
            let policy = ReconnectPolicy(reconnects: true, attempts: 0, initialDelay: 1, maximumDelay: 30,
                                         openTimeout: kind.isLive ? 30 : 0)
            let url = self.url
            let source = try ReconnectingSource<VideoReader>(
                name: url, policy: policy, pacesFrames: !kind.isLive, shouldStop: shouldStop) {
                    try VideoReader(url: url, input: InputOptions(), lowDelay: true, interrupt: shouldStop)
                }
            let analyzer = try LiveAnalysis.analyzer(models: models, classifier: try ShippedModel.load(),
                                                     frameRate: source.current.info.frameRate?.value ?? 25)
            let csv = CSVSink(writer: try TimelineCSVWriter(path: csvPath, includesWallTime: true))
            snapshot.withLock { $0.state = "running" }
            _ = try PipelineRunner(source: source, analyzer: analyzer, sinks: [csv, self], queueCapacity: 2,
                                   dropsStaleFrames: true, analysisQueueCapacity: 1).run(shouldStop: shouldStop)
            snapshot.withLock { $0.state = "stopped" }
        } catch {
            snapshot.withLock {
                $0.state = "failed"
                $0.error = "\(error)"
            }
        }
    }

    func consume(_ annotated: AnnotatedFrame) throws {
        let image = annotated.frame.image
        let record = LiveFrameResult(frame: annotated.frame.index, timeS: annotated.frame.seconds, width: image.width,
                                     height: image.height, faces: annotated.faces.map(LiveFrameResult.Face.init), timing: nil)
        var jpeg: Data?
        let now = Date()
        if now.timeIntervalSince(lastEncoded) >= 1 / Self.pageFrameRate {
            lastEncoded = now
            jpeg = try? encodeImage(renderer.render(annotated), as: .jpeg)
        }
        snapshot.withLock { current in
            current.record = record
            if let jpeg { current.jpeg = jpeg }
        }
    }

    func finish(completed: Bool) throws {}
}
