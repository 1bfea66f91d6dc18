import Foundation
import MediaIO
import VisionCore
import XCTest

final class ImageDecodingTests: XCTestCase {
    func testUniformGrayPNGDecodesExactly() throws {
        let folder = try TestSupport.temporaryFolder()
        defer { try? FileManager.default.removeItem(at: folder) }
        let path = folder.appendingPathComponent("gray.png").path
        try TestSupport.ffmpeg(["-f", "lavfi", "-i", "color=c=0x804020:s=47x31,format=rgb24", "-frames:v", "1", path])

        let rgb = try decodeImage(at: path, as: .rgb24)
        XCTAssertEqual(rgb.width, 47)
        XCTAssertEqual(rgb.height, 31)
        XCTAssertEqual(rgb.pixels.count, 47 * 31 * 3)
        // PNG is lossless RGB: every pixel exactly (0x80, 0x40, 0x20).
        for i in stride(from: 0, to: rgb.pixels.count, by: 3) {
            XCTAssertEqual(Array(rgb.pixels[i..<i + 3]), [0x80, 0x40, 0x20])
            if rgb.pixels[i] != 0x80 { break }
        }
        let gray = try decodeImage(at: path, as: .gray8)
        XCTAssertEqual(gray.pixels.count, 47 * 31)
        // Untagged small image: BT.601 luma 0.299*128 + 0.587*64 + 0.114*32 = 79.6, tolerance 1 for rounding.
        XCTAssertEqual(Double(gray.pixels[0]), 79.6, accuracy: 1)
    }

    func testJPEGMatchesFFmpegCLIDecode() throws {
        let folder = try TestSupport.temporaryFolder()
        defer { try? FileManager.default.removeItem(at: folder) }
        let path = folder.appendingPathComponent("pattern.jpg").path
        try TestSupport.ffmpeg(["-f", "lavfi", "-i", "testsrc2=s=48x48", "-frames:v", "1", "-pix_fmt", "yuvj420p", path])
        let reference = try TestSupport.run("ffmpeg", ["-nostdin", "-loglevel", "error", "-i", path,
                                                       "-f", "rawvideo", "-pix_fmt", "gray", "-"])
        XCTAssertEqual(reference.status, 0)
        let gray = try decodeImage(at: path, as: .gray8)
        XCTAssertEqual(gray.width, 48)
        XCTAssertEqual(gray.pixels.count, reference.standardOutput.count)
        // Full-range JPEG luma is copied as is; allow 2 levels for rounding differences.
        let worst = zip(gray.pixels, reference.standardOutput).map { abs(Int($0) - Int($1)) }.max() ?? 0
        XCTAssertLessThanOrEqual(worst, 2)
    }

    func testMissingAndBogusImagesThrowTypedErrors() throws {
        let folder = try TestSupport.temporaryFolder()
        defer { try? FileManager.default.removeItem(at: folder) }
        XCTAssertThrowsError(try decodeImage(at: folder.appendingPathComponent("nope.jpg").path, as: .gray8)) {
            guard case MediaError.fileNotFound = $0 else { return XCTFail("got \($0)") }
        }
        let bogus = folder.appendingPathComponent("bogus.jpg")
        try Data("this is not a picture".utf8).write(to: bogus)
        XCTAssertThrowsError(try decodeImage(at: bogus.path, as: .gray8)) {
            guard case MediaError.notMedia(let path, _) = $0 else { return XCTFail("got \($0)") }
            XCTAssertEqual(path, bogus.path)
        }
    }

    /// A JPEG in memory (a webcam frame from the web page) decodes to exactly what the same file decodes to;
    /// anything else, or a JPEG cut short, is `notMedia` with the frame's name.
    func testJPEGFromMemoryMatchesTheFileAndRefusesOtherBytes() throws {
        let folder = try TestSupport.temporaryFolder()
        defer { try? FileManager.default.removeItem(at: folder) }
        let path = folder.appendingPathComponent("frame.jpg").path
        try TestSupport.ffmpeg(["-f", "lavfi", "-i", "testsrc2=s=160x90", "-frames:v", "1", "-q:v", "3", path])
        let bytes = Array(try Data(contentsOf: URL(fileURLWithPath: path)))
        for format in [PixelFormat.rgb24, .gray8] {
            XCTAssertEqual(try decodeJPEG(bytes, as: format), try decodeImage(at: path, as: format), "\(format)")
        }
        let png = folder.appendingPathComponent("frame.png").path
        try TestSupport.ffmpeg(["-i", path, png])
        for (name, data) in [("png", Array(try Data(contentsOf: URL(fileURLWithPath: png)))), ("text", Array("hello".utf8)),
                             ("empty", []), ("cut", Array(bytes.prefix(40)))] {
            XCTAssertThrowsError(try decodeJPEG(data, as: .rgb24, name: name)) {
                guard case MediaError.notMedia(let shown, _) = $0 else { return XCTFail("\(name): got \($0)") }
                XCTAssertEqual(shown, name)
            }
        }
    }

    /// FER2013 has ~32k 48x48 JPEGs, decoded from several threads: every decode must give the same pixels.
    /// (Speed is a benchmark's business, not a test's: the time is printed, not asserted.)
    func testManySmallJPEGsDecodeIdenticallyInParallel() throws {
        let folder = try TestSupport.temporaryFolder()
        defer { try? FileManager.default.removeItem(at: folder) }
        try TestSupport.ffmpeg(["-f", "lavfi", "-i", "testsrc2=s=48x48:r=25", "-frames:v", "64",
                                folder.appendingPathComponent("%03d.jpg").path])
        let paths = (1...64).map { folder.appendingPathComponent(String(format: "%03d.jpg", $0)).path }
        let reference = try paths.map { try decodeImage(at: $0, as: .gray8) }

        let rounds = 16
        let start = Date()
        nonisolated(unsafe) var mismatches = 0
        let lock = NSLock()
        DispatchQueue.concurrentPerform(iterations: rounds * paths.count) { i in
            let image = try? decodeImage(at: paths[i % paths.count], as: .gray8)
            if image != reference[i % paths.count] { lock.lock(); mismatches += 1; lock.unlock() }
        }
        let perImage = Date().timeIntervalSince(start) / Double(rounds * paths.count)
        XCTAssertEqual(mismatches, 0)
        print("decodeImage: \(String(format: "%.3f", perImage * 1e3)) ms per 48x48 JPEG")
    }
}
