import Foundation
import MediaIO

/// Everything fer-annotate prints goes to stderr through here; stdout stays free for data.
struct Console {
    let quiet: Bool
    /// Progress only makes sense on a terminal; logs and pipes get none.
    let isTerminal = isatty(STDERR_FILENO) != 0

    var showsProgress: Bool { isTerminal && !quiet }

    func error(_ message: String) { write("error: \(message)\n") }

    func warning(_ message: String) {
        if !quiet { write("warning: \(message)\n") }
    }

    func write(_ text: String) {
        FileHandle.standardError.write(Data(text.utf8))
    }

    func finished(_ summary: AnnotateJob.Summary, output: String) {
        if summary.corruptPackets > 0 {
            warning("skipped \(summary.corruptPackets) corrupt packet(s) in the input")
        }
        if summary.rescaledFrames > 0 {
            warning("scaled \(summary.rescaledFrames) frame(s) of another size to the output's (the input changed resolution)")
        }
        if summary.adjustedTimestamps > 0 {
            warning("moved \(summary.adjustedTimestamps) frame timestamp(s) that did not increase")
        }
        if let signal = summary.stoppedBy {
            warning("stopped by \(signal) after \(summary.frames) frames; \(output) is finished up to there")
        } else if showsProgress {
            let rate = summary.seconds > 0 ? Double(summary.frames) / summary.seconds : 0
            var line = "wrote \(output): \(summary.frames) frames in \(Progress.clock(summary.seconds)) "
                + "(\(String(format: "%.1f", rate)) fps), \(summary.tracks) face track(s)"
            if let encoder = summary.encoder { line += ", \(encoder), audio \(summary.audio)" }
            write(line + "\n")
        }
    }
}

/// The `frames 120/472  31.0 fps  ETA 0:11` line, redrawn in place at most four times a second.
struct Progress {
    let total: Int?
    let console: Console
    private let start = Date()
    private var lastDraw = Date.distantPast
    private var frames = 0
    private var drawn = false

    init(total: Int?, console: Console) {
        self.total = total
        self.console = console
    }

    var elapsed: Double { Date().timeIntervalSince(start) }

    mutating func advance(to frames: Int) {
        self.frames = frames
        guard console.showsProgress, Date().timeIntervalSince(lastDraw) >= 0.25 else { return }
        lastDraw = Date()
        let rate = elapsed > 0 ? Double(frames) / elapsed : 0
        var line = "frames \(frames)"
        if let total, total > 0 { line += "/\(total)" }
        line += String(format: "  %.1f fps", rate)
        if let total, total > frames, rate > 0 {
            line += "  ETA " + Progress.clock(Double(total - frames) / rate)
        }
        console.write("\r\u{1B}[K" + line)
        drawn = true
    }

    mutating func end() {
        if drawn { console.write("\r\u{1B}[K") }
        drawn = false
    }

    static func clock(_ seconds: Double) -> String {
        let whole = Int(seconds.rounded())
        return whole >= 3600
            ? String(format: "%d:%02d:%02d", whole / 3600, whole / 60 % 60, whole % 60)
            : String(format: "%d:%02d", whole / 60, whole % 60)
    }
}
