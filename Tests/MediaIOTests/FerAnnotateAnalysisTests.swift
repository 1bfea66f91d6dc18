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

    /// A signal part way: the exit code says which, the video plays, and every encoded frame has its CSV row.
    func stopHalfway(sigterm: Bool) throws {
        let input = try TestSupport.sample("WolfgangLanger_Pexels.mp4")
        let process = Process()
        process.executableURL = TestSupport.packageRoot.appendingPathComponent(".build/release/fer-annotate")
        process.arguments = [input, "-o", path("out.mp4"), "--preset", "slow"]
        process.standardError = FileHandle.nullDevice
        try process.run()
        // Readiness, not a fixed wait: stop once the analysis has written some rows.
        let deadline = Date().addingTimeInterval(30)
        while Date() < deadline {
            Thread.sleep(forTimeInterval: 0.05)
            let text = (try? String(contentsOfFile: path("out.csv"), encoding: .utf8)) ?? ""
            if text.split(separator: "\n").count > 40 { break }
        }
        if sigterm { process.terminate() } else { process.interrupt() }
        process.waitUntilExit()
        XCTAssertEqual(process.terminationStatus, sigterm ? 143 : 130)
        let table = try rows(path("out.csv"))
        let total = try Probe(input).video?.frames ?? 0
        XCTAssertGreaterThan(table.count, 30)
        XCTAssertLessThan(table.count, total, "stopped part way")
        let written = try Probe(path("out.mp4"))
        XCTAssertEqual(written.video?.codec, "h264", "the file plays")
        XCTAssertEqual(written.video?.frames, table.count, "every encoded frame has its CSV row")
    }

    func testSIGINTHalfwayLeavesAPlayableVideoAndCompleteRows() throws { try stopHalfway(sigterm: false) }

    func testSIGTERMHalfwayLeavesAPlayableVideoAndCompleteRows() throws { try stopHalfway(sigterm: true) }

    /// The JSON summary and the JSON Lines on stdout say what the CSV says: per track the first and last time,
    /// frames seen, mean probabilities, time shares and segments; run metadata; one record per frame.
    func testJSONSummaryAndJSONLinesAgreeWithTheCSV() throws {
        let input = try TestSupport.sample("single_face.mp4")
        let result = try annotate([input, "--no-video", "--csv", path("t.csv"), "--json", path("s.json"), "--jsonl", "-q"])
        let table = try rows(path("t.csv"))
        let faceRows = table.filter { !$0["face_id"]!.isEmpty }
        let records = result.output.split(separator: "\n").map {
            try! JSONSerialization.jsonObject(with: Data($0.utf8)) as! [String: Any]
        }
        XCTAssertEqual(records.count, table.count, "one JSON line per frame")
        XCTAssertEqual(records.map { $0["frame"] as! Int }, table.map { Int($0["frame"]!)! })
        for (record, row) in zip(records, table) {
            XCTAssertEqual(record["time_s"] as! Double, Double(row["time_s"]!)!, accuracy: 1e-6)
            let faces = record["faces"] as! [[String: Any]]
            XCTAssertEqual(faces.count, row["face_id"]!.isEmpty ? 0 : 1)
            if let face = faces.first {
                XCTAssertEqual(face["emotion"] as? String, row["emotion"])
                let probabilities = face["probabilities"] as! [String: Double]
                for emotion in emotions { XCTAssertEqual(probabilities[emotion]!, Double(row[emotion]!)!, accuracy: 1e-5) }
            }
        }

        let summary = try jsonSummary("s.json")
        XCTAssertEqual(summary["frames"] as? Int, table.count)
        XCTAssertEqual(summary["completed"] as? Bool, true)
        XCTAssertEqual(summary["model"] as? String, "fer-vgg.safetensors")
        XCTAssertNotNil(summary["peak_memory_mb"] as? Double)
        XCTAssertGreaterThan(summary["fps"] as? Double ?? 0, 0)
        let track = try XCTUnwrap((summary["tracks"] as? [[String: Any]])?.first)
        let times = faceRows.map { Double($0["time_s"]!)! }
        XCTAssertEqual(track["first_time"] as! Double, times.first!, accuracy: 1e-6)
        XCTAssertEqual(track["last_time"] as! Double, times.last!, accuracy: 1e-6)
        XCTAssertEqual(track["frames_seen"] as? Int, faceRows.count)
        // The mean of each frame's own (unsmoothed) probabilities: the raw_* columns.
        let mean = track["mean_probabilities"] as! [String: Double]
        for emotion in emotions {
            let fromCSV = faceRows.map { Double($0["raw_" + emotion]!)! }.reduce(0, +) / Double(faceRows.count)
            XCTAssertEqual(mean[emotion]!, fromCSV, accuracy: 1e-4, emotion)
        }
        let share = track["time_share"] as! [String: Double]
        XCTAssertEqual(share.values.reduce(0, +), 1, accuracy: 1e-6)
        XCTAssertEqual(track["dominant_emotion"] as? String, share.max { $0.value < $1.value }?.key)
        // Segments are the runs of the shown emotion, back to back from the first to the last time.
        let segments = track["segments"] as! [[String: Any]]
        XCTAssertEqual(segments.first?["start"] as! Double, times.first!, accuracy: 1e-6)
        XCTAssertEqual(segments.last?["end"] as! Double, times.last!, accuracy: 1e-6)
        for (previous, next) in zip(segments, segments.dropFirst()) {
            XCTAssertEqual(previous["end"] as! Double, next["start"] as! Double, accuracy: 1e-9)
            XCTAssertNotEqual(previous["emotion"] as? String, next["emotion"] as? String)
        }
        var runs: [String] = []
        for row in faceRows where runs.last != row["emotion"] { runs.append(row["emotion"]!) }
        XCTAssertEqual(segments.map { $0["emotion"] as! String }, runs)
    }

    /// Damaged packets in the middle of a file (two 3 KB runs of 0xFF in the media data) are skipped with a
    /// warning: the run succeeds, and every other frame has its row.
    func testDamagedPacketsMidFileAreSkippedWithAWarning() throws {
        let input = try TestSupport.sample("WolfgangLanger_Pexels.mp4")
        var bytes = try Data(contentsOf: URL(fileURLWithPath: input))
        for offset in [bytes.count / 2, bytes.count / 2 + 50_000] {
            bytes.replaceSubrange(offset..<(offset + 3000), with: [UInt8](repeating: 0xFF, count: 3000))
        }
        try bytes.write(to: URL(fileURLWithPath: path("damaged.mp4")))
        let result = try annotate([path("damaged.mp4"), "--no-video", "--csv", path("d.csv")])
        XCTAssertTrue(result.standardError.contains("corrupt packet"), result.standardError)
        XCTAssertFalse(result.standardError.contains("error:"), result.standardError)
        let table = try rows(path("d.csv"))
        let total = try Probe(input).video?.frames ?? 0
        XCTAssertGreaterThanOrEqual(table.count, total - 10, "only the damaged frames are missing")
        XCTAssertLessThanOrEqual(table.count, total)
    }

    /// --bars draws each face's seven probabilities beside its box, not over the face: the frames differ from the
    /// plain output next to the face, not inside its box, and nowhere far from it.
    func testBarsAreDrawnBesideTheFace() throws {
        let input = try TestSupport.sample("single_face.mp4")
        _ = try annotate([input, "-o", path("plain.mp4"), "--preset", "ultrafast", "--crf", "0"])
        _ = try annotate([input, "-o", path("bars.mp4"), "--bars", "--preset", "ultrafast", "--crf", "0"])
        let table = try rows(path("plain.csv"))
        let frameIndex = 40
        let row = try XCTUnwrap(table.first { Int($0["frame"]!) == frameIndex && !$0["face_id"]!.isEmpty })
        let (x, y, w, h) = (Double(row["x"]!)!, Double(row["y"]!)!, Double(row["w"]!)!, Double(row["h"]!)!)
        func frame(_ name: String) throws -> [UInt8] {
            let result = try TestSupport.run("ffmpeg", ["-nostdin", "-loglevel", "error", "-i", path(name), "-vf",
                                                        "select=eq(n\\,\(frameIndex))", "-frames:v", "1", "-f", "rawvideo",
                                                        "-pix_fmt", "gray", "-"])
            XCTAssertEqual(result.status, 0, result.standardError)
            return Array(result.standardOutput)
        }
        let plain = try frame("plain.mp4"), bars = try frame("bars.mp4")
        let width = 640
        XCTAssertEqual(plain.count, width * 360)
        func difference(_ x0: Double, _ y0: Double, _ x1: Double, _ y1: Double) -> Double {
            var total = 0, count = 0
            for py in max(0, Int(y0))..<min(360, Int(y1)) {
                for px in max(0, Int(x0))..<min(width, Int(x1)) {
                    total += abs(Int(plain[py * width + px]) - Int(bars[py * width + px]))
                    count += 1
                }
            }
            return count == 0 ? 0 : Double(total) / Double(count)
        }
        // Inside the box, away from its edges and the label over its top: the face itself, untouched.
        let face = difference(x + w * 0.1, y + h * 0.15, x + w * 0.9, y + h * 0.9)
        let beside = [difference(x, y + h, x + w, y + 2 * h), difference(x + w, y, x + 2 * w, y + h),
                      difference(x - w, y, x, y + h), difference(x, y - h, x + w, y)].max()!
        let farCorner = difference(0, 300, 60, 360)
        XCTAssertLessThan(face, 1, "the bars do not cover the face")
        XCTAssertGreaterThan(beside, 5, "the bars are drawn beside the face")
        XCTAssertLessThan(farCorner, 1, "and nothing far from it")
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
