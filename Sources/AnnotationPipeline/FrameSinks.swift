import Foundation
import MediaIO
import VisionCore

/// The end of the pipeline: takes annotated frames in order; `finish` flushes and closes.
public protocol FrameSink: AnyObject {
    func consume(_ annotated: AnnotatedFrame) throws
    /// `completed` is false when the run stopped early (signal, read error).
    func finish(completed: Bool) throws
}

/// Draws the annotations and encodes the frame.
public final class VideoSink: FrameSink {
    private let writer: VideoWriter
    private let renderer: FrameRenderer
    /// Whether a source read to its end gets the rest of its audio; false when the frames are only a part of
    /// it (`--duration`), so the audio stops with the video.
    private let audioThroughEnd: Bool

    public init(writer: VideoWriter, renderer: FrameRenderer, audioThroughEnd: Bool = true) {
        self.writer = writer
        self.renderer = renderer
        self.audioThroughEnd = audioThroughEnd
    }

    public var framesWritten: Int { writer.framesWritten }
    public var encoderName: String { writer.encoderName }
    public var audio: AudioHandling { writer.audio }
    public var adjustedTimestamps: Int { writer.adjustedTimestamps }
    public var rescaledFrames: Int { writer.rescaledFrames }

    public func consume(_ annotated: AnnotatedFrame) throws {
        var frame = annotated.frame
        frame.image = renderer.render(annotated)
        try writer.write(frame)
    }

    public func finish(completed: Bool) throws {
        try writer.finish(audioThroughEnd: completed && audioThroughEnd)
    }
}

/// A still image in, an annotated still image out (.jpg or .png).
public final class ImageSink: FrameSink {
    public let path: String
    private let renderer: FrameRenderer

    public static func handles(path: String) -> Bool {
        ["jpg", "jpeg", "png"].contains((path as NSString).pathExtension.lowercased())
    }

    public init(path: String, renderer: FrameRenderer) {
        self.path = path
        self.renderer = renderer
    }

    public func consume(_ annotated: AnnotatedFrame) throws {
        try encodeImage(renderer.render(annotated), to: path)
    }

    public func finish(completed: Bool) throws {}
}

/// The timeline CSV, flushed frame by frame.
public final class CSVSink: FrameSink {
    public let writer: TimelineCSVWriter

    public init(writer: TimelineCSVWriter) { self.writer = writer }

    public func consume(_ annotated: AnnotatedFrame) throws { try writer.write(annotated) }
    public func finish(completed: Bool) throws { try writer.close() }
}

/// The same per-frame records as JSON Lines (one object per frame), for piping.
public final class JSONLinesSink: FrameSink {
    private let handle: FileHandle
    private let encoder = JSONEncoder()

    public init(handle: FileHandle = .standardOutput) {
        self.handle = handle
        encoder.outputFormatting = [.sortedKeys]
    }

    struct Record: Encodable {
        struct Face: Encodable {
            let face_id: Int
            let box: [Float]
            let det_score: Float?
            /// nil with --faces-only.
            let emotion: String?
            let confidence: Float?
            let probabilities: [String: Float]?
            let raw_probabilities: [String: Float]?
        }
        let frame: Int
        let time_s: Double
        let wall_time: String?
        let faces: [Face]
    }

    public func consume(_ annotated: AnnotatedFrame) throws {
        let names = Emotion.names
        let record = Record(
            frame: annotated.frame.index, time_s: annotated.frame.seconds,
            wall_time: annotated.arrival.map { ISO8601DateFormatter().string(from: $0) },
            faces: annotated.faces.map { face in
                Record.Face(face_id: face.trackID, box: [face.box.x, face.box.y, face.box.width, face.box.height],
                            det_score: face.detectionScore, emotion: face.isClassified ? face.emotion.name : nil,
                            confidence: face.isClassified ? face.smoothed.confidence : nil,
                            probabilities: face.isClassified ? Dictionary(uniqueKeysWithValues: zip(names, face.smoothed.probabilities)) : nil,
                            raw_probabilities: face.isClassified ? Dictionary(uniqueKeysWithValues: zip(names, face.rawProbabilities)) : nil)
            })
        var line = try encoder.encode(record)
        line.append(0x0A)
        try handle.write(contentsOf: line)
    }

    public func finish(completed: Bool) throws {}
}

/// Collects per-track summaries for the JSON report and the timeline plot.
public final class SummarySink: FrameSink {
    public private(set) var accumulator = TrackSummaryAccumulator()
    public private(set) var frames = 0
    public private(set) var lastTime = 0.0

    public init() {}

    public func consume(_ annotated: AnnotatedFrame) throws {
        accumulator.add(annotated)
        frames += 1
        lastTime = max(lastTime, annotated.frame.seconds)
    }

    public func finish(completed: Bool) throws {}
}
