import AnnotationPipeline
import Foundation
import MediaIO
import VisionCore
import XCTest

/// The live building blocks without a server: input recognition, FFmpeg options, the reconnecting source's
/// timeline and backoff, latency percentiles, the live CSV layout.
final class ReconnectingSourceTests: XCTestCase {
    func testRecognisesLiveInputs() {
        XCTAssertEqual(InputKind(url: "rtsp://cam.local/stream"), .network(scheme: "rtsp"))
        XCTAssertEqual(InputKind(url: "RTMP://host/app/key"), .network(scheme: "rtmp"))
        XCTAssertEqual(InputKind(url: "udp://127.0.0.1:1234"), .network(scheme: "udp"))
        XCTAssertEqual(InputKind(url: "srt://127.0.0.1:9000"), .network(scheme: "srt"))
        XCTAssertEqual(InputKind(url: "http://cam.local/video.mjpg"), .network(scheme: "http"))
        XCTAssertEqual(InputKind(url: "https://example.com/live/index.m3u8"), .network(scheme: "https"))
        XCTAssertEqual(InputKind(url: "https://example.com/clip.mp4?token=1"), .file, "a file on a web server")
        XCTAssertEqual(InputKind(url: "/dev/video0"), .device)
        XCTAssertEqual(InputKind(url: "/dev/v4l/by-id/usb-cam-video-index0"), .device)
        XCTAssertEqual(InputKind(url: "clip.mp4"), .file)
        XCTAssertEqual(InputKind(url: "/home/user/rtsp.mp4"), .file)
        XCTAssertFalse(InputKind(url: "clip.mp4").isLive)
        XCTAssertTrue(InputKind(url: "/dev/video2").isLive)
    }

    func testMapsLiveOptionsToFFmpegNames() {
        let rtsp = InputOptions.live(kind: .network(scheme: "rtsp"), timeout: 2.5, rtspTransport: "udp",
                                     extra: ["probesize": "500000"])
        XCTAssertEqual(rtsp.options["timeout"], "2500000", "FFmpeg 5.1's RTSP socket timeout, in microseconds")
        XCTAssertNil(rtsp.options["rw_timeout"])
        XCTAssertEqual(rtsp.options["rtsp_transport"], "udp")
        XCTAssertEqual(rtsp.options["probesize"], "500000")
        XCTAssertNil(rtsp.format)

        let http = InputOptions.live(kind: .network(scheme: "http"), timeout: 1, rtspTransport: "tcp")
        XCTAssertEqual(http.options["rw_timeout"], "1000000")
        XCTAssertNil(http.options["rtsp_transport"])

        let camera = InputOptions.live(kind: .device, videoSize: "1280x720", frameRate: "30", pixelFormat: "mjpeg",
                                       extra: ["framerate": "15"])
        XCTAssertEqual(camera.format, "v4l2")
        XCTAssertEqual(camera.options, ["video_size": "1280x720", "framerate": "15", "input_format": "mjpeg"],
                       "V4L2 names; a raw --input-option wins")
    }

    // MARK: Reconnecting

    /// A fake session: frames of `ticks` (1/90000 s) each `step` apart, then an error or the end.
    final class FakeSession: FrameSource {
        var frames: [Frame]
        let failsAtEnd: Bool
        init(startTicks: Int64, count: Int, step: Int64 = 3000, failsAtEnd: Bool = true) {
            let image = Image(width: 4, height: 4, format: .rgb24)
            frames = (0..<count).map { i in
                Frame(image: image, timestamp: Timestamp(ticks: startTicks + Int64(i) * step, timeBase: Rational(1, 90000)),
                      duration: step, index: i)
            }
            self.failsAtEnd = failsAtEnd
        }
        struct Lost: Error {}
        func nextFrame() throws -> Frame? {
            if frames.isEmpty {
                if failsAtEnd { throw Lost() }
                return nil
            }
            return frames.removeFirst()
        }
    }

    /// Opens the sessions in order; `nil` entries are failed attempts.
    final class Opener: @unchecked Sendable {
        var sessions: [FakeSession?]
        var opened = 0
        init(_ sessions: [FakeSession?]) { self.sessions = sessions }
        struct Refused: Error, CustomStringConvertible { var description: String { "Connection refused" } }
        func open() throws -> FakeSession {
            opened += 1
            guard !sessions.isEmpty, let session = sessions.removeFirst() else { throw Refused() }
            return session
        }
    }

    func testReconnectsWithBackoffAndKeepsTimeAndIndicesGoingForward() throws {
        // Session 1: 10 frames from tick 900000 (10 s, as a camera's clock might); lost; two refused attempts;
        // session 2 restarts its clock at 0.
        let opener = Opener([FakeSession(startTicks: 900_000, count: 10), nil, nil,
                             FakeSession(startTicks: 0, count: 5, failsAtEnd: false)])
        var waits: [Double] = []
        let policy = ReconnectPolicy(reconnects: true, attempts: 5, initialDelay: 0.5, maximumDelay: 30, openTimeout: 0)
        let source = try ReconnectingSource(name: "rtsp://test", policy: policy, wait: { waits.append($0); return true }) {
            try opener.open()
        }
        var frames: [Frame] = []
        // The fake's last session ends cleanly; a live source treats that as a loss too, and then fails 5 times.
        do {
            while let frame = try source.nextFrame() { frames.append(frame) }
            XCTFail("the source should give up after 5 failed attempts")
        } catch let error as LiveSourceError {
            guard case .lost(_, _, let attempts, let lastError) = error else { return XCTFail("\(error)") }
            XCTAssertEqual(attempts, 5)
            XCTAssertEqual(lastError, "Connection refused")
        }

        XCTAssertEqual(frames.count, 15)
        XCTAssertEqual(frames.map(\.index), Array(0..<15), "indices continue across the reconnect")
        XCTAssertEqual(frames[0].seconds, 0, "the output timeline starts at 0")
        XCTAssertEqual(frames[9].seconds, 0.3, accuracy: 1e-9)
        for (a, b) in zip(frames, frames.dropFirst()) { XCTAssertLessThan(a.timestamp.ticks, b.timestamp.ticks) }
        // Inside the second session the spacing is the stream's own (1/30 s).
        XCTAssertEqual(frames[11].seconds - frames[10].seconds, 1.0 / 30, accuracy: 1e-9)
        XCTAssertGreaterThanOrEqual(frames[10].seconds - frames[9].seconds, 1.0 / 30 - 1e-9)

        // Backoff: 0.5, 1, 2 before the reconnect; then 0.5, 1, 2, 4, 8 for the final loss.
        XCTAssertEqual(waits, [0.5, 1, 2, 0.5, 1, 2, 4, 8])
        let gaps = source.gaps
        XCTAssertEqual(gaps.count, 2)
        XCTAssertEqual(gaps[0].attempts, 3)
        XCTAssertEqual(gaps[0].resumedFrameIndex, 10)
        XCTAssertEqual(gaps[0].lastFrameTime, 0.3, accuracy: 1e-9)
        XCTAssertEqual(gaps[0].resumedTime ?? -1, frames[10].seconds, accuracy: 1e-9)
        XCTAssertNil(gaps[1].resumedFrameIndex, "never reconnected")
        XCTAssertEqual(source.restartCount(throughFrame: 9), 0)
        XCTAssertEqual(source.restartCount(throughFrame: 10), 1)
        XCTAssertEqual(source.restartCount(throughFrame: 14), 1)
    }

    /// Virtual wall-clock time: `wait` advances it instead of sleeping, so backoff and gaps are exact and no test
    /// depends on how busy the machine is.
    final class VirtualClock: @unchecked Sendable {
        var now = Date(timeIntervalSince1970: 1_000_000)
        var waits: [Double] = []
        func wait(_ seconds: Double) -> Bool {
            waits.append(seconds)
            now += seconds
            return true
        }
    }

    func testWallClockGapMovesTheTimelineOn() throws {
        let opener = Opener([FakeSession(startTicks: 0, count: 3), FakeSession(startTicks: 0, count: 3, failsAtEnd: false)])
        let policy = ReconnectPolicy(reconnects: true, attempts: 1, initialDelay: 0.3, openTimeout: 0)
        let clock = VirtualClock()
        let source = try ReconnectingSource(name: "rtsp://test", policy: policy, wait: clock.wait, clock: { clock.now }) {
            try opener.open()
        }
        var frames: [Frame] = []
        while let frame = try? source.nextFrame() { frames.append(frame) }
        XCTAssertEqual(frames.count, 6)
        XCTAssertEqual(clock.waits.first, 0.3)
        // The 0.3 s wait without frames shows on the timeline: the gap is the wait (the frames themselves arrive
        // at the same virtual instant), to the tick (1/30000 s time base here: 1e-4).
        XCTAssertEqual(frames[3].seconds - frames[2].seconds, 0.3, accuracy: 1e-4)
        XCTAssertEqual(source.gaps.first?.seconds ?? 0, 0.3, accuracy: 1e-6, "Date's resolution at this epoch: 1e-7")
    }

    func testFirstOpenRetriesUntilItsTimeout() {
        let opener = Opener([])
        let clock = VirtualClock()
        let started = clock.now
        let policy = ReconnectPolicy(reconnects: true, initialDelay: 0.1, openTimeout: 0.5)
        XCTAssertThrowsError(try ReconnectingSource(name: "rtsp://127.0.0.1:9/none", policy: policy, wait: clock.wait,
                                                    clock: { clock.now }) { try opener.open() }) { error in
            XCTAssertTrue("\(error)".hasPrefix("cannot open rtsp://127.0.0.1:9/none: no stream within"), "\(error)")
            XCTAssertTrue("\(error)".contains("Connection refused"), "\(error)")
        }
        // Waits of 0.1 and 0.2 s, then what is left of the 0.5 s (0.2 s): it gives up exactly at the timeout.
        XCTAssertEqual(clock.waits.count, 3)
        XCTAssertEqual(clock.waits.reduce(0, +), 0.5, accuracy: 1e-6)
        XCTAssertEqual(clock.now.timeIntervalSince(started), 0.5, accuracy: 1e-6, "Date's resolution at this epoch: 1e-7")
        XCTAssertEqual(opener.opened, 4, "tried at 0, 0.1, 0.3 and 0.5 s")
    }

    func testStopsAtDurationAndOnStopRequest() throws {
        let limited = try ReconnectingSource(name: "x", policy: ReconnectPolicy(openTimeout: 0), stopAfter: 0.1) {
            FakeSession(startTicks: 5000, count: 100)
        }
        var count = 0
        while try limited.nextFrame() != nil { count += 1 }
        XCTAssertEqual(count, 3, "frames at 0, 1/30 and 2/30 s come before 0.1 s")
        XCTAssertTrue(limited.reachedStopTime)

        nonisolated(unsafe) var stop = false
        let stoppable = try ReconnectingSource(name: "x", policy: ReconnectPolicy(initialDelay: 60, openTimeout: 0),
                                               shouldStop: { stop }) { FakeSession(startTicks: 0, count: 2) }
        _ = try stoppable.nextFrame()
        _ = try stoppable.nextFrame()
        DispatchQueue.global().asyncAfter(deadline: .now() + 0.2) { stop = true }
        let started = Date()
        XCTAssertNil(try stoppable.nextFrame(), "a stop request ends the 60 s reconnect wait")
        XCTAssertLessThan(Date().timeIntervalSince(started), 2)
    }

    // MARK: Latency and CSV

    func testLatencyPercentilesMatchSortedSamples() {
        var statistics = LatencyStatistics()
        var generator = SystemRandomNumberGenerator()
        var samples: [Double] = []
        for _ in 0..<5000 {
            let value = Double.random(in: 0.005...0.4, using: &generator)
            samples.append(value)
            statistics.add(value)
        }
        let sorted = samples.sorted()
        for percent in [50.0, 95, 99, 100] {
            // Nearest rank on the sorted samples; the histogram is exact to its 1 ms bins.
            let reference = sorted[Int((percent / 100 * Double(sorted.count)).rounded(.up)) - 1]
            XCTAssertEqual(statistics.percentile(percent)!, reference, accuracy: 0.001, "p\(percent)")
        }
        XCTAssertEqual(statistics.maximum, sorted.last!)
        XCTAssertEqual(statistics.count, 5000)
        XCTAssertNil(LatencyStatistics().percentile(50))
    }

    func testLiveCSVRowsHaveWallTimeAndReconnectMarks() throws {
        let folder = try LiveTestSupport.temporaryFolder()
        defer { try? FileManager.default.removeItem(at: folder) }
        let path = folder.appendingPathComponent("live.csv").path
        let writer = try TimelineCSVWriter(path: path, includesWallTime: true, includesEvents: true)
        let gap = StreamGap(reason: "the stream ended", lastFrameWallTime: Date(timeIntervalSince1970: 0), lastFrameTime: 0,
                            resumedWallTime: Date(timeIntervalSince1970: 2.5), resumedTime: 2.5, resumedFrameIndex: 2,
                            attempts: 1)
        let sink = LiveCSVSink(writer: writer) { index in index >= 2 ? [gap] : [] }
        let image = Image(width: 2, height: 2, format: .rgb24)
        for index in [0, 3, 4] {  // frame 2, the first after the gap, was dropped: frame 3 carries the mark
            let frame = Frame(image: image, timestamp: Timestamp(seconds: Double(index), timeBase: Rational(1, 1000)), index: index)
            try sink.consume(AnnotatedFrame(frame: frame, faces: [], arrival: Date(timeIntervalSince1970: 1_700_000_000)))
        }
        try sink.finish(completed: true)
        let rows = try LiveTestSupport.readCSV(path)
        XCTAssertEqual(rows.count, 3)
        XCTAssertEqual(rows.map { $0["wall_time"] }, Array(repeating: "2023-11-14T22:13:20.000Z", count: 3))
        XCTAssertEqual(rows.map { $0["event"] }, ["", "reconnect", ""])
        XCTAssertEqual(rows.map { $0["gap_s"] }, ["", "2.500", ""])
    }
}
