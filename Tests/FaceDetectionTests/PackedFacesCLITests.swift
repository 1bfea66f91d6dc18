import FaceDetection
import Foundation
import MediaIO
import VisionCore
import XCTest

/// `fer-annotate --faces-only` on packed faces, as a user runs it: the default detector (auto) reports at least the
/// faces `--detector mtcnn` reports, on a team photo and on a clip of it drifting across the frame, with one ID per
/// face on the clip.
final class PackedFacesCLITests: XCTestCase {
    static let binary = FaceDetectionTestSupport.packageRoot.appendingPathComponent(".build/release/fer-annotate").path

    struct Row { var frame: Int; var id: Int; var box: Box }

    /// Runs fer-annotate and reads the face rows of its CSV; output goes to files, so no pipe can fill up.
    func facesOnly(_ input: String, detector: String?, folder: URL) throws -> [Row] {
        guard FileManager.default.isExecutableFile(atPath: Self.binary) else {
            XCTFail("\(Self.binary) missing: Scripts/test.sh builds it before the tests")
            throw XCTSkip("fer-annotate not built")
        }
        let csv = folder.appendingPathComponent("\(detector ?? "auto").csv")
        let process = Process()
        process.executableURL = URL(fileURLWithPath: Self.binary)
        process.arguments = [input, "--faces-only", "--no-video", "--csv", csv.path, "--overwrite", "-q"]
            + (detector.map { ["--detector", $0] } ?? [])
        let log = folder.appendingPathComponent("\(detector ?? "auto").log")
        _ = FileManager.default.createFile(atPath: log.path, contents: nil)
        process.standardError = try FileHandle(forWritingTo: log)
        process.standardOutput = FileHandle.nullDevice
        try process.run()
        process.waitUntilExit()
        XCTAssertEqual(process.terminationStatus, 0, (try? String(contentsOf: log, encoding: .utf8)) ?? "")
        let lines = try String(contentsOf: csv, encoding: .utf8).split(separator: "\n").dropFirst()
        return lines.compactMap { line in
            let fields = line.split(separator: ",", omittingEmptySubsequences: false).map(String.init)
            guard let frame = Int(fields[0]), let id = Int(fields[2]), let x = Float(fields[3]), let y = Float(fields[4]),
                  let w = Float(fields[5]), let h = Float(fields[6]) else { return nil }
            return Row(frame: frame, id: id, box: Box(x: x, y: y, width: w, height: h))
        }
    }

    /// True faces claimed one to one by rows (centres within 0.35 face widths, sizes within a factor 1.6: the
    /// detectors frame faces differently, so the test compares where faces are, not how they are boxed).
    func hits(_ rows: [Row], faces: [Box]) -> Int {
        var claimed = Set<Int>()
        for row in rows {
            let candidates = faces.indices.filter { index in
                let face = faces[index]
                let distance = face.center.distance(to: row.box.center)
                let ratio = max(row.box.width, face.width) / min(row.box.width, face.width)
                return !claimed.contains(index) && distance < 0.35 * face.width && ratio < 1.6
            }
            if let best = candidates.min(by: { faces[$0].center.distance(to: row.box.center)
                < faces[$1].center.distance(to: row.box.center) }) { claimed.insert(best) }
        }
        return claimed.count
    }

    func teamPhoto() throws -> (image: Image, faces: [Box]) {
        try MTCNNTestSupport.packedFacesPicture(locatingWith: try MTCNNTestSupport.detector(), rows: 2, perRow: 6,
                                                widths: [25, 28, 31, 34, 37, 40])
    }

    func testTeamPhotoDefaultFindsWhatMTCNNFinds() throws {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("packed-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: folder) }
        let photo = try teamPhoto()
        let path = folder.appendingPathComponent("team.png").path
        try encodeImage(photo.image, to: path)
        let auto = try facesOnly(path, detector: nil, folder: folder)
        let mtcnn = try facesOnly(path, detector: "mtcnn", folder: folder)
        let blazeFace = try facesOnly(path, detector: "blazeface", folder: folder)
        print("team photo: auto \(hits(auto, faces: photo.faces))/\(photo.faces.count) in \(auto.count) rows, "
              + "mtcnn \(hits(mtcnn, faces: photo.faces)) in \(mtcnn.count), blazeface \(hits(blazeFace, faces: photo.faces)) in \(blazeFace.count)")
        XCTAssertGreaterThanOrEqual(hits(mtcnn, faces: photo.faces), 11, "a photo MTCNN reads")
        XCTAssertGreaterThanOrEqual(hits(auto, faces: photo.faces), max(hits(mtcnn, faces: photo.faces), hits(blazeFace, faces: photo.faces)))
        XCTAssertLessThanOrEqual(auto.count, photo.faces.count, "no duplicate or false face")
    }

    /// 40 frames (1.6 s at 25 fps) of the photo drifting 1 px per frame: from frame 5 on (a track is reported from
    /// its third detection), auto reports on every frame at least the faces mtcnn reports, each face keeps one ID,
    /// and no ID is shared.
    func testTeamPhotoClipDefaultFollowsWhatMTCNNFollows() throws {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("packed-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: folder) }
        let photo = try teamPhoto()
        let frames = 40, travel = 40
        // An even-sized canvas wider than the photo by the travel, gray beyond it.
        let width = (photo.image.width + travel + 1) / 2 * 2, height = (photo.image.height + 1) / 2 * 2
        for frame in 0..<frames {
            var canvas = Image(width: width, height: height, format: .rgb24, pixels: [UInt8](repeating: 128, count: width * height * 3))
            for row in 0..<photo.image.height {
                let source = row * photo.image.bytesPerRow, target = row * canvas.bytesPerRow + frame * 3
                canvas.pixels.replaceSubrange(target..<(target + photo.image.bytesPerRow),
                                              with: photo.image.pixels[source..<(source + photo.image.bytesPerRow)])
            }
            try encodeImage(canvas, to: folder.appendingPathComponent(String(format: "frame%03d.png", frame)).path)
        }
        let clip = folder.appendingPathComponent("team.mp4").path
        let ffmpeg = Process()
        ffmpeg.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        ffmpeg.arguments = ["ffmpeg", "-nostdin", "-loglevel", "error", "-y", "-framerate", "25", "-i",
                            folder.appendingPathComponent("frame%03d.png").path, "-c:v", "libx264", "-crf", "12",
                            "-pix_fmt", "yuv420p", clip]
        try ffmpeg.run()
        ffmpeg.waitUntilExit()
        XCTAssertEqual(ffmpeg.terminationStatus, 0)

        let auto = try facesOnly(clip, detector: nil, folder: folder)
        let mtcnn = try facesOnly(clip, detector: "mtcnn", folder: folder)
        var shortfalls: [String] = []
        for frame in 5..<frames {
            let faces = photo.faces.map { Box(x: $0.x + Float(frame), y: $0.y, width: $0.width, height: $0.height) }
            let autoHits = hits(auto.filter { $0.frame == frame }, faces: faces)
            let mtcnnHits = hits(mtcnn.filter { $0.frame == frame }, faces: faces)
            if autoHits < mtcnnHits { shortfalls.append("frame \(frame): auto \(autoHits), mtcnn \(mtcnnHits)") }
        }
        XCTAssertEqual(shortfalls, [], "frames where auto followed fewer faces than mtcnn")
        // One ID per face: the IDs on the faces' positions never change, and each belongs to one face.
        var idsByFace: [Int: Set<Int>] = [:]
        for row in auto where row.frame >= 5 {
            let faces = photo.faces.map { Box(x: $0.x + Float(row.frame), y: $0.y, width: $0.width, height: $0.height) }
            if let face = faces.indices.min(by: { faces[$0].center.distance(to: row.box.center)
                < faces[$1].center.distance(to: row.box.center) }),
               faces[face].center.distance(to: row.box.center) < 0.35 * faces[face].width {
                idsByFace[face, default: []].insert(row.id)
            }
        }
        print("team clip: \(idsByFace.count) faces followed, IDs \(idsByFace.keys.sorted().map { idsByFace[$0]!.sorted() })")
        XCTAssertGreaterThanOrEqual(idsByFace.count, 11)
        XCTAssertTrue(idsByFace.values.allSatisfy { $0.count == 1 }, "a face changed ID")
        let ids = idsByFace.values.flatMap { $0 }
        XCTAssertEqual(Set(ids).count, ids.count, "two faces shared an ID")
    }
}

private extension Point {
    func distance(to other: Point) -> Float { ((x - other.x) * (x - other.x) + (y - other.y) * (y - other.y)).squareRoot() }
}
