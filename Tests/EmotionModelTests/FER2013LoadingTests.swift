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
