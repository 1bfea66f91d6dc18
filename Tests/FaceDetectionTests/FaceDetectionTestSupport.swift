import FaceDetection
import Foundation
import MediaIO
import NeuralEngine
import VisionCore
import XCTest

/// Paths to the third-party samples and the committed reference fixture.
enum FaceDetectionTestSupport {
    /// The package root, from this file's path (Tests/FaceDetectionTests/FaceDetectionTestSupport.swift).
    static let packageRoot = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
    static let modelsFolder = packageRoot.appendingPathComponent("Samples/thirdparty/models")
    static let mediaFolder = packageRoot.appendingPathComponent("Samples/thirdparty/media")
    static let fixturesFolder = packageRoot.appendingPathComponent("Tests/FaceDetectionTests/Fixtures")

    /// A file from Samples/thirdparty, failing the test with a hint when setup has not run.
    static func thirdParty(_ url: URL, file: StaticString = #filePath, line: UInt = #line) throws -> URL {
        guard FileManager.default.fileExists(atPath: url.path) else {
            XCTFail("missing \(url.path): run Scripts/setup.sh first", file: file, line: line)
            throw XCTSkip("third-party sample missing")
        }
        return url
    }

    static func model(_ model: BlazeFaceModel, file: StaticString = #filePath, line: UInt = #line) throws -> URL {
        try thirdParty(modelsFolder.appendingPathComponent(model.fileName), file: file, line: line)
    }

    static func image(_ name: String, file: StaticString = #filePath, line: UInt = #line) throws -> Image {
        try decodeImage(at: thirdParty(mediaFolder.appendingPathComponent(name), file: file, line: line).path, as: .rgb24)
    }

    static func detector(_ model: BlazeFaceModel, minimumFaceSize: Float = 0,
                         file: StaticString = #filePath, line: UInt = #line) throws -> BlazeFaceDetector {
        _ = try self.model(model, file: file, line: line)
        return try BlazeFaceDetector(modelsFolder: modelsFolder,
                                     options: .init(model: model, minimumFaceSize: minimumFaceSize))
    }

    /// Scripts/blazeface_reference.py's output.
    static func reference() throws -> ReferenceFixture {
        let data = try Data(contentsOf: fixturesFolder.appendingPathComponent("blazeface_reference.json"))
        return try JSONDecoder().decode(ReferenceFixture.self, from: data)
    }
}

struct ReferenceFixture: Decodable {
    struct RawRow: Decodable {
        var anchor: Int
        var score: Float
        var regressors: [Float]
    }
    struct Raw: Decodable {
        var anchors: Int
        var top: [RawRow]
        var sampled: [RawRow]
        var regressorSum: Double
        var regressorAbsoluteSum: Double
        var scoreSum: Double
    }
    struct Found: Decodable {
        var score: Float
        /// minX, minY, maxX, maxY in source pixels.
        var box: [Float]
        var keypoints: [[Float]]
    }
    struct Variant: Decodable {
        var inputSize: Int
        var raw: Raw
        var detections: [String: [Found]]
    }
    struct RealInput: Decodable {
        var file: String
        var raw: Raw
    }
    var variants: [String: Variant]
    var singleFaceShortRangeInput: RealInput
}

extension BlazeFaceModel {
    /// The name Scripts/blazeface_reference.py files this model under.
    var fixtureName: String {
        switch self {
        case .shortRange: return "shortRange"
        case .fullRange: return "fullRange"
        case .backCamera: return "backCamera"
        }
    }
}
