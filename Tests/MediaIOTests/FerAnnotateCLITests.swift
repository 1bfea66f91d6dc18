import Foundation
import XCTest

/// The built `fer-annotate` binary on real files, compared with ffprobe.
final class FerAnnotateCLITests: XCTestCase {
    /// .build/release/fer-annotate under the package root (or $FER_ANNOTATE_BINARY).
    func binary(file: StaticString = #filePath, line: UInt = #line) throws -> String {
        let path = ProcessInfo.processInfo.environment["FER_ANNOTATE_BINARY"]
            ?? TestSupport.packageRoot.appendingPathComponent(".build/release/fer-annotate").path
        guard FileManager.default.isExecutableFile(atPath: path) else {
            XCTFail("no fer-annotate binary at \(path): run `swift build -c release` (Scripts/test.sh does)",
                    file: file, line: line)
            throw XCTSkip("binary missing")
        }
        return path
    }

    func annotate(_ arguments: [String]) throws -> TestSupport.Result {
        try TestSupport.run(try binary(), arguments)
    }

    /// Same decoded frame count, duration within one frame, H.264 yuv420p, audio kept.
    func checkTranscode(_ sample: String, frameInterval: Double) throws {
        let input = try TestSupport.sample(sample)
        let folder = try TestSupport.temporaryFolder()
        defer { try? FileManager.default.removeItem(at: folder) }
        let output = folder.appendingPathComponent("out.mp4").path

        let result = try annotate([input, "-o", output])
        XCTAssertEqual(result.status, 0, result.standardError)
        XCTAssertEqual(result.standardError, "", "stderr is not a terminal: no progress, nothing else to say")

        let before = try Probe(input), after = try Probe(output)
        XCTAssertEqual(after.video?.codec, "h264")
        XCTAssertEqual(after.video?.pixelFormat, "yuv420p")
        XCTAssertEqual(after.video?.width, before.video?.width)
        XCTAssertEqual(after.video?.height, before.video?.height)
        XCTAssertNotNil(before.video?.frames)
        XCTAssertEqual(after.video?.frames, before.video?.frames, "decoded frame count")
        // Container durations agree to within one frame (the muxer rounds the last frame's duration).
        XCTAssertEqual(after.duration, before.duration, accuracy: frameInterval)
        XCTAssertNotNil(before.audio)
        XCTAssertEqual(after.audio?.codec, before.audio?.codec, "audio is copied, not re-encoded")
        XCTAssertEqual(after.audio?.frames, before.audio?.frames, "every audio packet copied")
    }

    func testTranscodesWolfgangLangerKeepingFramesDurationAndAudio() throws {
        try checkTranscode("WolfgangLanger_Pexels.mp4", frameInterval: 1001.0 / 24000)
    }

    func testTranscodesSingleFaceKeepingFramesDurationAndAudio() throws {
        try checkTranscode("single_face.mp4", frameInterval: 1.0 / 30)
    }

    /// PCM audio cannot go into mp4: it is re-encoded to AAC; variable frame rate video stays as is.
    func testReencodesAudioTheContainerCannotHold() throws {
        let folder = try TestSupport.temporaryFolder()
        defer { try? FileManager.default.removeItem(at: folder) }
        let input = folder.appendingPathComponent("pcm.mov").path
        try TestSupport.ffmpeg(["-f", "lavfi", "-i", "testsrc2=s=160x120:r=25:d=2", "-f", "lavfi", "-i", "sine=d=2",
                                "-c:v", "libx264", "-preset", "ultrafast", "-c:a", "pcm_s16le", input])
        let output = folder.appendingPathComponent("out.mp4").path
        let result = try annotate([input, "-o", output, "--crf", "30", "--preset", "ultrafast"])
        XCTAssertEqual(result.status, 0, result.standardError)
        let after = try Probe(output)
        XCTAssertEqual(after.video?.frames, 50)
        XCTAssertEqual(after.audio?.codec, "aac")
        XCTAssertEqual(after.duration, 2.0, accuracy: 0.05)
    }

    /// Each bad input: one `error:` line on stderr and its documented exit code.
    func testBadInputsGiveOneErrorLineAndExitCode() throws {
        let folder = try TestSupport.temporaryFolder()
        defer { try? FileManager.default.removeItem(at: folder) }
        func path(_ name: String) -> String { folder.appendingPathComponent(name).path }
        let good = try TestSupport.sample("single_face.mp4")

        try Data(String(repeating: "plain text, not a video\n", count: 50).utf8).write(to: URL(fileURLWithPath: path("text.mp4")))
        try TestSupport.ffmpeg(["-f", "lavfi", "-i", "sine=d=0.3", path("tone.wav")])
        let whole = try Data(contentsOf: URL(fileURLWithPath: try TestSupport.sample("WolfgangLanger_Pexels.mp4")))
        try whole.prefix(whole.count / 2).write(to: URL(fileURLWithPath: path("cut.mp4")))     // index kept, data cut
        let tail = try Data(contentsOf: URL(fileURLWithPath: try TestSupport.sample("no_face.mp4")))
        try tail.prefix(tail.count / 2).write(to: URL(fileURLWithPath: path("noindex.mp4")))  // index (at the end) lost
        try Data().write(to: URL(fileURLWithPath: path("exists.mp4")))

        let cases: [(name: String, arguments: [String], code: Int32, message: String)] = [
            ("missing input", [path("missing.mp4"), "-o", path("o1.mp4")], 66, "no such file"),
            ("directory input", [folder.path, "-o", path("o2.mp4")], 66, "is a directory"),
            ("not media", [path("text.mp4"), "-o", path("o3.mp4")], 65, "not a video"),
            ("no video stream", [path("tone.wav"), "-o", path("o4.mp4")], 65, "has no video stream"),
            ("still image", [try TestSupport.sample("single_face.jpg"), "-o", path("o5.mp4")], 65, "still image"),
            ("truncated data", [path("cut.mp4"), "-o", path("o6.mp4")], 65, "truncated"),
            ("truncated index", [path("noindex.mp4"), "-o", path("o7.mp4")], 65, "truncated"),
            ("unwritable output", [good, "-o", "/nonexistent-folder/o.mp4"], 73, "cannot write"),
            ("unknown container", [good, "-o", path("o.unknownext")], 73, "container"),
            ("existing output", [good, "-o", path("exists.mp4")], 73, "--overwrite"),
        ]
        for c in cases {
            let result = try annotate(c.arguments)
            XCTAssertEqual(result.status, c.code, "\(c.name): \(result.standardError)")
            let lines = result.standardError.split(separator: "\n")
            XCTAssertEqual(lines.count, 1, "\(c.name): \(result.standardError)")
            XCTAssertTrue(lines.first?.hasPrefix("error: ") ?? false, "\(c.name): \(result.standardError)")
            XCTAssertTrue(result.standardError.contains(c.message), "\(c.name): \(result.standardError)")
        }
        // The truncated input still leaves a playable file of the frames before the cut.
        XCTAssertGreaterThan(try Probe(path("o6.mp4")).video?.frames ?? 0, 100)
        // --overwrite replaces the existing file.
        XCTAssertEqual(try annotate([good, "-o", path("exists.mp4"), "--overwrite"]).status, 0)
        XCTAssertEqual(try Probe(path("exists.mp4")).video?.frames, 72)
        // A bad option is a usage error (ArgumentParser's exit code 64).
        XCTAssertEqual(try annotate([good, "-o", path("o8.mp4"), "--crf", "99"]).status, 64)
    }

    /// --model that cannot be used (missing, not a safetensors file, tensors that do not fit the architecture its
    /// metadata declares): one error line, exit 66, no output left.
    func testUnusableModelFilesGiveOneLineAndExit66() throws {
        let folder = try TestSupport.temporaryFolder()
        defer { try? FileManager.default.removeItem(at: folder) }
        func path(_ name: String) -> String { folder.appendingPathComponent(name).path }
        let good = try TestSupport.sample("single_face.mp4")
        try Data("not a model\n".utf8).write(to: URL(fileURLWithPath: path("garbage.safetensors")))
        // The shipped model with its declared widths halved: the header still parses, the tensors no longer fit.
        let shipped = try Data(contentsOf: TestSupport.packageRoot.appendingPathComponent("Sources/EmotionModel/Resources/fer-vgg.safetensors"))
        let headerLength = Int(shipped.prefix(8).withUnsafeBytes { $0.loadUnaligned(as: UInt64.self).littleEndian })
        var header = try XCTUnwrap(try JSONSerialization.jsonObject(with: shipped.subdata(in: 8..<(8 + headerLength))) as? [String: Any])
        var metadata = try XCTUnwrap(header["__metadata__"] as? [String: String])
        var architecture = try XCTUnwrap(try JSONSerialization.jsonObject(with: Data(try XCTUnwrap(metadata["architecture"]).utf8)) as? [String: Any])
        architecture["widths"] = (architecture["widths"] as? [Int])?.map { $0 / 2 }
        metadata["architecture"] = String(decoding: try JSONSerialization.data(withJSONObject: architecture), as: UTF8.self)
        header["__metadata__"] = metadata
        var newHeader = try JSONSerialization.data(withJSONObject: header)
        newHeader.append(contentsOf: [UInt8](repeating: 0x20, count: (8 - newHeader.count % 8) % 8))
        var mismatched = Data()
        withUnsafeBytes(of: UInt64(newHeader.count).littleEndian) { mismatched.append(contentsOf: $0) }
        mismatched.append(newHeader)
        mismatched.append(shipped.subdata(in: (8 + headerLength)..<shipped.count))
        try mismatched.write(to: URL(fileURLWithPath: path("mismatched.safetensors")))

        for (name, model, message) in [("missing", path("none.safetensors"), "cannot read"),
                                       ("garbage", path("garbage.safetensors"), "not a safetensors file"),
                                       ("mismatched", path("mismatched.safetensors"), "the architecture needs")] {
            let csv = path("\(name).csv")
            let result = try annotate([good, "--no-video", "--csv", csv, "--model", model])
            XCTAssertEqual(result.status, 66, "\(name): \(result.standardError)")
            let lines = result.standardError.split(separator: "\n")
            XCTAssertEqual(lines.count, 1, "\(name): \(result.standardError)")
            XCTAssertTrue(lines.first?.hasPrefix("error: ") == true && result.standardError.contains(message),
                          "\(name): \(result.standardError)")
            XCTAssertFalse(FileManager.default.fileExists(atPath: csv), "\(name): no CSV is left")
        }
    }

    /// Every option the command declares (ArgumentParser's own dump of them) appears in --help with a line of
    /// explanation; and the help names the exit codes and the web app.
    func testHelpExplainsEveryOption() throws {
        let result = try annotate(["--help"])
        XCTAssertEqual(result.status, 0)
        let dump = try annotate(["--experimental-dump-help"])
        let command = try XCTUnwrap((try JSONSerialization.jsonObject(with: dump.standardOutput) as? [String: Any])?["command"] as? [String: Any])
        let arguments = try XCTUnwrap(command["arguments"] as? [[String: Any]])
        var checked = 0
        for argument in arguments {
            guard let names = argument["names"] as? [[String: Any]],
                  let long = names.first(where: { $0["kind"] as? String == "long" })?["name"] as? String else { continue }
            XCTAssertTrue(result.output.contains("--" + long), "--help lacks --\(long)")
            XCTAssertFalse((argument["abstract"] as? String ?? "").isEmpty, "--\(long) has no explanation")
            checked += 1
        }
        XCTAssertGreaterThanOrEqual(checked, 40, "the dump lists the options")
        for text in ["Exit codes", "fer-annotate serve"] { XCTAssertTrue(result.output.contains(text), "--help lacks \(text)") }
    }

    /// SIGINT mid-stream: the loop stops, the writer finishes, the file plays, exit code 130.
    /// The input is a live MPEG-TS stream through a FIFO, so the run cannot finish before the signal.
    func testSIGINTFinishesAPlayableFile() throws {
        let folder = try TestSupport.temporaryFolder()
        defer { try? FileManager.default.removeItem(at: folder) }
        let fifo = folder.appendingPathComponent("live.ts").path
        XCTAssertEqual(mkfifo(fifo, 0o600), 0)
        let source = Process()
        source.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        source.arguments = ["ffmpeg", "-nostdin", "-loglevel", "quiet", "-re", "-f", "lavfi",
                            "-i", "testsrc2=s=160x120:r=25:d=30", "-c:v", "libx264", "-preset", "ultrafast",
                            "-g", "5", "-f", "mpegts", "-y", fifo]
        try source.run()
        defer { if source.isRunning { source.terminate() }; source.waitUntilExit() }

        let output = folder.appendingPathComponent("out.mp4").path
        let annotate = Process()
        annotate.executableURL = URL(fileURLWithPath: try binary())
        annotate.arguments = [fifo, "-o", output]
        let errors = Pipe()
        annotate.standardError = errors
        try annotate.run()
        // Readiness: some frames through (the CSV beside the output has rows), not a fixed wait.
        let csv = folder.appendingPathComponent("out.csv").path
        let deadline = Date().addingTimeInterval(30)
        while ((try? String(contentsOfFile: csv, encoding: .utf8)) ?? "").split(separator: "\n").count < 10,
              Date() < deadline, annotate.isRunning {
            Thread.sleep(forTimeInterval: 0.05)
        }
        annotate.interrupt()
        annotate.waitUntilExit()
        let message = String(decoding: errors.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        XCTAssertEqual(annotate.terminationReason, .exit, "killed by the signal instead of handling it")
        XCTAssertEqual(annotate.terminationStatus, 130, message)
        XCTAssertTrue(message.contains("stopped by SIGINT"), message)
        let probe = try Probe(output)
        XCTAssertEqual(probe.video?.codec, "h264")
        let frames = probe.video?.frames ?? 0
        XCTAssertGreaterThan(frames, 5, "frames written before the signal")
        XCTAssertLessThan(frames, 750)
        XCTAssertEqual(probe.duration, Double(frames) / 25, accuracy: 0.2)
    }
}
