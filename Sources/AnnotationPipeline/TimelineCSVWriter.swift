import Foundation
import VisionCore

/// The per-frame, per-face emotion timeline: one row per face per frame, and one row with empty face fields for
/// each frame without faces, so the time axis is complete. Rows are written and flushed frame by frame:
/// a crash or Ctrl-C loses nothing already analysed, and no row is ever half written.
public final class TimelineCSVWriter {
    public let path: String
    public let includesWallTime: Bool
    /// Two more columns at the end for live runs: `event` ("reconnect" on the rows of the first frame after a
    /// gap, else empty) and `gap_s` (the gap's wall-clock seconds on those rows).
    public let includesEvents: Bool
    private let handle: FileHandle
    public private(set) var rowsWritten = 0

    public static func header(includesWallTime: Bool, includesEvents: Bool = false) -> String {
        var columns = ["frame", "time_s"]
        if includesWallTime { columns.append("wall_time") }
        columns += ["face_id", "x", "y", "w", "h", "det_score"]
        columns += Emotion.names
        columns += ["emotion", "confidence"]
        columns += Emotion.names.map { "raw_" + $0 }
        if includesEvents { columns += ["event", "gap_s"] }
        return columns.joined(separator: ",")
    }

    public init(path: String, includesWallTime: Bool = false, includesEvents: Bool = false) throws {
        self.path = path
        self.includesWallTime = includesWallTime
        self.includesEvents = includesEvents
        let header = Self.header(includesWallTime: includesWallTime, includesEvents: includesEvents)
        guard FileManager.default.createFile(atPath: path, contents: Data((header + "\n").utf8)),
              let handle = FileHandle(forWritingAtPath: path) else {
            throw CocoaError(.fileWriteNoPermission, userInfo: [NSFilePathErrorKey: path])
        }
        handle.seekToEndOfFile()
        self.handle = handle
    }

    deinit { try? handle.close() }

    private let wallTimeFormatter: ISO8601DateFormatter = {
        let formatter = ISO8601DateFormatter()
        formatter.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
        return formatter
    }()

    /// The rows of one frame, as text; `event` fills the event columns (when the writer has them).
    public func rows(for annotated: AnnotatedFrame, event: TimelineEvent? = nil) -> String {
        let text = plainRows(for: annotated)
        guard includesEvents else { return text }
        let suffix = "," + (event?.name ?? "") + "," + (event?.gapSeconds.map { String(format: "%.3f", $0) } ?? "") + "\n"
        return text.split(separator: "\n").map { $0 + suffix }.joined()
    }

    /// The rows of one frame, as text (event columns, if any, left out).
    private func plainRows(for annotated: AnnotatedFrame) -> String {
        var prefix = "\(annotated.frame.index),\(String(format: "%.6f", annotated.frame.seconds))"
        if includesWallTime { prefix += "," + wallTimeFormatter.string(from: annotated.arrival ?? Date()) }
        if annotated.faces.isEmpty {
            return prefix + String(repeating: ",", count: 6 + 7 + 2 + 7) + "\n"
        }
        var text = ""
        for face in annotated.faces {
            let box = face.box
            var fields = [prefix, String(face.trackID),
                          String(format: "%.1f", box.x), String(format: "%.1f", box.y),
                          String(format: "%.1f", box.width), String(format: "%.1f", box.height),
                          face.detectionScore.map { String(format: "%.4f", $0) } ?? ""]
            if face.isClassified {
                fields += face.smoothed.probabilities.map { String(format: "%.5f", $0) }
                fields += [face.emotion.name, String(format: "%.5f", face.smoothed.confidence)]
                fields += face.rawProbabilities.map { String(format: "%.5f", $0) }
            } else {
                fields += Array(repeating: "", count: 7 + 2 + 7)  // --faces-only: no emotion
            }
            text += fields.joined(separator: ",") + "\n"
        }
        return text
    }

    /// Appends and flushes one frame's rows in a single write.
    public func write(_ annotated: AnnotatedFrame, event: TimelineEvent? = nil) throws {
        let text = rows(for: annotated, event: event)
        try handle.write(contentsOf: Data(text.utf8))
        rowsWritten += max(1, annotated.faces.count)
    }

    public func close() throws {
        try handle.synchronize()
        try handle.close()
    }
}

/// Something that happened to the stream at a frame, for the live CSV's `event` and `gap_s` columns.
public struct TimelineEvent: Sendable, Equatable {
    public var name: String
    public var gapSeconds: Double?

    public init(name: String, gapSeconds: Double? = nil) {
        self.name = name
        self.gapSeconds = gapSeconds
    }
}
