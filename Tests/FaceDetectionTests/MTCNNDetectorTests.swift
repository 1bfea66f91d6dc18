import FaceDetection
import Foundation
import NeuralEngine
import VisionCore
import XCTest

final class MTCNNDetectorTests: XCTestCase {
    func testMountainVectorHasNoFaces() throws {
        let image = try FaceDetectionTestSupport.image("free-mountain-vector-01.jpg")
        XCTAssertEqual(try MTCNNTestSupport.detector().detect(in: image), [])
    }

    func testGrayFramesWork() throws {
        let image = try FaceDetectionTestSupport.image("single_face.jpg")
        var gray = [UInt8](repeating: 0, count: image.width * image.height)
        for index in gray.indices {
            let (r, g, b) = (Int(image.pixels[3 * index]), Int(image.pixels[3 * index + 1]), Int(image.pixels[3 * index + 2]))
            gray[index] = UInt8((299 * r + 587 * g + 114 * b) / 1000)
        }
        let faces = try MTCNNTestSupport.detector()
            .detect(in: Image(width: image.width, height: image.height, format: .gray8, pixels: gray))
        XCTAssertEqual(faces.count, 1)
    }

    func testMinimumFaceSizeAndThreshold() throws {
        let image = try FaceDetectionTestSupport.image("multi_face.jpg")
        XCTAssertEqual(try MTCNNTestSupport.detector().detect(in: image).count, 5)
        // The faces are 75-140 px wide: a pyramid that starts at 300 px faces finds none of them.
        let large = try MTCNNTestSupport.detector(.init(minimumFaceSize: 300))
        XCTAssertEqual(large.pyramidScales(width: image.width, height: image.height).first, 12.0 / 300)
        XCTAssertEqual(large.detect(in: image), [])
        let strict = try MTCNNTestSupport.detector(.init(outputThreshold: 0.99995)).detect(in: image)
        XCTAssertLessThan(strict.count, 5)
        XCTAssertTrue(strict.allSatisfy { $0.score > 0.99995 })
    }

    // MARK: Weight files

    func testMissingWeightsFileIsAClearError() {
        XCTAssertThrowsError(try MTCNNDetector(modelsFolder: URL(fileURLWithPath: "/nonexistent"))) { error in
            guard case MTCNNError.unreadable(let path, _) = error else { return XCTFail("got \(error)") }
            XCTAssertTrue(path.hasSuffix("mtcnn.safetensors"))
            XCTAssertTrue("\(error)".contains("Scripts/setup.sh"), "\(error)")
        }
    }

    func testTruncatedWeightsFileIsAClearError() throws {
        let data = try Data(contentsOf: MTCNNTestSupport.requireWeights())
        let url = temporaryFile("truncated.safetensors")
        try data.prefix(data.count / 2).write(to: url)
        XCTAssertThrowsError(try MTCNNDetector(weightsFile: url)) { error in
            guard case MTCNNError.truncated(_, let expected, let actual) = error else { return XCTFail("got \(error)") }
            XCTAssertEqual(expected, data.count)
            XCTAssertEqual(actual, data.count / 2)
        }
        // Cut inside the header too.
        try data.prefix(100).write(to: url)
        XCTAssertThrowsError(try MTCNNDetector(weightsFile: url)) { error in
            guard case MTCNNError.truncated = error else { return XCTFail("got \(error)") }
        }
    }

    func testForeignFilesAreClearErrors() throws {
        // A TFLite model is not a safetensors file at all.
        let tflite = try FaceDetectionTestSupport.model(.shortRange)
        XCTAssertThrowsError(try MTCNNDetector(weightsFile: tflite)) { error in
            guard case MTCNNError.notSafeTensors = error else { return XCTFail("got \(error)") }
        }
        // A safetensors file of another network lacks MTCNN's tensors.
        let url = temporaryFile("other.safetensors")
        try SafeTensorsFile(tensors: ["conv.weight": Tensor(zeros: [4, 3, 3, 3])]).write(to: url)
        XCTAssertThrowsError(try MTCNNDetector(weightsFile: url)) { error in
            XCTAssertEqual(error as? MTCNNError, .missingTensor(name: "pnet.conv1.weight", source: "other.safetensors"))
        }
        // The right names with a wrong shape.
        var tensors = try MTCNNWeights(contentsOf: MTCNNTestSupport.requireWeights()).tensors
        tensors["rnet.dense4.weight"] = Tensor(zeros: [128, 575])
        XCTAssertThrowsError(try MTCNNDetector(weights: MTCNNWeights(tensors: tensors))) { error in
            XCTAssertEqual(error as? MTCNNError,
                           .shapeMismatch(name: "rnet.dense4.weight", expected: [128, 576], found: [128, 575]))
        }
    }

    private func temporaryFile(_ name: String) -> URL {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("mtcnn-tests-\(getpid())")
        try? FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        addTeardownBlock { try? FileManager.default.removeItem(at: folder) }
        return folder.appendingPathComponent(name)
    }

    // MARK: Small faces

    /// MTCNN with its default 20 px minimum must find at least 11 of the twelve 20-40 px faces of the group
    /// picture, with at most one false alarm.
    func testFindsSmallFacesInAGroupPicture() throws {
        let detector = try MTCNNTestSupport.detector()
        let picture = try MTCNNTestSupport.smallFaceGroupPicture(locatingWith: detector)
        let found = detector.detect(in: picture.image)
        let hits = picture.faces.filter { face in found.contains { $0.box.intersectionOverUnion(face) > 0.3 } }
        let falseAlarms = found.filter { detection in !picture.faces.contains { detection.box.intersectionOverUnion($0) > 0.3 } }
        print("small faces: found \(hits.count) of \(picture.faces.count), \(falseAlarms.count) false alarms; missed widths "
              + "\(zip(picture.widths, picture.faces).filter { face in !hits.contains(face.1) }.map(\.0))")
        XCTAssertGreaterThanOrEqual(Double(hits.count), 0.9 * Double(picture.faces.count))
        XCTAssertLessThanOrEqual(falseAlarms.count, 1)
    }

    /// Frames above 720p are resampled straight from their pixels instead of through a summed-area table (which
    /// would take 25 MB at 1080p): both must give the same sums, so the same values bit for bit, for pyramid
    /// levels and for crops (shrunk, stretched, at the edges), in colour and in gray.
    func testDirectResamplingEqualsTheSummedAreaTable() throws {
        let colour = try FaceDetectionTestSupport.image("multi_face.jpg")
        let gray = Image(width: colour.width, height: colour.height, format: .gray8,
                         pixels: stride(from: 0, to: colour.pixels.count, by: 3).map { colour.pixels[$0 + 1] })
        for image in [colour, gray] {
            let (table, direct) = (AreaResampler(image, useTable: true), AreaResampler(image, useTable: false))
            for scale in [0.6, 0.5, 0.3, 0.05] {
                let size = MTCNNDetector.levelSize(width: image.width, height: image.height, scale: scale)
                let expected = table.resampled(width: size.width, height: size.height)
                XCTAssertEqual(direct.resampled(width: size.width, height: size.height).storage, expected.storage,
                               "\(image.format) level \(scale)")
            }
            let regions = [PixelRegion(x: 0, y: 0, width: 7, height: 5),
                           PixelRegion(x: 101, y: 33, width: 60, height: 71),
                           PixelRegion(x: image.width - 130, y: image.height - 90, width: 130, height: 90)]
            for size in [24, 48] {
                XCTAssertEqual(direct.crops(regions, size: size).storage, table.crops(regions, size: size).storage,
                               "\(image.format) crops of \(size)")
            }
        }
    }

    // MARK: Speed

    /// P-Net on a large level runs in horizontal strips; the strips must give the whole level's outputs.
    func testProposalStripsMatchTheWholeLevel() throws {
        let detector = try MTCNNTestSupport.detector()
        let image = try FaceDetectionTestSupport.image("multi_face.jpg")
        let level = AreaResampler(image).resampled(width: 601, height: 401)
        let network = detector.proposalNetwork
        let saved = network.rowsPerStrip
        defer { network.rowsPerStrip = saved }
        network.rowsPerStrip = 10_000
        let whole = network.forward(level)
        for rows in [7, 32] {
            network.rowsPerStrip = rows
            let strips = network.forward(level)
            XCTAssertEqual(strips.probabilities.shape, [1, 2, 196, 296])
            // Only the summation order inside sgemm may differ: 1e-5.
            XCTAssertLessThanOrEqual(strips.probabilities.maxAbsoluteDifference(whole.probabilities), 1e-5, "\(rows) rows")
            XCTAssertLessThanOrEqual(strips.regression.maxAbsoluteDifference(whole.regression), 1e-5, "\(rows) rows")
        }
    }
}
