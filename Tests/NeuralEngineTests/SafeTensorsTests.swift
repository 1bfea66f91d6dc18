import Foundation
import NeuralEngine
import XCTest

final class SafeTensorsTests: XCTestCase {
    var directory: URL!

    override func setUpWithError() throws {
        directory = FileManager.default.temporaryDirectory.appendingPathComponent("safetensors-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
    }

    override func tearDownWithError() throws {
        try? FileManager.default.removeItem(at: directory)
    }

    func testRoundTripKeepsValuesShapesAndMetadata() throws {
        var generator = RandomGenerator(seed: 12)
        let file = SafeTensorsFile(
            metadata: ["architecture": "vgg", "classes": "a,b"],
            tensors: ["conv.weight": Tensor(normal: [4, 1, 3, 3], standardDeviation: 1, generator: &generator),
                      "bias": Tensor(shape: [4], storage: [1, 2, 3, 4])],
            byteTensors: ["images": (shape: [2, 3], bytes: [0, 1, 2, 253, 254, 255])])
        let url = directory.appendingPathComponent("model.safetensors")
        try file.write(to: url)
        let loaded = try SafeTensorsFile(contentsOf: url)
        XCTAssertEqual(loaded.metadata, file.metadata)
        XCTAssertEqual(loaded.tensors, file.tensors)
        XCTAssertEqual(loaded.byteTensors["images"]?.bytes, [0, 1, 2, 253, 254, 255])
        XCTAssertEqual(loaded.byteTensors["images"]?.shape, [2, 3])

        // The layout is the published one: the header length is the first 8 bytes, little-endian.
        let raw = try Data(contentsOf: url)
        let headerLength = raw.prefix(8).enumerated().reduce(0) { $0 | Int($1.element) << (8 * $1.offset) }
        let header = try JSONSerialization.jsonObject(with: raw.subdata(in: 8..<(8 + headerLength))) as! [String: Any]
        XCTAssertEqual((header["bias"] as? [String: Any])?["dtype"] as? String, "F32")
    }

    func testMalformedFilesGiveClearErrors() throws {
        let url = directory.appendingPathComponent("bad.safetensors")
        try Data("hello".utf8).write(to: url)
        XCTAssertThrowsError(try SafeTensorsFile(contentsOf: url)) { error in
            XCTAssertTrue("\(error)".contains("not a safetensors file"), "\(error)")
        }
        var truncated = Data()
        let header = Data(#"{"w":{"dtype":"F32","shape":[4],"data_offsets":[0,16]}}"#.utf8)
        withUnsafeBytes(of: UInt64(header.count).littleEndian) { truncated.append(contentsOf: $0) }
        truncated.append(header)
        truncated.append(Data(count: 8))  // only half the payload
        XCTAssertThrowsError(try SafeTensorsFile(data: truncated)) { error in
            XCTAssertTrue("\(error)".contains("malformed entry"), "\(error)")
        }
        XCTAssertThrowsError(try SafeTensorsFile(contentsOf: directory.appendingPathComponent("missing"))) { error in
            XCTAssertTrue("\(error)".contains("cannot read"), "\(error)")
        }
    }

    func testLoadingIntoAMismatchedArchitectureFails() throws {
        var generator = RandomGenerator(seed: 13)
        let small = Sequential([Linear(inFeatures: 3, outFeatures: 2, generator: &generator)])
        let large = Sequential([Linear(inFeatures: 4, outFeatures: 2, generator: &generator)])
        XCTAssertThrowsError(try large.load(stateDictionary: small.stateDictionary())) { error in
            XCTAssertTrue("\(error)".contains("has shape [2, 3], the architecture needs [2, 4]"), "\(error)")
        }
        XCTAssertThrowsError(try large.load(stateDictionary: [:])) { error in
            XCTAssertTrue("\(error)".contains("lacks tensor '0.weight'"), "\(error)")
        }
    }
}
