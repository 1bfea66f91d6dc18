import Foundation
import XCTest

/// The annotated video pushed to a URL while a live input plays: RTMP, RTSP (RECORD) and UDP MPEG-TS, each received
/// by a real FFmpeg listening on 127.0.0.1 (ffmpeg's own RTMP and RTSP server modes), and an HLS playlist on disk.
final class LiveOutputTests: XCTestCase {
    var folder: URL!

    override func setUpWithError() throws { folder = try LiveTestSupport.temporaryFolder() }
    override func tearDownWithError() throws { try? FileManager.default.removeItem(at: folder) }

    func path(_ name: String) -> String { folder.appendingPathComponent(name).path }

    /// Starts `receiver` (an ffmpeg that listens and copies what arrives into a file), then streams about 4 s of
    /// WolfgangLanger_Pexels.mp4 read as live to `url`; returns the frames fer-annotate analysed and the receiver's result.
    func push(to url: String, receiver: [String]) throws -> (analysed: Int, received: LiveTestSupport.Result) {
        let listener = try LiveTestSupport.RunningProcess(["ffmpeg", "-nostdin", "-v", "error"] + receiver)
        let port = Int(url.split(separator: ":")[2].prefix { $0.isNumber })!
        XCTAssertTrue(LiveTestSupport.waitUntilListening(port: port, udp: url.hasPrefix("udp:")), "the receiver listens")
        let run = try LiveTestSupport.RunningProcess([try LiveTestSupport.binary(),
            try LiveTestSupport.sample("WolfgangLanger_Pexels.mp4"), "--live", "--duration", "4", "-o", url,
            "--json", path("summary.json"), "-q", "--preset", "ultrafast"])
        let sent = run.wait(timeout: 60)
        XCTAssertEqual(sent.status, 0, sent.standardError)
        let received = listener.wait(timeout: 20)
        let live = try XCTUnwrap(LiveTestSupport.readJSON(path("summary.json"))["live"] as? [String: Any])
        return (live["frames_analyzed"] as? Int ?? 0, received)
    }

    func testPushesToAnRTMPServer() throws {
        let url = "rtmp://127.0.0.1:\(LiveTestSupport.unusedPort())/live/annotated"
        let (analysed, _) = try push(to: url, receiver: ["-listen", "1", "-i", url, "-c", "copy", "-y", path("got.flv")])
        XCTAssertGreaterThan(analysed, 48, "about 4 s at 24 fps, most frames analysed")
        // RTMP runs over TCP: every frame sent arrives.
        XCTAssertEqual(try LiveTestSupport.probe(path("got.flv")).frames, analysed)
    }

    func testPushesToAnRTSPServer() throws {
        let url = "rtsp://127.0.0.1:\(LiveTestSupport.unusedPort())/annotated"
        let (analysed, _) = try push(to: url, receiver: ["-rtsp_flags", "listen", "-rtsp_transport", "tcp", "-i", url,
                                                        "-c", "copy", "-y", path("got.mkv")])
        XCTAssertGreaterThan(analysed, 48)
        XCTAssertEqual(try LiveTestSupport.probe(path("got.mkv")).frames, analysed, "interleaved over TCP: nothing lost")
    }

    func testSendsMPEGTSOverUDP() throws {
        let port = LiveTestSupport.unusedPort()
        // The receiver stops 3 s after the last datagram.
        let (analysed, _) = try push(to: "udp://127.0.0.1:\(port)?pkt_size=1316",
                                     receiver: ["-timeout", "3000000", "-i", "udp://127.0.0.1:\(port)?timeout=3000000",
                                                "-c", "copy", "-y", path("got.ts")])
        XCTAssertGreaterThan(analysed, 48)
        // Datagrams may be lost, even on loopback, but nearly all arrive and decode.
        XCTAssertGreaterThanOrEqual(Double(try LiveTestSupport.probe(path("got.ts")).frames), 0.9 * Double(analysed))
    }

    func testWritesAnHLSPlaylist() throws {
        let run = try LiveTestSupport.RunningProcess([try LiveTestSupport.binary(),
            try LiveTestSupport.sample("WolfgangLanger_Pexels.mp4"), "--live", "--duration", "4", "-o", path("live.m3u8"),
            "--json", path("summary.json"), "-q", "--preset", "ultrafast"])
        let result = run.wait(timeout: 60)
        XCTAssertEqual(result.status, 0, result.standardError)
        let playlist = try String(contentsOfFile: path("live.m3u8"), encoding: .utf8)
        XCTAssertTrue(playlist.hasPrefix("#EXTM3U"), playlist)
        let segments = playlist.split(separator: "\n").filter { !$0.hasPrefix("#") }
        XCTAssertFalse(segments.isEmpty, "the playlist lists its segments")
        for segment in segments {
            XCTAssertTrue(FileManager.default.fileExists(atPath: path(String(segment))), "segment \(segment) exists")
        }
        let live = try XCTUnwrap(LiveTestSupport.readJSON(path("summary.json"))["live"] as? [String: Any])
        XCTAssertEqual(try LiveTestSupport.probe(path("live.m3u8")).frames, live["frames_analyzed"] as? Int)
    }
}
