import Foundation
import MediaIO
import VisionCore

/// The live timeline CSV: wall_time beside time_s, and the rows of the first frame after each reconnect marked
/// with `event` = reconnect and the gap's length in `gap_s` (found by frame index, so a gap is marked even when
/// the frames right after it were dropped).
public final class LiveCSVSink: FrameSink {
    public let writer: TimelineCSVWriter
    private let resumedGaps: (Int) -> [StreamGap]
    private var marked = 0

    /// - Parameter resumedGaps: the gaps whose first frame after the reconnect has an index <= the argument.
    public init(writer: TimelineCSVWriter, resumedGaps: @escaping (Int) -> [StreamGap] = { _ in [] }) {
        self.writer = writer
        self.resumedGaps = resumedGaps
    }

    public func consume(_ annotated: AnnotatedFrame) throws {
        var event: TimelineEvent?
        let gaps = resumedGaps(annotated.frame.index)
        if gaps.count > marked {
            // Several gaps between two analysed frames: report the time without frames of them all.
            let seconds = gaps[marked...].compactMap(\.seconds).reduce(0, +)
            event = TimelineEvent(name: "reconnect", gapSeconds: seconds)
            marked = gaps.count
        }
        try writer.write(annotated, event: event)
    }

    public func finish(completed: Bool) throws { try writer.close() }
}

/// The annotated video in files of `segmentSeconds` of stream time each, named after their start on the wall
/// clock: out.mp4 -> out-20250101-120000.mp4, out-20250101-121000.mp4, ... Each file starts at time 0
/// with a keyframe and is finished (playable) when the next one starts.
public final class SegmentedVideoSink: FrameSink {
    /// Makes the writer for one segment: its path, and the stream time (seconds) it starts at.
    public typealias WriterFactory = (_ path: String, _ startTime: Double) throws -> VideoWriter

    public let basePath: String
    public let segmentSeconds: Double
    public private(set) var paths: [String] = []
    public private(set) var framesWritten = 0
    public private(set) var encoderName: String?
    public private(set) var adjustedTimestamps = 0
    private let renderer: FrameRenderer
    private let makeWriter: WriterFactory
    private var writer: VideoWriter?
    private var segmentStart = 0.0

    public init(basePath: String, segmentSeconds: Double, renderer: FrameRenderer, makeWriter: @escaping WriterFactory) {
        self.basePath = basePath
        self.segmentSeconds = segmentSeconds
        self.renderer = renderer
        self.makeWriter = makeWriter
    }

    public func consume(_ annotated: AnnotatedFrame) throws {
        let time = annotated.frame.seconds
        if writer == nil || time - segmentStart >= segmentSeconds {
            try closeSegment()
            let path = SegmentedVideoSink.path(base: basePath, start: annotated.arrival ?? Date())
            writer = try makeWriter(path, time)
            encoderName = writer?.encoderName
            segmentStart = time
            paths.append(path)
        }
        var frame = annotated.frame
        frame.image = renderer.render(annotated)
        try writer?.write(frame)
        framesWritten += 1
    }

    public func finish(completed: Bool) throws { try closeSegment() }

    private func closeSegment() throws {
        guard let writer else { return }
        self.writer = nil
        adjustedTimestamps += writer.adjustedTimestamps
        try writer.finish(audioThroughEnd: false)
    }

    /// `base` with the local start time before its extension (and -2, -3, ... if that name is taken).
    static func path(base: String, start: Date) -> String {
        let formatter = DateFormatter()
        formatter.locale = Locale(identifier: "en_US_POSIX")
        formatter.dateFormat = "yyyyMMdd-HHmmss"
        let url = URL(fileURLWithPath: base)
        let stem = url.deletingPathExtension().path + "-" + formatter.string(from: start)
        let ext = url.pathExtension.isEmpty ? "" : "." + url.pathExtension
        var candidate = stem + ext
        var number = 2
        while FileManager.default.fileExists(atPath: candidate) {
            candidate = stem + "-\(number)" + ext
            number += 1
        }
        return candidate
    }
}
