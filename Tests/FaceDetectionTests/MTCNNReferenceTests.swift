import FaceDetection
import Foundation
import MediaIO
import NeuralEngine
import VisionCore
import XCTest

/// Our MTCNN against facenet-pytorch 2.6.0 on PyTorch (Fixtures/mtcnn_reference.json, written by
/// Scripts/mtcnn_reference.py): raw network outputs, resampled inputs, final detections.
final class MTCNNReferenceTests: XCTestCase {
    /// Raw outputs: 1e-4 absolute (probabilities, offsets and landmark fractions are all of order 1).
    static let tolerance: Float = 1e-4

    /// Our decoder must hand us the bytes the script ran on, or a mismatch below would mean nothing.
    private func image(_ name: String, _ fixture: MTCNNReferenceFixture) throws -> Image {
        let image = try FaceDetectionTestSupport.image(name)
        let expected = try XCTUnwrap(fixture.images[name], name)
        XCTAssertEqual([image.width, image.height], [expected.width, expected.height], name)
        let sums = MTCNNTestSupport.checksums(image)
        XCTAssertEqual(sums.byteSum, expected.byteSum, "\(name) decodes to other bytes than the script's")
        XCTAssertEqual(sums.weightedByteSum, expected.weightedByteSum, "\(name) decodes to other bytes than the script's")
        return image
    }

    private func assertClose(_ ours: [Float], _ theirs: [Float], _ label: String,
                             file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertEqual(ours.count, theirs.count, label, file: file, line: line)
        for (k, (a, b)) in zip(ours, theirs).enumerated() {
            XCTAssertEqual(a, b, accuracy: Self.tolerance, "\(label)[\(k)]", file: file, line: line)
        }
    }

    func testPyramidScalesMatch() throws {
        let detector = try MTCNNTestSupport.detector()
        let fixture = try MTCNNTestSupport.reference()
        let size = try XCTUnwrap(fixture.images[fixture.proposal.image])
        XCTAssertEqual(detector.pyramidScales(width: size.width, height: size.height), fixture.proposal.scales)
    }

    /// P-Net on one pyramid level of single_face.jpg, input resampled by us from the decoded bytes.
    func testProposalNetworkMatchesOnAPyramidLevel() throws {
        let detector = try MTCNNTestSupport.detector()
        let fixture = try MTCNNTestSupport.reference()
        let reference = fixture.proposal
        let source = try image(reference.image, fixture)
        let scale = reference.scales[reference.level]
        let size = MTCNNDetector.levelSize(width: source.width, height: source.height, scale: scale)
        let input = AreaResampler(source).resampled(width: size.width, height: size.height)
        XCTAssertEqual(input.shape, reference.inputShape)
        // Resampled values equal PyTorch's to float rounding: 1e-6 per value.
        let inputSum = input.storage.reduce(0.0) { $0 + Double($1) }
        XCTAssertEqual(inputSum, reference.inputSum, accuracy: 1e-6 * Double(input.count))

        let (regression, probabilities) = detector.proposalNetwork.forward(input)
        let (height, width) = (reference.outputHeight, reference.outputWidth)
        XCTAssertEqual(probabilities.shape, [1, 2, height, width])
        XCTAssertEqual(regression.shape, [1, 4, height, width])
        let plane = height * width
        for cell in reference.top + reference.sampled {
            let at = cell.y * width + cell.x
            XCTAssertEqual(probabilities.storage[plane + at], cell.probability, accuracy: Self.tolerance, "cell \(cell.y), \(cell.x)")
            assertClose((0..<4).map { regression.storage[$0 * plane + at] }, cell.regression, "cell \(cell.y), \(cell.x)")
        }
        XCTAssertGreaterThan(reference.top[0].probability, 0.9, "the level should hold the face")
        // Every cell, through sums: each within 1e-4 keeps a sum within 1e-4 per cell.
        let faceSum = probabilities.storage[plane...].reduce(0.0) { $0 + Double($1) }
        let backgroundSum = probabilities.storage[..<plane].reduce(0.0) { $0 + Double($1) }
        XCTAssertEqual(faceSum, reference.faceProbabilitySum, accuracy: 1e-4 * Double(plane))
        XCTAssertEqual(backgroundSum, reference.backgroundProbabilitySum, accuracy: 1e-4 * Double(plane))
        XCTAssertEqual(regression.storage.reduce(0.0) { $0 + Double($1) }, reference.regressionSum,
                       accuracy: 1e-4 * Double(4 * plane))
        XCTAssertEqual(regression.storage.reduce(0.0) { $0 + Double(abs($1)) }, reference.regressionAbsoluteSum,
                       accuracy: 1e-4 * Double(4 * plane))
    }

    func testRefineNetworkMatchesOnPatternAndCrops() throws {
        let detector = try MTCNNTestSupport.detector()
        let fixture = try MTCNNTestSupport.reference()
        try checkNetwork(fixture.refine, fixture, size: 24) { input in
            let (regression, probabilities) = detector.refineNetwork.forward(input)
            return [regression, probabilities]
        }
    }

    func testOutputNetworkMatchesOnPatternAndCrops() throws {
        let detector = try MTCNNTestSupport.detector()
        let fixture = try MTCNNTestSupport.reference()
        try checkNetwork(fixture.output, fixture, size: 48) { input in
            let (regression, landmarks, probabilities) = detector.outputNetwork.forward(input)
            return [regression, landmarks, probabilities]
        }
    }

    private func checkNetwork(_ reference: MTCNNReferenceFixture.Network, _ fixture: MTCNNReferenceFixture, size: Int,
                              run: (Tensor) -> [Tensor], file: StaticString = #filePath, line: UInt = #line) throws {
        let pattern = run(MTCNNTestSupport.patternBatch(count: reference.pattern.count, size: size))
        for (n, expected) in reference.pattern.outputs.enumerated() {
            for (k, output) in pattern.enumerated() {
                let width = output.shape[1]
                assertClose(Array(output.storage[(n * width)..<((n + 1) * width)]), expected[k],
                            "pattern \(n) output \(k)", file: file, line: line)
            }
        }
        var images: [String: AreaResampler] = [:]
        for crop in reference.crops {
            if images[crop.image] == nil { images[crop.image] = AreaResampler(try image(crop.image, fixture)) }
            let region = PixelRegion(x: crop.region[0], y: crop.region[1], width: crop.region[2], height: crop.region[3])
            let input = images[crop.image]!.crops([region], size: size)
            XCTAssertEqual(input.storage.reduce(0.0) { $0 + Double($1) }, crop.inputSum,
                           accuracy: 1e-6 * Double(input.count), "\(crop.image) \(crop.region) input", file: file, line: line)
            for (k, output) in run(input).enumerated() {
                assertClose(output.storage, crop.outputs[k], "\(crop.image) \(crop.region) output \(k)", file: file, line: line)
            }
        }
    }

    /// Final detections against MTCNN.detect: the same number of faces, boxes and landmarks within 1 px,
    /// probabilities within 1e-3.
    func testDetectionsMatchFacenetPytorch() throws {
        let detector = try MTCNNTestSupport.detector()
        let fixture = try MTCNNTestSupport.reference()
        for name in ["single_face.jpg", "multi_face.jpg", "free-mountain-vector-01.jpg"] {
            let expected = try XCTUnwrap(fixture.detections[name])
            let found = detector.detect(in: try image(name, fixture))
            XCTAssertEqual(found.count, expected.count, name)
            for reference in expected {
                let box = Box(minX: reference.box[0], minY: reference.box[1], maxX: reference.box[2], maxY: reference.box[3])
                guard let ours = found.max(by: { $0.box.intersectionOverUnion(box) < $1.box.intersectionOverUnion(box) }),
                      let landmarks = ours.landmarks else {
                    XCTFail("\(name): no detection for the face at \(reference.box)")
                    continue
                }
                let label = "\(name) face at \(reference.box.map { Int($0) })"
                assertClose([ours.box.minX, ours.box.minY, ours.box.maxX, ours.box.maxY], reference.box, label, pixels: 1)
                XCTAssertEqual(ours.score, reference.score, accuracy: 1e-3, label)
                assertClose(landmarks.all.flatMap { [$0.x, $0.y] }, reference.landmarks.flatMap { $0 }, label, pixels: 1)
                XCTAssertEqual(landmarks.leftEye, landmarks.all[0], label)
                XCTAssertEqual(landmarks.rightEye, landmarks.all[1], label)
            }
            // Best score first.
            XCTAssertEqual(found.map(\.score), found.map(\.score).sorted(by: >), name)
        }
    }

    private func assertClose(_ ours: [Float], _ theirs: [Float], _ label: String, pixels: Float,
                             file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertEqual(ours.count, theirs.count, label, file: file, line: line)
        for (k, (a, b)) in zip(ours, theirs).enumerated() {
            XCTAssertEqual(a, b, accuracy: pixels, "\(label) coordinate \(k)", file: file, line: line)
        }
    }
}
