import EmotionModel
import Foundation
import XCTest

final class FER2013LoadingTests: XCTestCase {
    func testCSVAndFolderLayoutsGiveTheSameImagesInCanonicalClassOrder() throws {
        let folder = try SharedFER2013.dataFolder()
        let fromFolders = try FER2013.load(from: folder, split: "val").balancedSample(perClass: 3)
        XCTAssertEqual(fromFolders.classCounts, [3, 3, 3, 3, 3, 3, 3])
        // Folders on disk sort as angry, disgust, fear, happy, neutral, sad, surprise; labels follow FER2013's ids.
        XCTAssertEqual(Array(Set(fromFolders.labels)).sorted(), Array(0...6))

        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("csv-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        var lines = ["emotion,pixels,Usage"]
        for index in 0..<fromFolders.count {
            let pixels = fromFolders.image(at: index).pixels.map(String.init).joined(separator: " ")
            lines.append("\(fromFolders.labels[index]),\(pixels),PublicTest")
            lines.append("\(fromFolders.labels[index]),\(pixels),\(index % 2 == 0 ? "Training" : "PrivateTest")")
        }
        let csv = directory.appendingPathComponent("fer2013.csv")
        try lines.joined(separator: "\n").write(to: csv, atomically: true, encoding: .utf8)
        let fromCSV = try FER2013.load(from: csv.path, split: "val")
        XCTAssertEqual(fromCSV.labels, fromFolders.labels)
        XCTAssertEqual(fromCSV.pixels, fromFolders.pixels)
        XCTAssertEqual(try FER2013.load(from: csv.path, split: "train").count, 11)
        XCTAssertEqual(try FER2013.load(from: csv.path, split: "test").count, 10)
        // The second load comes from the cache next to the file, with the same content.
        XCTAssertEqual(try FER2013.load(from: csv.path, split: "val").pixels, fromFolders.pixels)
        XCTAssertTrue(FileManager.default.fileExists(atPath: directory.appendingPathComponent(
            ".fer-annotate-cache-fer2013.csv-PublicTest.safetensors").path))
    }

    func testBadDataGivesClearErrors() throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("bad-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory.appendingPathComponent("train/cats"), withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        XCTAssertThrowsError(try FER2013.load(from: directory.path + "/missing", split: "train")) {
            XCTAssertTrue("\($0)".contains("data not found"), "\($0)")
        }
        XCTAssertThrowsError(try FER2013.load(from: directory.path, split: "train")) {
            XCTAssertTrue("\($0)".contains("not FER2013 classes"), "\($0)")
        }
        let csv = directory.appendingPathComponent("short.csv")
        try "emotion,pixels,Usage\n3,1 2 3,Training\n".write(to: csv, atomically: true, encoding: .utf8)
        XCTAssertThrowsError(try FER2013.load(from: csv.path, split: "train")) {
            XCTAssertTrue("\($0)".contains("expected 2304 pixel values"), "\($0)")
        }
    }
}

final class FER2013CacheTests: XCTestCase {
    /// Writes `<root>/train/<class>/<name>.bmp`, a 48x48 grey BMP whose size never depends on its pixels.
    private func writeImage(_ value: UInt8, to url: URL) throws {
        try FileManager.default.createDirectory(at: url.deletingLastPathComponent(), withIntermediateDirectories: true)
        try bmp(side: 48, value: value).write(to: url)
    }

    private func bmp(side: Int, value: UInt8) -> Data {
        let rowBytes = (side * 3 + 3) / 4 * 4
        var data = Data("BM".utf8)
        func le32(_ v: Int) { withUnsafeBytes(of: UInt32(v).littleEndian) { data.append(contentsOf: $0) } }
        func le16(_ v: Int) { withUnsafeBytes(of: UInt16(v).littleEndian) { data.append(contentsOf: $0) } }
        le32(54 + rowBytes * side); le32(0); le32(54)
        le32(40); le32(side); le32(side); le16(1); le16(24); le32(0); le32(rowBytes * side); le32(2835); le32(2835); le32(0); le32(0)
        for _ in 0..<side {
            data.append(contentsOf: [UInt8](repeating: value, count: side * 3))
            data.append(contentsOf: [UInt8](repeating: 0, count: rowBytes - side * 3))
        }
        return data
    }

    /// The cache beside the data is keyed by the images' content: an image rewritten in place with the same size
    /// and the same modification time (as an archive unpacked over an older copy can leave it) rebuilds it.
    func testChangedImageRebuildsTheCache() throws {
        let root = FileManager.default.temporaryDirectory.appendingPathComponent("cache-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: root) }
        let happy = root.appendingPathComponent("train/happy/0001.bmp")
        try writeImage(40, to: happy)
        try writeImage(200, to: root.appendingPathComponent("train/sad/0002.bmp"))
        let stamp = try FileManager.default.attributesOfItem(atPath: happy.path)[.modificationDate] as! Date

        let first = try FER2013.load(from: root.path, split: "train")
        XCTAssertEqual(first.labels, [3, 4])
        XCTAssertEqual(Set(first.image(at: 0).pixels), [40])
        XCTAssertTrue(FileManager.default.fileExists(
            atPath: root.appendingPathComponent(".fer-annotate-cache-train-train.safetensors").path))

        try writeImage(90, to: happy)
        try FileManager.default.setAttributes([.modificationDate: stamp], ofItemAtPath: happy.path)
        let second = try FER2013.load(from: root.path, split: "train")
        XCTAssertEqual(Set(second.image(at: 0).pixels), [90], "the cache served the image as it was before")
        XCTAssertEqual(Set(second.image(at: 1).pixels), [200])

        // Unchanged data is served from the cache, which is then not written again.
        let cache = root.appendingPathComponent(".fer-annotate-cache-train-train.safetensors")
        let cached = try FileManager.default.attributesOfItem(atPath: cache.path)[.modificationDate] as! Date
        _ = try FER2013.load(from: root.path, split: "train")
        XCTAssertEqual(try FileManager.default.attributesOfItem(atPath: cache.path)[.modificationDate] as? Date, cached)
    }
}
