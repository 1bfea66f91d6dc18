import Foundation
import MediaIO
import VisionCore
import XCTest

/// VideoWriter -> file -> VideoReader on a synthetic moving pattern.
final class RoundTripTests: XCTestCase {
    override func setUp() {
        MediaLog.setLevel(.error)  // x264 announces itself at info level
    }

    /// A gradient background with a bright square that moves 3 px right and 2 px down per frame.
    static func pattern(width: Int, height: Int, frame: Int) -> Image {
        var pixels = [UInt8](repeating: 0, count: width * height * 3)
        let left = (frame * 3) % (width - 16), top = (frame * 2) % (height - 16)
        for y in 0..<height {
            for x in 0..<width {
                let i = (y * width + x) * 3
                let inSquare = x >= left && x < left + 16 && y >= top && y < top + 16
                pixels[i] = inSquare ? 240 : UInt8(x * 200 / width)
                pixels[i + 1] = inSquare ? 230 : UInt8(y * 200 / height)
                pixels[i + 2] = inSquare ? 40 : 100
            }
        }
        return Image(width: width, height: height, format: .rgb24, pixels: pixels)
    }

    /// Variable frame rate on purpose: gaps of 40, 40, 80, 40, 120 ms, ... must survive exactly.
    static func timestamps(count: Int) -> [Int64] {
        var ticks: [Int64] = []
        var t: Int64 = 0
        for i in 0..<count {
            ticks.append(t)
            t += [40, 40, 80, 40, 120][i % 5]
        }
        return ticks
    }

    /// `inspect` gets the written file's path before it is removed.
    func roundTrip(container: String, width: Int, height: Int, count: Int = 30,
                   inspect: (String) throws -> Void = { _ in }) throws {
        let folder = try TestSupport.temporaryFolder()
        defer { try? FileManager.default.removeItem(at: folder) }
        let path = folder.appendingPathComponent("pattern.\(container)").path
        let timeBase = Rational(1, 1000)
        let ticks = Self.timestamps(count: count)

        let writer = try VideoWriter(path: path, width: width, height: height, timeBase: timeBase,
                                     frameRate: Rational(25, 1), settings: EncoderSettings(crf: 12, preset: "veryfast"))
        XCTAssertEqual(writer.encoderName, "libx264")
        for i in 0..<count {
            let frame = Frame(image: Self.pattern(width: width, height: height, frame: i),
                              timestamp: Timestamp(ticks: ticks[i], timeBase: timeBase), index: i)
            try writer.write(frame)
        }
        try writer.finish()
        XCTAssertEqual(writer.framesWritten, count)
        try inspect(path)

        let reader = try VideoReader(url: path)
        // yuv420p needs even sizes: odd ones come back one pixel larger (the last column/row repeated).
        let paddedWidth = (width + 1) & ~1, paddedHeight = (height + 1) & ~1
        XCTAssertEqual(reader.info.width, paddedWidth)
        XCTAssertEqual(reader.info.height, paddedHeight)
        XCTAssertEqual(reader.info.codec, "h264")
        XCTAssertFalse(reader.info.hasAudio)
        var frames: [Frame] = []
        while let frame = try reader.nextFrame(as: .rgb24) { frames.append(frame) }
        XCTAssertEqual(frames.count, count)
        XCTAssertEqual(reader.corruptPacketCount, 0)
        for (i, frame) in frames.enumerated() {
            // Timestamps: exact to the millisecond (mkv's time base is 1 ms; mp4 keeps 1/1000 as given).
            XCTAssertEqual(frame.seconds, Double(ticks[i]) / 1000, accuracy: 1e-9, "frame \(i)")
            XCTAssertEqual(frame.index, i)
            // Pixels: mean absolute error under 3 levels at crf 12 over the original area.
            let expected = Self.pattern(width: width, height: height, frame: i)
            var total = 0
            for y in 0..<height {
                for x in 0..<width * 3 {
                    total += abs(Int(frame.image.pixels[y * paddedWidth * 3 + x]) - Int(expected.pixels[y * width * 3 + x]))
                }
            }
            let meanError = Double(total) / Double(width * height * 3)
            XCTAssertLessThan(meanError, 3, "frame \(i) of \(container)")
            // The square is where it should be: its centre is bright yellow (tolerance 40 for chroma blur).
            let cx = (i * 3) % (width - 16) + 8, cy = (i * 2) % (height - 16) + 8
            let c = (cy * paddedWidth + cx) * 3
            XCTAssertEqual(Double(frame.image.pixels[c]), 240, accuracy: 40, "frame \(i)")
            XCTAssertEqual(Double(frame.image.pixels[c + 2]), 40, accuracy: 40, "frame \(i)")
        }
    }

    func testMP4RoundTripKeepsFramesTimestampsAndPixels() throws {
        try roundTrip(container: "mp4", width: 96, height: 64)
    }

    /// The options x264 itself recorded in the stream (its "options: ..." SEI), by name.
    static func x264Options(in path: String) throws -> [String: String] {
        let data = try Data(contentsOf: URL(fileURLWithPath: path))
        guard let start = data.range(of: Data("options: ".utf8)) else { return [:] }
        let end = data[start.upperBound...].firstIndex(of: 0) ?? data.endIndex
        let pairs = String(decoding: data[start.upperBound..<end], as: UTF8.self).split(separator: " ").map {
            $0.split(separator: "=", maxSplits: 1).map(String.init)
        }
        return Dictionary(pairs.filter { $0.count == 2 }.map { ($0[0], $0[1]) }, uniquingKeysWith: { first, _ in first })
    }

    /// Above 720p a file's encoder bounds its frames in flight (memory): sliced threads, one B-frame and a
    /// lookahead of 5 at the default preset, as x264 records them (it only warns about parameters it cannot
    /// parse); frames, timestamps and pixels survive as at small sizes, which keep veryfast's own B-frames and
    /// lookahead, as live outputs do at every size.
    func testFullHDRoundTripWithTheLargeFrameEncoderSettings() throws {
        try roundTrip(container: "mp4", width: 1920, height: 1080, count: 12) { path in
            let options = try Self.x264Options(in: path)
            XCTAssertEqual(options["sliced_threads"], "1")
            XCTAssertEqual(options["bframes"], "1")
            XCTAssertEqual(options["rc_lookahead"], "5")
        }
        // A live output (fragmented MP4) keeps frame threads and veryfast's lookahead (latency first), and has
        // no B-frames at any size.
        let folder = try TestSupport.temporaryFolder()
        defer { try? FileManager.default.removeItem(at: folder) }
        let livePath = folder.appendingPathComponent("live.mp4").path
        let live = try VideoWriter(path: livePath, width: 1920, height: 1080, timeBase: Rational(1, 25),
                                   frameRate: Rational(25, 1), settings: EncoderSettings(preset: "veryfast"),
                                   live: LiveOutput())
        for i in 0..<4 {
            try live.write(Frame(image: Self.pattern(width: 1920, height: 1080, frame: i),
                                 timestamp: Timestamp(ticks: Int64(i), timeBase: Rational(1, 25)), index: i))
        }
        try live.finish()
        let liveOptions = try Self.x264Options(in: livePath)
        XCTAssertEqual(liveOptions["bframes"], "0")
        XCTAssertEqual(liveOptions["sliced_threads"], "0")
        XCTAssertEqual(liveOptions["rc_lookahead"], "10")
        try roundTrip(container: "mp4", width: 96, height: 64, count: 5) { path in
            let options = try Self.x264Options(in: path)
            XCTAssertEqual(options["sliced_threads"], "0")
            XCTAssertEqual(options["bframes"], "3")
            XCTAssertEqual(options["rc_lookahead"], "10")
        }
    }

    func testMKVRoundTripWithOddSize() throws {
        try roundTrip(container: "mkv", width: 95, height: 63)
    }

    func testMOVRoundTripInGray() throws {
        let folder = try TestSupport.temporaryFolder()
        defer { try? FileManager.default.removeItem(at: folder) }
        let path = folder.appendingPathComponent("gray.mov").path
        let timeBase = Rational(1, 30)
        let writer = try VideoWriter(path: path, width: 64, height: 48, timeBase: timeBase)
        for i in 0..<10 {
            let gray = Image(width: 64, height: 48, format: .gray8,
                             pixels: [UInt8](repeating: UInt8(20 * i + 10), count: 64 * 48))
            try writer.write(Frame(image: gray, timestamp: Timestamp(ticks: Int64(i), timeBase: timeBase), index: i))
        }
        try writer.finish()
        let reader = try VideoReader(url: path)
        var levels: [UInt8] = []
        while let frame = try reader.nextFrame(as: .gray8) {
            XCTAssertEqual(frame.timestamp.rescaled(to: timeBase).ticks, Int64(levels.count))
            levels.append(frame.image.pixels[64 * 24 + 32])
        }
        XCTAssertEqual(levels.count, 10)
        // Flat gray survives limited-range YUV and back within 2 levels.
        for (i, level) in levels.enumerated() {
            XCTAssertEqual(Double(level), Double(20 * i + 10), accuracy: 2, "frame \(i)")
        }
    }

    /// The fallback encoder (used when libx264 is missing) with a 1/90000 time base it cannot take as is.
    func testFallbackEncoderKeepsFrameCountAndTimestamps() throws {
        let folder = try TestSupport.temporaryFolder()
        defer { try? FileManager.default.removeItem(at: folder) }
        let path = folder.appendingPathComponent("fallback.mkv").path
        let timeBase = Rational(1, 90000)
        let writer = try VideoWriter(path: path, width: 64, height: 48, timeBase: timeBase,
                                     settings: EncoderSettings(crf: 10, encoder: "mpeg4"))
        XCTAssertEqual(writer.encoderName, "mpeg4")
        for i in 0..<12 {
            let frame = Frame(image: Self.pattern(width: 64, height: 48, frame: i),
                              timestamp: Timestamp(ticks: Int64(i) * 3600, timeBase: timeBase), index: i)
            try writer.write(frame)
        }
        try writer.finish()
        let reader = try VideoReader(url: path)
        XCTAssertEqual(reader.info.codec, "mpeg4")
        var seconds: [Double] = []
        while let frame = try reader.nextFrame(as: .rgb24) { seconds.append(frame.seconds) }
        XCTAssertEqual(seconds.count, 12)
        for (i, s) in seconds.enumerated() { XCTAssertEqual(s, Double(i) * 0.04, accuracy: 0.001) }
    }

    func testWriterRejectsBadArgumentsWithTypedErrors() throws {
        let folder = try TestSupport.temporaryFolder()
        defer { try? FileManager.default.removeItem(at: folder) }
        let timeBase = Rational(1, 25)
        XCTAssertThrowsError(try VideoWriter(path: folder.appendingPathComponent("x.nosuchcontainer").path,
                                             width: 64, height: 48, timeBase: timeBase)) {
            XCTAssertEqual($0 as? MediaError, .unknownContainer(path: folder.appendingPathComponent("x.nosuchcontainer").path))
        }
        XCTAssertThrowsError(try VideoWriter(path: "/nonexistent-folder/x.mp4", width: 64, height: 48, timeBase: timeBase)) {
            guard case MediaError.cannotWrite = $0 else { return XCTFail("got \($0)") }
        }
    }

    /// A source that changes resolution part way (a camera reconnecting at another size): the frames are scaled to
    /// the writer's size, counted, and the file stays one playable stream.
    func testFramesOfAnotherSizeAreScaledToTheWriters() throws {
        let folder = try TestSupport.temporaryFolder()
        defer { try? FileManager.default.removeItem(at: folder) }
        let path = folder.appendingPathComponent("resized.mp4").path
        let timeBase = Rational(1, 25)
        let writer = try VideoWriter(path: path, width: 128, height: 96, timeBase: timeBase,
                                     settings: EncoderSettings(crf: 12, preset: "veryfast"))
        for i in 0..<20 {
            let size = i < 10 ? (128, 96) : (64, 48)
            try writer.write(Frame(image: Self.pattern(width: size.0, height: size.1, frame: 0),
                                   timestamp: Timestamp(ticks: Int64(i), timeBase: timeBase), index: i))
        }
        try writer.finish()
        XCTAssertEqual(writer.rescaledFrames, 10)
        let reader = try VideoReader(url: path)
        var frames: [Frame] = []
        while let frame = try reader.nextFrame(as: .rgb24) { frames.append(frame) }
        XCTAssertEqual(frames.count, 20)
        XCTAssertTrue(frames.allSatisfy { $0.image.width == 128 && $0.image.height == 96 })
        // The square (16 px at the origin in the small frames) comes back twice as large: its centre, (16, 16) at
        // full size, is yellow, and (40, 40) is background.
        let last = frames[19].image.pixels
        XCTAssertEqual(Double(last[(16 * 128 + 16) * 3]), 240, accuracy: 40)
        XCTAssertEqual(Double(last[(16 * 128 + 16) * 3 + 2]), 40, accuracy: 40)
        XCTAssertEqual(Double(last[(40 * 128 + 40) * 3 + 2]), 100, accuracy: 40)
    }
}
