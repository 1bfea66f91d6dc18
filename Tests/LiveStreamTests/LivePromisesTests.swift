import Foundation
import XCTest

/// The live options' promises, end to end: a stream lost for good, --segment-time's files, --late-after.
final class LivePromisesTests: XCTestCase {
    var folder: URL!

    override func setUpWithError() throws { folder = try LiveTestSupport.temporaryFolder() }
    override func tearDownWithError() throws { try? FileManager.default.removeItem(at: folder) }

    func path(_ name: String) -> String { folder.appendingPathComponent(name).path }

    /// The server goes away for good: after the last reconnect attempt the run ends with one error line, the
    /// summary says `stopped_by: "source lost"` and not completed, and what was written plays.
    func testSourceLostAfterTheLastReconnectAttempt() throws {
        try LiveTestSupport.requireRTSPServer()
        let server = try LiveTestSupport.RTSPServer(sample: try LiveTestSupport.sample("WolfgangLanger_Pexels.mp4"))
        let run = try LiveTestSupport.RunningProcess([try LiveTestSupport.binary(), server.url, "-o", path("live.mp4"),
            "--json", path("live.json"), "--reconnect-attempts", "2", "--reconnect-delay", "0.2", "--timeout", "5",
            "--preset", "ultrafast", "-q"])
        XCTAssertTrue(LiveTestSupport.waitForLines(path("live.csv"), atLeast: 30), "rows arrive before the loss")
        server.kill()
        let result = run.wait(timeout: 60)
        XCTAssertNotEqual(result.status, 0, "a lost source is a failure")
        let errors = result.standardError.split(separator: "\n").filter { $0.hasPrefix("error:") }
        XCTAssertEqual(errors.count, 1, result.standardError)
        let report = try LiveTestSupport.readJSON(path("live.json"))
        XCTAssertEqual(report["completed"] as? Bool, false)
        let live = try XCTUnwrap(report["live"] as? [String: Any])
        XCTAssertEqual(live["stopped_by"] as? String, "source lost")
        let rows = try LiveTestSupport.readCSV(path("live.csv"))
        XCTAssertGreaterThanOrEqual(rows.count, 30)
        XCTAssertEqual(try LiveTestSupport.probe(path("live.mp4")).frames, rows.count, "the video plays, a row per frame")
    }

    /// --segment-time 2 on 5 s of a file read live: files named NAME-YYYYMMDD-HHMMSS.mp4 in start order, each 2 s of
    /// stream but the last, holding every analysed frame between them.
    func testSegmentTimeNamesAndLengths() throws {
        let run = try LiveTestSupport.RunningProcess([try LiveTestSupport.binary(),
            try LiveTestSupport.sample("WolfgangLanger_Pexels.mp4"), "--live", "--duration", "5", "--segment-time", "2",
            "-o", path("cam.mp4"), "--json", path("cam.json"), "--preset", "ultrafast", "-q"])
        let result = run.wait(timeout: 60)
        XCTAssertEqual(result.status, 0, result.standardError)
        let names = try FileManager.default.contentsOfDirectory(atPath: folder.path)
            .filter { $0.range(of: #"^cam-\d{8}-\d{6}\.mp4$"#, options: .regularExpression) != nil }.sorted()
        XCTAssertEqual(names.count, 3, "0-2, 2-4 and 4-5 s: \(names)")
        let probes = try names.map { try LiveTestSupport.probe(path($0)) }
        for probe in probes.dropLast() { XCTAssertEqual(probe.duration, 2, accuracy: 0.25) }
        XCTAssertEqual(probes.last?.duration ?? 0, 1, accuracy: 0.3)
        let live = try XCTUnwrap(LiveTestSupport.readJSON(path("cam.json"))["live"] as? [String: Any])
        XCTAssertEqual(probes.map(\.frames).reduce(0, +), live["frames_analyzed"] as? Int)
    }

    /// --late-after: with 1 ms every frame is late (no frame is analysed that fast); with the default 0.5 s fewer are.
    func testLateAfterCountsLateFrames() throws {
        func lateFrames(_ extra: [String]) throws -> (late: Int, analysed: Int) {
            let json = path("late\(extra.count).json")
            let run = try LiveTestSupport.RunningProcess([try LiveTestSupport.binary(),
                try LiveTestSupport.sample("single_face.mp4"), "--live", "--duration", "2", "--no-video", "--json", json,
                "-q"] + extra)
            let result = run.wait(timeout: 60)
            XCTAssertEqual(result.status, 0, result.standardError)
            let live = try XCTUnwrap(LiveTestSupport.readJSON(json)["live"] as? [String: Any])
            return (live["frames_late"] as? Int ?? -1, live["frames_analyzed"] as? Int ?? 0)
        }
        let strict = try lateFrames(["--late-after", "0.001"])
        let usual = try lateFrames([])
        XCTAssertGreaterThan(strict.analysed, 30)
        XCTAssertEqual(strict.late, strict.analysed, "every frame takes longer than 1 ms from arrival to its row")
        XCTAssertLessThan(usual.late, usual.analysed / 2, "at 0.5 s, most frames are on time")
    }
}
