import Foundation
import XCTest

/// Paths, processes and the loopback RTSP server for the live-stream tests.
enum LiveTestSupport {
    /// The package root, found from this file's path (Tests/LiveStreamTests/LiveTestSupport.swift).
    static let packageRoot = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

    static func sample(_ name: String, file: StaticString = #filePath, line: UInt = #line) throws -> String {
        let path = packageRoot.appendingPathComponent("Samples/thirdparty/media/\(name)").path
        guard FileManager.default.fileExists(atPath: path) else {
            XCTFail("missing \(path): run Scripts/setup.sh first", file: file, line: line)
            throw XCTSkip("sample missing")
        }
        return path
    }

    /// .build/release/fer-annotate (or $FER_ANNOTATE_BINARY); fails when it was not built.
    static func binary(file: StaticString = #filePath, line: UInt = #line) throws -> String {
        let path = ProcessInfo.processInfo.environment["FER_ANNOTATE_BINARY"]
            ?? packageRoot.appendingPathComponent(".build/release/fer-annotate").path
        guard FileManager.default.isExecutableFile(atPath: path) else {
            XCTFail("no fer-annotate binary at \(path): run `swift build -c release` (Scripts/test.sh does)",
                    file: file, line: line)
            throw XCTSkip("binary missing")
        }
        return path
    }

    static func temporaryFolder() throws -> URL {
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("LiveStreamTests-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
        return url
    }

    /// The capability the server tests need: Debian's python3 with GStreamer's RTSP server bindings.
    /// Skips (with the reason printed) on a machine without them.
    static func requireRTSPServer() throws {
        let check = try RunningProcess(["/usr/bin/python3", "-c",
            "import gi; gi.require_version('Gst', '1.0'); gi.require_version('GstRtspServer', '1.0'); "
            + "from gi.repository import Gst, GstRtspServer"])
        let result = check.wait(timeout: 30)
        if result.status != 0 {
            let reason = "GStreamer's RTSP server is not installed (python3-gi, gir1.2-gst-rtsp-server-1.0, "
                + "gstreamer1.0-plugins-good/-bad; Scripts/setup.sh installs them): \(result.standardError.suffix(200))"
            if ProcessInfo.processInfo.environment["CI"] == "true" {
                // Scripts/setup.sh provides it, so under CI its absence is a setup failure, not a reason to skip.
                XCTFail("\(reason) (CI=true)")
            }
            print("skipping: \(reason)")
            throw XCTSkip(reason)
        }
    }

    struct Result {
        var status: Int32
        var standardOutput: String
        var standardError: String
        var seconds: Double
    }

    /// A child process whose output is collected in the background.
    final class RunningProcess: @unchecked Sendable {
        let process = Process()
        private let outPipe = Pipe(), errPipe = Pipe()
        private let lock = NSLock()
        private var outData = Data(), errData = Data()
        private let group = DispatchGroup()
        let started = Date()

        init(_ command: [String], environment: [String: String]? = nil) throws {
            process.executableURL = URL(fileURLWithPath: command[0].hasPrefix("/") ? command[0] : "/usr/bin/env")
            process.arguments = command[0].hasPrefix("/") ? Array(command.dropFirst()) : command
            if let environment { process.environment = environment }
            process.standardOutput = outPipe
            process.standardError = errPipe
            process.standardInput = FileHandle.nullDevice
            try process.run()
            for (pipe, isError) in [(outPipe, false), (errPipe, true)] {
                group.enter()
                DispatchQueue.global().async { [self] in
                    let handle = pipe.fileHandleForReading
                    while true {
                        let chunk = handle.availableData
                        if chunk.isEmpty { break }
                        lock.withLock { if isError { errData.append(chunk) } else { outData.append(chunk) } }
                    }
                    group.leave()
                }
            }
        }

        var standardOutput: String { lock.withLock { String(decoding: outData, as: UTF8.self) } }

        /// Waits for the process (killing it after `timeout` seconds) and returns what it printed.
        func wait(timeout: Double) -> Result {
            let deadline = Date().addingTimeInterval(timeout)
            while process.isRunning && Date() < deadline { Thread.sleep(forTimeInterval: 0.05) }
            if process.isRunning { kill(process.processIdentifier, SIGKILL) }
            process.waitUntilExit()
            group.wait()
            return lock.withLock {
                Result(status: process.terminationStatus, standardOutput: String(decoding: outData, as: UTF8.self),
                       standardError: String(decoding: errData, as: UTF8.self),
                       seconds: Date().timeIntervalSince(started))
            }
        }

        func signal(_ number: Int32) { if process.isRunning { kill(process.processIdentifier, number) } }
    }

    /// Scripts/rtsp_test_server.py serving `sample` on 127.0.0.1 in real time.
    final class RTSPServer {
        let url: String
        let port: Int
        private let running: RunningProcess

        /// Starts the server (port 0: any free one) and waits until it listens.
        init(sample: String, port: Int = 0, seconds: Double = 120) throws {
            let script = LiveTestSupport.packageRoot.appendingPathComponent("Scripts/rtsp_test_server.py").path
            running = try RunningProcess(["/usr/bin/python3", script, "--input", sample, "--port", String(port),
                                          "--seconds", String(seconds)])
            let deadline = Date().addingTimeInterval(30)
            var found: String?
            while Date() < deadline, running.process.isRunning {
                if let line = running.standardOutput.split(separator: "\n").first(where: { $0.hasPrefix("READY ") }) {
                    found = String(line.dropFirst("READY ".count))
                    break
                }
                Thread.sleep(forTimeInterval: 0.05)
            }
            guard let found, let portText = found.split(separator: ":").last?.split(separator: "/").first,
                  let bound = Int(portText) else {
                let result = running.wait(timeout: 1)
                throw Failure("the RTSP test server did not start: \(result.standardError.suffix(400))")
            }
            url = found
            self.port = bound
        }

        /// Ends the server at once (SIGKILL, as a crash or a pulled cable would).
        func kill() {
            running.signal(SIGKILL)
            _ = running.wait(timeout: 5)
        }

        deinit { kill() }
    }

    /// A TCP port on 127.0.0.1 that nothing listens on (bound, read, released).
    /// Waits (up to `timeout` s) until something on this machine listens on `port` (TCP) or has it bound (UDP),
    /// read from /proc/net, so the check does not take the listener's one connection. False on timeout.
    @discardableResult
    static func waitUntilListening(port: Int, udp: Bool = false, timeout: Double = 20) -> Bool {
        let hexPort = String(format: ":%04X", port)
        let tables = udp ? ["/proc/net/udp", "/proc/net/udp6"] : ["/proc/net/tcp", "/proc/net/tcp6"]
        let deadline = Date().addingTimeInterval(timeout)
        while Date() < deadline {
            for table in tables {
                let rows = ((try? String(contentsOfFile: table, encoding: .utf8)) ?? "").split(separator: "\n").dropFirst()
                for row in rows {
                    let fields = row.split(separator: " ")
                    // local_address is field 1; TCP state 0A is LISTEN (UDP sockets have no listen state).
                    if fields.count > 3, fields[1].hasSuffix(hexPort), udp || fields[3] == "0A" { return true }
                }
            }
            Thread.sleep(forTimeInterval: 0.05)
        }
        return false
    }

    /// Waits (up to `timeout` s) until the text file at `path` has at least `lines` lines. False on timeout.
    @discardableResult
    static func waitForLines(_ path: String, atLeast lines: Int, timeout: Double = 30) -> Bool {
        let deadline = Date().addingTimeInterval(timeout)
        while Date() < deadline {
            let text = (try? String(contentsOfFile: path, encoding: .utf8)) ?? ""
            if text.split(separator: "\n").count >= lines { return true }
            Thread.sleep(forTimeInterval: 0.05)
        }
        return false
    }

    static func unusedPort() -> Int {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        defer { close(fd) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = 0
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        _ = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, length) }
        }
        _ = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &length) }
        }
        return Int(UInt16(bigEndian: address.sin_port))
    }

    /// The CSV as rows of named fields (the header gives the names); fails when a row has another field count.
    static func readCSV(_ path: String, file: StaticString = #filePath, line: UInt = #line) throws -> [[String: String]] {
        let text = try String(contentsOfFile: path, encoding: .utf8)
        var lines = text.split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
        if lines.last == "" { lines.removeLast() }
        guard let header = lines.first?.split(separator: ",", omittingEmptySubsequences: false).map(String.init) else {
            return []
        }
        return lines.dropFirst().enumerated().map { number, row in
            let fields = row.split(separator: ",", omittingEmptySubsequences: false).map(String.init)
            XCTAssertEqual(fields.count, header.count, "CSV row \(number + 1) has \(fields.count) fields", file: file, line: line)
            return Dictionary(uniqueKeysWithValues: zip(header, fields))
        }
    }

    struct Failure: Error, CustomStringConvertible {
        let description: String
        init(_ description: String) { self.description = description }
    }

    static func readJSON(_ path: String) throws -> [String: Any] {
        try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: path))) as? [String: Any] ?? [:]
    }

    /// Decoded video frames and duration, from ffprobe.
    static func probe(_ path: String) throws -> (frames: Int, duration: Double) {
        let probe = try RunningProcess(["ffprobe", "-v", "error", "-count_frames", "-select_streams", "v:0",
                                        "-show_entries", "stream=nb_read_frames:format=duration", "-of", "json", path])
        let result = probe.wait(timeout: 60)
        guard result.status == 0,
              let json = try JSONSerialization.jsonObject(with: Data(result.standardOutput.utf8)) as? [String: Any]
        else { throw Failure("ffprobe failed on \(path): \(result.standardError)") }
        let stream = (json["streams"] as? [[String: Any]])?.first ?? [:]
        let format = json["format"] as? [String: Any] ?? [:]
        return (Int(stream["nb_read_frames"] as? String ?? "") ?? 0, Double(format["duration"] as? String ?? "") ?? .nan)
    }
}
