import Foundation
#if canImport(FoundationXML)
import FoundationXML
#endif
import XCTest

/// fer-annotate end to end on the real sample media: faces, IDs, CSV, JSON, early stops, memory.
final class FerAnnotateAnalysisTests: XCTestCase {
    var folder: URL!

    override func setUpWithError() throws { folder = try TestSupport.temporaryFolder() }
    override func tearDownWithError() throws { try? FileManager.default.removeItem(at: folder) }

    func path(_ name: String) -> String { folder.appendingPathComponent(name).path }

    func annotate(_ arguments: [String]) throws -> TestSupport.Result {
        let binary = TestSupport.packageRoot.appendingPathComponent(".build/release/fer-annotate").path
        let result = try TestSupport.run(binary, arguments)
        XCTAssertEqual(result.status, 0, result.standardError)
        return result
    }

    /// CSV rows as dictionaries (the file is plain: no quoted fields).
    func rows(_ csv: String) throws -> [[String: String]] {
        let lines = try String(contentsOfFile: csv, encoding: .utf8).split(separator: "\n").map(String.init)
        let header = lines[0].split(separator: ",").map(String.init)
        return lines.dropFirst().map { line in
            let fields = line.split(separator: ",", omittingEmptySubsequences: false).map(String.init)
            XCTAssertEqual(fields.count, header.count, "complete row: \(line)")
            return Dictionary(uniqueKeysWithValues: zip(header, fields))
        }
    }

    /// A `--json` summary written in the test folder, as a dictionary.
    func jsonSummary(_ name: String) throws -> [String: Any] {
        try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: path(name)))) as! [String: Any]
    }

    let emotions = ["angry", "disgust", "fear", "happy", "sad", "surprise", "neutral"]

    func testWolfgangLangerGetsOneTrackSmoothedProbabilitiesAndAllOutputs() throws {
        let input = try TestSupport.sample("WolfgangLanger_Pexels.mp4")
        _ = try annotate([input, "-o", path("out.mp4"), "--json", path("summary.json"), "--plot", path("plot.svg"),
                          "--preset", "ultrafast"])
        let before = try Probe(input), after = try Probe(path("out.mp4"))
        XCTAssertEqual(after.video?.frames, before.video?.frames)
        XCTAssertEqual(after.duration, before.duration, accuracy: 1001.0 / 24000)
        XCTAssertEqual(after.audio?.codec, before.audio?.codec)

        let table = try rows(path("out.csv"))
        XCTAssertEqual(table.count, before.video?.frames, "one row per frame: one face at most")
        XCTAssertEqual(table.map { Int($0["frame"]!)! }, Array(0..<table.count))
        let faceRows = table.filter { !$0["face_id"]!.isEmpty }
        XCTAssertEqual(Set(faceRows.map { $0["face_id"]! }), ["1"], "one person, one ID")
        // The face is on screen throughout; the tracker confirms it within its first frames.
        XCTAssertGreaterThanOrEqual(faceRows.count, table.count - 5)
        var rawVariation = 0.0, smoothVariation = 0.0
        for (previous, row) in zip(faceRows, faceRows.dropFirst()) {
            let smooth = emotions.map { Double(row[$0]!)! }, raw = emotions.map { Double(row["raw_" + $0]!)! }
            XCTAssertEqual(smooth.reduce(0, +), 1, accuracy: 1e-3)
            XCTAssertEqual(raw.reduce(0, +), 1, accuracy: 1e-3)
            smoothVariation += zip(smooth, emotions.map { Double(previous[$0]!)! }).map { abs($0 - $1) }.reduce(0, +)
            rawVariation += zip(raw, emotions.map { Double(previous["raw_" + $0]!)! }).map { abs($0 - $1) }.reduce(0, +)
        }
        XCTAssertLessThan(smoothVariation, rawVariation * 0.8, "smoothed series is visibly smoother")

        let summary = try jsonSummary("summary.json")
        XCTAssertEqual(summary["frames"] as? Int, before.video?.frames)
        let tracks = summary["tracks"] as! [[String: Any]]
        XCTAssertEqual(tracks.count, 1)
        XCTAssertEqual(tracks[0]["frames_seen"] as? Int, faceRows.count)
        XCTAssertEqual(XMLParser(contentsOf: URL(fileURLWithPath: path("plot.svg")))?.parse(), true, "the plot is well-formed SVG")
        // The plot draws the summary's segments of track #1, in order, each in its emotion's colour.
        let svg = try String(contentsOfFile: path("plot.svg"), encoding: .utf8)
        let drawn = svg.components(separatedBy: "<title>#1 ").dropFirst().map { $0.prefix { $0 != " " } }.map(String.init)
        let segments = try XCTUnwrap(tracks[0]["segments"] as? [[String: Any]])
        XCTAssertEqual(drawn, segments.compactMap { $0["emotion"] as? String }, "one rect per segment")
        XCTAssertGreaterThan(drawn.count, 0)
        let colours = ["angry": "#e53935", "disgust": "#43a047", "fear": "#8e24aa", "happy": "#fdd835", "sad": "#1e88e5",
                       "surprise": "#fb8c00", "neutral": "#9e9e9e"]
        for emotion in Set(drawn) {
            XCTAssertTrue(svg.contains("fill=\"\(colours[emotion]!)\"><title>#1 \(emotion) "), "\(emotion) drawn in its colour")
        }
    }

    func testStartAndDurationCutAClipWithItsAudio() throws {
        let input = try TestSupport.sample("WolfgangLanger_Pexels.mp4")
        _ = try annotate([input, "-o", path("clip.mp4"), "--start", "00:05.5", "--duration", "4", "--preset", "ultrafast"])
        let table = try rows(path("clip.csv"))
        let times = table.map { Double($0["time_s"]!)! }
        let frameInterval = 1001.0 / 24000
        // CSV times stay the file's own: the first row is the first frame presented at or after 5.5 s.
        XCTAssertGreaterThanOrEqual(times.first!, 5.5 - 1e-3)
        XCTAssertLessThan(times.first!, 5.5 + frameInterval)
        XCTAssertLessThan(times.last!, times.first! + 4)
        XCTAssertEqual(Double(table.count), 4 / frameInterval, accuracy: 1.5)
        XCTAssertEqual(table.map { Int($0["frame"]!)! }, Array(0..<table.count))
        // The video starts at 0, holds exactly those frames, and its audio covers the same 4 s.
        let clip = try Probe(path("clip.mp4"))
        XCTAssertEqual(clip.video?.frames, table.count)
        XCTAssertEqual(clip.duration, 4, accuracy: 0.1)
        XCTAssertEqual(clip.audio?.duration ?? 0, 4, accuracy: 0.1, "the audio stops with the video")
        XCTAssertLessThan(clip.video?.startTime ?? 1, frameInterval, "the video starts at 0")

        let beyond = try TestSupport.run(TestSupport.packageRoot.appendingPathComponent(".build/release/fer-annotate").path,
                                         [input, "--no-video", "--csv", path("late.csv"), "--start", "10m"])
        XCTAssertEqual(beyond.status, 64)
        XCTAssertTrue(beyond.standardError.contains("past the end"), beyond.standardError)
    }

    /// The debug view of detection and tracking: numbered boxes, one ID for the one person, no emotion anywhere.
    func testFacesOnlyTracksWithoutEmotions() throws {
        let input = try TestSupport.sample("single_face.mp4")
        _ = try annotate([input, "-o", path("faces.mp4"), "--faces-only", "--json", path("faces.json"), "--preset", "ultrafast"])
        let table = try rows(path("faces.csv"))
        XCTAssertEqual(try Probe(path("faces.mp4")).video?.frames, table.count)
        let faceRows = table.filter { !$0["face_id"]!.isEmpty }
        XCTAssertGreaterThanOrEqual(faceRows.count, table.count - 5, "the face is tracked throughout")
        XCTAssertEqual(Set(faceRows.map { $0["face_id"]! }), ["1"])
        XCTAssertTrue(faceRows.allSatisfy { row in !row["w"]!.isEmpty && (emotions + ["emotion", "confidence"]).allSatisfy { row[$0]!.isEmpty } })
        let summary = try jsonSummary("faces.json")
        let tracks = summary["tracks"] as! [[String: Any]]
        XCTAssertEqual(tracks.count, 1)
        XCTAssertNil(tracks[0]["dominant_emotion"])
    }

    func testNoFaceVideoGivesOnlyNoFaceRowsAndAValidVideo() throws {
        let input = try TestSupport.sample("no_face.mp4")
        _ = try annotate([input, "-o", path("out.mp4"), "--preset", "ultrafast"])
        let table = try rows(path("out.csv"))
        XCTAssertEqual(table.count, try Probe(input).video?.frames)
        XCTAssertTrue(table.allSatisfy { $0["face_id"]!.isEmpty }, "no face in any frame")
        XCTAssertEqual(try Probe(path("out.mp4")).video?.frames, table.count)
    }

    /// face_noface.mov shows a face for its first ~3 s, then none; noface_face.mov the reverse.
    func testFaceRowsOnlyWhileTheFaceIsVisible() throws {
        for (name, faceFirst) in [("face_noface.mov", true), ("noface_face.mov", false)] {
            let input = try TestSupport.sample(name)
            let csv = path(name + ".csv")
            _ = try annotate([input, "--no-video", "--csv", csv])
            let table = try rows(csv)
            let withFace = table.filter { !$0["face_id"]!.isEmpty }.map { Int($0["frame"]!)! }
            let (visible, empty) = faceFirst ? (0..<60, (table.count - 60)..<table.count)
                                             : ((table.count - 60)..<table.count, 0..<60)
            XCTAssertEqual(Set(withFace).intersection(empty), [], "\(name): no face rows where no face is visible")
            XCTAssertGreaterThanOrEqual(Set(withFace).intersection(visible).count, 55, "\(name): face rows while visible")
            XCTAssertEqual(Set(table.compactMap { $0["face_id"]!.isEmpty ? nil : $0["face_id"] }).count, 1, name)
        }
    }

    func testSIGINTHalfwayLeavesAPlayableVideoAndCompleteRows() throws {
        let input = try TestSupport.sample("WolfgangLanger_Pexels.mp4")
        let process = Process()
        process.executableURL = TestSupport.packageRoot.appendingPathComponent(".build/release/fer-annotate")
        process.arguments = [input, "-o", path("out.mp4"), "--preset", "slow"]
        process.standardError = FileHandle.nullDevice
        try process.run()
        // Stop once the analysis has written some rows.
        let deadline = Date().addingTimeInterval(30)
        while Date() < deadline {
            Thread.sleep(forTimeInterval: 0.2)
            let text = (try? String(contentsOfFile: path("out.csv"), encoding: .utf8)) ?? ""
            if text.split(separator: "\n").count > 40 { break }
        }
        process.interrupt()
        process.waitUntilExit()
        XCTAssertEqual(process.terminationStatus, 130)
        let table = try rows(path("out.csv"))
        let total = try Probe(input).video?.frames ?? 0
        XCTAssertGreaterThan(table.count, 30)
        XCTAssertLessThan(table.count, total, "stopped part way")
        let written = try Probe(path("out.mp4"))
        XCTAssertEqual(written.video?.codec, "h264", "the file plays")
        XCTAssertEqual(written.video?.frames, table.count, "every encoded frame has its CSV row")
    }

    func testMemoryStaysFlatOnTenTimesTheClip() throws {
        let input = try TestSupport.sample("single_face.mp4")
        try TestSupport.ffmpeg(["-stream_loop", "9", "-i", input, "-c", "copy", path("looped.mp4")])
        func peak(_ file: String, _ name: String) throws -> Double {
            _ = try annotate([file, "--no-video", "--csv", path(name + ".csv"), "--json", path(name + ".json")])
            return try jsonSummary(name + ".json")["peak_memory_mb"] as! Double
        }
        let once = try peak(input, "once"), tenTimes = try peak(path("looped.mp4"), "ten")
        // Bounded queues and streaming writers: 10x the frames, no more than a few MB more memory.
        XCTAssertLessThan(tenTimes, once * 1.1 + 8, "peak \(tenTimes) MB on 10x vs \(once) MB on 1x")
    }

    /// The reported peak is fer-annotate's own, whatever its parent used. Process starts it with posix_spawn, and
    /// the kernel then folds the parent's high-water mark into the child's getrusage ru_maxrss (this test process
    /// reaches 265 MB in ShortTrainingTests alone): the likely cause of a one-off 410 MB in the 1080p test below.
    func testPeakMemoryIsTheRunsOwnNotItsParents() throws {
        let parentPeak = 1024 * 1024 * 1024
        let block = UnsafeMutableRawPointer.allocate(byteCount: parentPeak, alignment: 4096)
        for page in stride(from: 0, to: parentPeak, by: 4096) {
            block.storeBytes(of: 1, toByteOffset: page, as: UInt8.self)
        }
        block.deallocate()
        let input = try TestSupport.sample("single_face.mp4")
        _ = try annotate([input, "--no-video", "--csv", path("run.csv"), "--json", path("run.json")])
        let peak = try XCTUnwrap(try jsonSummary("run.json")["peak_memory_mb"] as? Double)
        XCTAssertGreaterThan(peak, 20, "the model and the frames in flight are resident")
        XCTAssertLessThan(peak, 1000, "peak \(peak) MB: the parent's 1024 MB were counted")
    }

    /// Issue 7's budget: a 1080p file with the annotated video under 400 MB of peak resident memory (frames in
    /// flight, x264's bounded lookahead, MTCNN's full-frame search without a summed-area table). Three seconds
    /// reach the whole run's peak: 355 MB here against 362 MB for all 20 s (was about 500 before the bounds).
    func testFullHDWithVideoStaysUnder400MB() throws {
        let input = try TestSupport.sample("WolfgangLanger_Pexels.mp4")
        try TestSupport.ffmpeg(["-i", input, "-t", "3", "-vf", "scale=-2:1080", "-c:v", "libx264", "-preset", "veryfast",
                                "-c:a", "copy", path("1080p.mp4")])
        _ = try annotate([path("1080p.mp4"), "-o", path("out.mp4"), "--json", path("run.json")])
        let peak = try XCTUnwrap(try jsonSummary("run.json")["peak_memory_mb"] as? Double)
        // Printed every run. One CI run read 410 MB here, where 30 others gave 351-357: most likely the test
        // process's peak, folded in by getrusage before the peak came from VmHWM
        // (testPeakMemoryIsTheRunsOwnNotItsParents).
        print("1080p with video: peak resident memory \(peak) MB")
        XCTAssertEqual(try Probe(path("out.mp4")).video?.height, 1080)
        XCTAssertLessThan(peak, 400, "peak resident memory at 1080p with video")
    }
}
