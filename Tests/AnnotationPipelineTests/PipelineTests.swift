import AnnotationPipeline
import EmotionModel
import Foundation
import MediaIO
import VisionCore
import XCTest

/// A synthetic clip: a bright square (the "face") drifting right over a dark background, 30 fps.
final class FakeSource: FrameSource {
    let count: Int
    private var index = 0
    init(count: Int) { self.count = count }

    static func box(at index: Int) -> Box { Box(x: Float(20 + index), y: 30, width: 60, height: 60) }

    func nextFrame() throws -> Frame? {
        guard index < count else { return nil }
        var pixels = [UInt8](repeating: 30, count: 160 * 120 * 3)
        let box = FakeSource.box(at: index)
        for y in Int(box.y)..<Int(box.maxY) {
            for x in Int(box.x)..<Int(box.maxX) {
                let value = UInt8(120 + (x * 3 + y * 5 + index) % 100)
                for channel in 0..<3 { pixels[(y * 160 + x) * 3 + channel] = value }
            }
        }
        let frame = Frame(image: Image(width: 160, height: 120, format: .rgb24, pixels: pixels),
                          timestamp: Timestamp(ticks: Int64(index), timeBase: Rational(1, 30)), duration: 1, index: index)
        index += 1
        return frame
    }
}

/// FakeSource that fails when asked for frame `failingAt`, as a truncated file does.
final class FailingSource: FrameSource {
    struct Truncated: Error {}
    private let frames: FakeSource
    private let failingAt: Int
    private var index = 0
    init(count: Int, failingAt: Int) { frames = FakeSource(count: count); self.failingAt = failingAt }

    func nextFrame() throws -> Frame? {
        defer { index += 1 }
        if index == failingAt { throw Truncated() }
        return try frames.nextFrame()
    }
}

/// Reports the square where it is, except on the frames listed in `missing`.
final class FakeDetector: FaceDetector {
    let missing: Set<Int>
    private var calls = 0
    init(missing: Set<Int> = []) { self.missing = missing }

    func detect(in image: Image) throws -> [Detection] {
        defer { calls += 1 }
        if missing.contains(calls) { return [] }
        return [Detection(box: FakeSource.box(at: calls), score: 0.9)]
    }
}

/// Finds FakeSource's bright square by its pixels: a function of the frame alone, as a frame stage must be.
final class BrightSquareFinder: FaceDetector {
    private(set) var calls = 0

    func detect(in image: Image) throws -> [Detection] {
        calls += 1
        var (minX, minY, maxX, maxY) = (Int.max, Int.max, -1, -1)
        for y in 0..<image.height {
            for x in 0..<image.width where image.pixels[(y * image.width + x) * 3] > 100 {
                (minX, minY, maxX, maxY) = (min(minX, x), min(minY, y), max(maxX, x), max(maxY, y))
            }
        }
        guard maxX >= 0 else { return [] }
        return [Detection(box: Box(x: Float(minX), y: Float(minY), width: Float(maxX - minX + 1),
                                   height: Float(maxY - minY + 1)), score: 0.9)]
    }
}

/// BrightSquareFinder as the frame stage, and a remainder that depends on the calls before it (a second face on
/// every fourth call, at a place that moves with the call count), like HybridFaceDetector's accurate searches.
final class FakeStagedDetector: StagedFaceDetector {
    private(set) var stages: [BrightSquareFinder] = []
    private var remainderCalls = 0

    func makeFrameStage() throws -> FaceDetector? {
        stages.append(BrightSquareFinder())
        return stages.last
    }

    func detect(in image: Image) throws -> [Detection] {
        try detect(in: image, frameStageDetections: try BrightSquareFinder().detect(in: image))
    }

    func detect(in image: Image, frameStageDetections: [Detection]) throws -> [Detection] {
        defer { remainderCalls += 1 }
        guard remainderCalls % 4 == 0 else { return frameStageDetections }
        return frameStageDetections + [Detection(box: Box(x: 100, y: Float(remainderCalls % 40), width: 30, height: 30),
                                                 score: 0.8)]
    }
}

final class CollectingSink: FrameSink {
    var frames: [AnnotatedFrame] = []
    var finishedCompleted: Bool?
    func consume(_ annotated: AnnotatedFrame) throws { frames.append(annotated) }
    func finish(completed: Bool) throws { finishedCompleted = completed }
}

final class PipelineTests: XCTestCase {
    func testEveryFrameComesThroughInOrderWithOneStableTrack() throws {
        let classifier = try ShippedModel.load()
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("pipeline-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: folder) }
        let csvPath = folder.appendingPathComponent("timeline.csv").path

        var options = AnalysisOptions()
        options.tracker.confirmHits = 1
        let analyzer = FrameAnalyzer(detector: FakeDetector(missing: [10, 11, 12]), classifier: classifier, options: options)
        let collector = CollectingSink()
        let runner = PipelineRunner(source: FakeSource(count: 60), analyzer: analyzer,
                                    sinks: [collector, CSVSink(writer: try TimelineCSVWriter(path: csvPath))], queueCapacity: 2)
        let statistics = try runner.run()
        XCTAssertEqual(statistics.framesRead, 60)
        XCTAssertEqual(statistics.framesAnalyzed, 60)
        XCTAssertEqual(collector.frames.map(\.frame.index), Array(0..<60), "order kept")
        XCTAssertEqual(collector.finishedCompleted, true)
        // The three missed detections are bridged by the tracker: one ID throughout, boxes predicted there.
        XCTAssertEqual(Set(collector.frames.flatMap { $0.faces.map(\.trackID) }), [1])
        XCTAssertTrue(collector.frames.allSatisfy { $0.faces.count == 1 })
        XCTAssertNil(collector.frames[11].faces[0].detectionScore)
        XCTAssertEqual(collector.frames[20].faces[0].detectionScore, 0.9)

        let lines = try String(contentsOfFile: csvPath, encoding: .utf8).split(separator: "\n")
        XCTAssertEqual(String(lines[0]), TimelineCSVWriter.header(includesWallTime: false))
        XCTAssertEqual(lines.count, 61, "header + one row per frame")
        var rawVariation: Float = 0, smoothVariation: Float = 0
        var previous: (raw: [Float], smooth: [Float])?
        let margin = options.smoothing.switchMargin, holdSeconds = options.smoothing.switchSeconds
        var behindSince: Double?
        for line in lines.dropFirst() {
            let fields = line.split(separator: ",", omittingEmptySubsequences: false).map(String.init)
            XCTAssertEqual(fields.count, 8 + 7 + 2 + 7)
            let frame = Int(fields[0])!, time = Double(fields[1])!
            let smooth = fields[8..<15].map { Float($0)! }, raw = fields[17..<24].map { Float($0)! }
            XCTAssertEqual(smooth.reduce(0, +), 1, accuracy: 1e-3)
            XCTAssertEqual(raw.reduce(0, +), 1, accuracy: 1e-3)
            // det_score is empty exactly on the frames the tracker bridged (no detection: 10, 11, 12).
            XCTAssertEqual(fields[7].isEmpty, [10, 11, 12].contains(frame), "frame \(frame)")
            // `emotion` is the smoothed leader, or a label within the margin of it that has trailed for less than
            // the switch time; `confidence` is the smoothed probability of `emotion` (CSV rounding: 1e-5).
            let shown = try XCTUnwrap(Emotion(name: fields[15])).rawValue
            let leader = smooth.indices.max { smooth[$0] < smooth[$1] }!
            XCTAssertEqual(Float(fields[16])!, smooth[shown], accuracy: 1e-5, "frame \(frame)")
            if smooth[shown] < smooth[leader] {
                let since = behindSince ?? time
                behindSince = since
                XCTAssertLessThan(smooth[leader] - smooth[shown], margin + 1e-4, "frame \(frame)")
                XCTAssertLessThan(time - since, holdSeconds, "frame \(frame): held behind the leader since \(since) s")
            } else {
                behindSince = nil
            }
            if let previous {
                rawVariation += zip(raw, previous.raw).map { abs($0 - $1) }.reduce(0, +)
                smoothVariation += zip(smooth, previous.smooth).map { abs($0 - $1) }.reduce(0, +)
            }
            previous = (raw, smooth)
        }
        XCTAssertLessThan(smoothVariation, rawVariation, "smoothing lowers total variation")
    }

    /// Frames dealt to three detection threads (frame stages) and tracked in order give exactly what detection
    /// on the locate thread gives, with --detect-every 2, and every stage takes its share of the frames.
    func testDetectionThreadsGiveTheSameResultsAsOne() throws {
        let classifier = try ShippedModel.load()
        var options = AnalysisOptions()
        options.tracker.confirmHits = 1
        options.detectEvery = 2
        func run(stageCount: Int) throws -> (frames: [AnnotatedFrame], detector: FakeStagedDetector) {
            let detector = FakeStagedDetector()
            let stages = try (0..<stageCount).compactMap { _ in try detector.makeFrameStage() }
            let analyzer = FrameAnalyzer(detector: detector, classifier: classifier, options: options, frameStages: stages)
            let collector = CollectingSink()
            let statistics = try PipelineRunner(source: FakeSource(count: 41), analyzer: analyzer, sinks: [collector],
                                                queueCapacity: 2).run()
            XCTAssertEqual(statistics.framesAnalyzed, 41)
            return (collector.frames, detector)
        }
        let (dealt, stagedDetector) = try run(stageCount: 3)
        let (alone, _) = try run(stageCount: 0)
        XCTAssertEqual(dealt.map(\.frame.index), Array(0..<41), "order kept")
        XCTAssertEqual(stagedDetector.stages.map(\.calls), [7, 7, 7], "frames 0, 2, ..., 40 dealt in turn")
        XCTAssertGreaterThan(Set(alone.flatMap { $0.faces.map(\.trackID) }).count, 1, "the remainder's faces are tracked")
        for (one, other) in zip(dealt, alone) {
            XCTAssertEqual(one.faces.map(\.trackID), other.faces.map(\.trackID), "frame \(one.frame.index)")
            XCTAssertEqual(one.faces.map(\.box), other.faces.map(\.box), "frame \(one.frame.index)")
            XCTAssertEqual(one.faces.map(\.detectionScore), other.faces.map(\.detectionScore), "frame \(one.frame.index)")
            XCTAssertEqual(one.faces.map(\.rawProbabilities), other.faces.map(\.rawProbabilities), "frame \(one.frame.index)")
        }
    }

    /// A source failing part way with frames dealt to detection threads: every frame before the failure comes
    /// through, in order, the error is reported, and the sinks are finished as incomplete.
    func testDetectionThreadsStopCleanlyWhenTheSourceFails() throws {
        let classifier = try ShippedModel.load()
        var options = AnalysisOptions()
        options.tracker.confirmHits = 1
        let detector = FakeStagedDetector()
        let stages = try (0..<2).compactMap { _ in try detector.makeFrameStage() }
        let analyzer = FrameAnalyzer(detector: detector, classifier: classifier, options: options, frameStages: stages)
        let collector = CollectingSink()
        let statistics = try PipelineRunner(source: FailingSource(count: 40, failingAt: 15), analyzer: analyzer,
                                            sinks: [collector], queueCapacity: 2).run()
        XCTAssertTrue(statistics.sourceError is FailingSource.Truncated)
        XCTAssertEqual(statistics.framesAnalyzed, 15)
        XCTAssertEqual(collector.frames.map(\.frame.index), Array(0..<15))
        XCTAssertEqual(collector.finishedCompleted, false)
        XCTAssertEqual(detector.stages.map(\.calls), [8, 7], "frames 0-14 dealt in turn")
    }

    func testFramesWithoutFacesGetEmptyRows() throws {
        let classifier = try ShippedModel.load()
        let csv = FileManager.default.temporaryDirectory.appendingPathComponent("empty-\(UUID().uuidString).csv").path
        defer { try? FileManager.default.removeItem(atPath: csv) }
        let analyzer = FrameAnalyzer(detector: FakeDetector(missing: Set(0..<10)), classifier: classifier)
        _ = try PipelineRunner(source: FakeSource(count: 10), analyzer: analyzer,
                               sinks: [CSVSink(writer: try TimelineCSVWriter(path: csv))]).run()
        let rows = try String(contentsOfFile: csv, encoding: .utf8).split(separator: "\n").dropFirst()
        XCTAssertEqual(rows.count, 10)
        for (index, row) in rows.enumerated() {
            let fields = row.split(separator: ",", omittingEmptySubsequences: false)
            XCTAssertEqual(fields.count, 24)
            XCTAssertEqual(Int(fields[0]), index)
            XCTAssertTrue(fields[2...].allSatisfy(\.isEmpty), "no face fields")
        }
    }

    func testStopRequestFinishesTheSinksEarly() throws {
        let classifier = try ShippedModel.load()
        let analyzer = FrameAnalyzer(detector: FakeDetector(), classifier: classifier)
        let collector = CollectingSink()
        let counter = Counter()
        let statistics = try PipelineRunner(source: FakeSource(count: 1000), analyzer: analyzer, sinks: [collector])
            .run(shouldStop: { counter.next() > 20 })
        XCTAssertTrue(statistics.stoppedEarly)
        XCTAssertLessThan(collector.frames.count, 1000)
        XCTAssertEqual(collector.finishedCompleted, false)
        XCTAssertEqual(collector.frames.map(\.frame.index), Array(0..<collector.frames.count), "a prefix, in order")
    }
}

final class Counter: @unchecked Sendable {
    private var value = 0
    private let lock = NSLock()
    func next() -> Int { lock.lock(); defer { lock.unlock() }; value += 1; return value }
}

final class BoundedQueueTests: XCTestCase {
    func testDroppingOldestKeepsTheNewest() {
        let queue = BoundedQueue<Int>(capacity: 3)
        for value in 0..<10 { queue.pushDroppingOldest(value) }
        XCTAssertEqual(queue.droppedCount, 7)
        queue.close()
        XCTAssertEqual([queue.pop(), queue.pop(), queue.pop(), queue.pop()], [7, 8, 9, nil])
    }

    func testBlockingPushWaitsForTheConsumerAndLosesNothing() {
        let queue = BoundedQueue<Int>(capacity: 2)
        let producer = Thread {
            for value in 0..<500 { queue.push(value) }
            queue.close()
        }
        producer.start()
        var received: [Int] = []
        while let value = queue.pop() {
            XCTAssertLessThanOrEqual(queue.count, 2)
            received.append(value)
        }
        XCTAssertEqual(received, Array(0..<500))
    }
}

final class RendererTests: XCTestCase {
    func testLabelsAreAntialiasedTextInTheEmotionColour() throws {
        let renderer = try FrameRenderer()
        let image = Image(width: 640, height: 360, format: .rgb24, pixels: [UInt8](repeating: 40, count: 640 * 360 * 3))
        let frame = Frame(image: image, timestamp: Timestamp(ticks: 0, timeBase: Rational(1, 30)), duration: 1, index: 0)
        let face = FaceAnnotation(trackID: 3, box: Box(x: 200, y: 120, width: 150, height: 150), detectionScore: 0.9,
                                  rawProbabilities: [0, 0, 0, 1, 0, 0, 0],
                                  smoothed: SmoothedEmotion(probabilities: [0, 0, 0, 1, 0, 0, 0], label: 3, confidence: 1))
        let drawn = renderer.render(AnnotatedFrame(frame: frame, faces: [face]))
        // Box edge in happy yellow (#FDD835).
        let edge = (125 * 640 + 200) * 3
        XCTAssertEqual(Array(drawn.pixels[edge..<(edge + 3)]), [0xFD, 0xD8, 0x35])
        // The label sits above the box: black text on yellow, with antialiased in-between shades.
        var shades = Set<UInt8>()
        for y in 95..<120 { for x in 200..<330 { shades.insert(drawn.pixels[(y * 640 + x) * 3]) } }
        XCTAssertTrue(shades.contains(0), "text pixels")
        XCTAssertGreaterThan(shades.count, 10, "antialiasing gives many grey levels, not a two-colour dot font")
        // Outside the annotations nothing changes.
        XCTAssertEqual(drawn.pixels[(350 * 640 + 10) * 3], 40)
    }
}
