import Foundation
import XCTest

/// Paths and process helpers shared by the MediaIO tests.
enum TestSupport {
    /// The package root, found from this file's path (Tests/MediaIOTests/TestSupport.swift).
    static let packageRoot: URL = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

    static let mediaFolder = packageRoot.appendingPathComponent("Samples/thirdparty/media")

    /// A sample from Samples/thirdparty/media, failing the test with a hint when setup has not run.
    static func sample(_ name: String, file: StaticString = #filePath, line: UInt = #line) throws -> String {
        let path = mediaFolder.appendingPathComponent(name).path
        guard FileManager.default.fileExists(atPath: path) else {
            XCTFail("missing \(path): run Scripts/setup.sh first", file: file, line: line)
            throw XCTSkip("sample missing")
        }
        return path
    }

    /// A fresh empty folder under the system temporary directory.
    static func temporaryFolder() throws -> URL {
        let url = FileManager.default.temporaryDirectory
            .appendingPathComponent("MediaIOTests-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
        return url
    }

    struct Result {
        var status: Int32
        var standardOutput: Data
        var standardError: String
        var output: String { String(decoding: standardOutput, as: UTF8.self) }
    }

    /// Runs a program (looked up on PATH when not absolute) and collects its output.
    @discardableResult
    static func run(_ program: String, _ arguments: [String]) throws -> Result {
        let process = Process()
        if program.hasPrefix("/") {
            process.executableURL = URL(fileURLWithPath: program)
            process.arguments = arguments
        } else {
            process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
            process.arguments = [program] + arguments
        }
        let outPipe = Pipe(), errPipe = Pipe()
        process.standardOutput = outPipe
        process.standardError = errPipe
        process.standardInput = FileHandle.nullDevice
        try process.run()
        // Read both pipes concurrently so neither fills up and blocks the child.
        nonisolated(unsafe) var errData = Data()
        let group = DispatchGroup()
        group.enter()
        DispatchQueue.global().async {
            errData = errPipe.fileHandleForReading.readDataToEndOfFile()
            group.leave()
        }
        let outData = outPipe.fileHandleForReading.readDataToEndOfFile()
        group.wait()
        process.waitUntilExit()
        return Result(status: process.terminationStatus, standardOutput: outData,
                      standardError: String(decoding: errData, as: UTF8.self))
    }

    /// Runs the ffmpeg CLI, failing when it does.
    static func ffmpeg(_ arguments: [String]) throws {
        let result = try run("ffmpeg", ["-nostdin", "-hide_banner", "-loglevel", "error", "-y"] + arguments)
        if result.status != 0 { throw TestFailure("ffmpeg \(arguments.joined(separator: " ")) failed: \(result.standardError)") }
    }

    struct TestFailure: Error, CustomStringConvertible {
        let description: String
        init(_ description: String) { self.description = description }
    }
}

/// What ffprobe says about a file: the reference the tests compare against.
struct Probe {
    struct Stream {
        var type: String
        var codec: String
        var pixelFormat: String?
        var width: Int?
        var height: Int?
        var frames: Int?
        var startTime: Double?
        var duration: Double?
    }
    var streams: [Stream]
    var duration: Double

    var video: Stream? { streams.first { $0.type == "video" } }
    var audio: Stream? { streams.first { $0.type == "audio" } }

    /// Runs `ffprobe -count_frames` (decoded frame counts, not header guesses).
    init(_ path: String) throws {
        let result = try TestSupport.run("ffprobe", [
            "-v", "error", "-count_frames", "-of", "json",
            "-show_entries", "format=duration:stream=codec_type,codec_name,pix_fmt,width,height,nb_read_frames,start_time,duration", path])
        guard result.status == 0,
              let json = try JSONSerialization.jsonObject(with: result.standardOutput) as? [String: Any]
        else { throw TestSupport.TestFailure("ffprobe failed on \(path): \(result.standardError)") }
        let format = json["format"] as? [String: Any] ?? [:]
        duration = Double(format["duration"] as? String ?? "") ?? .nan
        streams = (json["streams"] as? [[String: Any]] ?? []).map { s in
            Stream(type: s["codec_type"] as? String ?? "", codec: s["codec_name"] as? String ?? "",
                   pixelFormat: s["pix_fmt"] as? String, width: s["width"] as? Int, height: s["height"] as? Int,
                   frames: Int(s["nb_read_frames"] as? String ?? ""),
                   startTime: Double(s["start_time"] as? String ?? ""), duration: Double(s["duration"] as? String ?? ""))
        }
    }

    /// Presentation timestamps (ticks of the stream time base) of every decoded video frame.
    static func frameTimestamps(_ path: String) throws -> [Int64] {
        let result = try TestSupport.run("ffprobe", [
            "-v", "error", "-select_streams", "v:0", "-show_entries", "frame=best_effort_timestamp",
            "-of", "csv=p=0", path])
        guard result.status == 0 else { throw TestSupport.TestFailure("ffprobe failed: \(result.standardError)") }
        // One line per frame; a frame with side data gets a trailing comma and an empty line after it.
        return result.output.split(separator: "\n").compactMap { line in
            line.split(separator: ",").first.flatMap { Int64($0.trimmingCharacters(in: .whitespaces)) }
        }
    }
}
