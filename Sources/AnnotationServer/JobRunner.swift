import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// Runs uploaded files through the file pipeline, at most `limit` at once, the rest queued in upload order.
/// Each job is a `fer-annotate` process of its own (the same executable as the server), so a job that fails
/// cannot take the server down, and stopping one is the CLI's own SIGTERM path: outputs finished up to there.
/// Progress comes from the `--jsonl` records the process prints, one per frame, with its stream time.
public actor JobRunner {
    public let store: JobStore
    public let folder: JobFolders
    public let executable: String
    public let limit: Int
    private var queue: [String] = []
    private var running: [String: Process] = [:]
    /// Jobs stopped on purpose (deleted or shut down), so their exit is not reported as a failure.
    private var stopping: [String: JobState] = [:]

    public init(store: JobStore, folder: JobFolders, executable: String, limit: Int) {
        self.store = store
        self.folder = folder
        self.executable = executable
        self.limit = max(1, limit)
    }

    public func enqueue(_ id: String) {
        queue.append(id)
        startWaiting()
    }

    /// Stops a job (queued or running) and forgets it; its folder is the caller's to remove.
    public func cancel(_ id: String) async {
        queue.removeAll { $0 == id }
        guard let process = running[id] else { return }
        stopping[id] = .interrupted
        process.terminate()
        while running[id] != nil { try? await Task.sleep(nanoseconds: 20_000_000) }
    }

    /// SIGTERM to every running job; each finishes its outputs and is marked interrupted.
    public func shutDown() async {
        queue.removeAll()
        for (id, process) in running {
            stopping[id] = .interrupted
            process.terminate()
        }
        while !running.isEmpty { try? await Task.sleep(nanoseconds: 20_000_000) }
    }

    public var activeCount: Int { running.count }

    private func startWaiting() {
        while running.count < limit, !queue.isEmpty {
            let id = queue.removeFirst()
            do {
                try start(id)
            } catch {
                _ = try? store.update(id) { job in
                    job.state = .failed
                    job.error = "could not start the analysis: \(error)"
                }
            }
        }
    }

    private func start(_ id: String) throws {
        guard let job = try store.job(id) else { return }
        let paths = folder.paths(for: job)
        let process = Process()
        process.executableURL = URL(fileURLWithPath: executable)
        var arguments = [paths.input, "-o", paths.annotated, "--csv", paths.timeline, "--json", paths.summary,
                         "--overwrite", "-q"]
        if !job.isImage { arguments.append("--jsonl") }
        process.arguments = arguments + job.options
        let output = Pipe()
        process.standardOutput = output
        _ = FileManager.default.createFile(atPath: paths.log, contents: nil)
        process.standardError = try FileHandle(forWritingTo: URL(fileURLWithPath: paths.log))
        process.standardInput = FileHandle.nullDevice
        let duration = job.duration
        process.terminationHandler = { [weak self] process in
            let status = process.terminationStatus
            Task { await self?.finished(id, status: status) }
        }
        try process.run()
        running[id] = process
        try store.update(id) { job in
            job.state = .running
            job.progress = 0
        }
        // Progress: the last frame's time over the duration, written at most a few times a second.
        let store = self.store
        Thread.detachNewThread {
            let handle = output.fileHandleForReading
            var pending = Data()
            var lastWrite = Date.distantPast
            while true {
                let chunk = handle.availableData
                if chunk.isEmpty { break }
                pending.append(chunk)
                guard let lastNewline = pending.lastIndex(of: UInt8(ascii: "\n")) else { continue }
                let lines = pending[pending.startIndex..<lastNewline]
                pending = Data(pending[(lastNewline + 1)...])
                guard let duration, duration > 0, Date().timeIntervalSince(lastWrite) > 0.25,
                      let line = lines.split(separator: UInt8(ascii: "\n")).last,
                      let record = try? JSONSerialization.jsonObject(with: Data(line)) as? [String: Any],
                      let time = record["time_s"] as? Double else { continue }
                lastWrite = Date()
                _ = try? store.update(id) { job in
                    if job.state == .running { job.progress = min(0.99, max(job.progress, time / duration)) }
                }
            }
        }
    }

    private func finished(_ id: String, status: Int32) {
        running[id] = nil
        let stoppedAs = stopping.removeValue(forKey: id)
        let log = (try? String(contentsOfFile: folder.paths(forID: id).log, encoding: .utf8)) ?? ""
        let lastError = log.split(separator: "\n").last { $0.hasPrefix("error:") }
            .map { String($0.dropFirst("error:".count)).trimmingCharacters(in: .whitespaces) }
        _ = try? store.update(id) { job in
            if let stoppedAs {
                job.state = stoppedAs
                job.error = "stopped before the end; the outputs cover the part analysed"
            } else if status == 0 {
                job.state = .done
                job.progress = 1
                job.error = nil
            } else if status == 130 || status == 143 {
                job.state = .interrupted
                job.error = "stopped before the end; the outputs cover the part analysed"
            } else {
                job.state = .failed
                job.error = lastError ?? "fer-annotate exited with status \(status)"
            }
        }
        startWaiting()
    }
}

/// Where a job's files live: `<data>/jobs/<id>/` with fixed names inside, so nothing a user sends becomes a path.
public struct JobFolders: Sendable {
    public let root: URL

    public init(root: URL) { self.root = root }

    public struct Paths: Sendable {
        public let folder: String
        public let input: String
        public let annotated: String
        public let timeline: String
        public let summary: String
        public let log: String
    }

    /// IDs are the server's own UUIDs; anything else is refused before it gets near the file system.
    public static func isValidID(_ id: String) -> Bool {
        UUID(uuidString: id) != nil && id == id.lowercased()
    }

    public func paths(forID id: String, isImage: Bool = false) -> Paths {
        let folder = root.appendingPathComponent(id).path
        return Paths(folder: folder, input: folder + "/input", annotated: folder + (isImage ? "/annotated.jpg" : "/annotated.mp4"),
                     timeline: folder + "/timeline.csv", summary: folder + "/summary.json", log: folder + "/log.txt")
    }

    public func paths(for job: Job) -> Paths { paths(forID: job.id, isImage: job.isImage) }
}
