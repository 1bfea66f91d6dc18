import FaceDetection
import Foundation
import NeuralEngine
import VisionCore
import XCTest

final class BlazeFaceDetectorTests: XCTestCase {
    /// single_face.jpg is 572 x 562; looked at by eye: the face spans about x 185-395 (ear to ear) and
    /// y 150-395 (hairline to chin), eyes near (228, 245) and (315, 243). BlazeFace boxes are square and run
    /// from the brows to the chin.
    func testSingleFaceGivesOneBoxAroundTheFace() throws {
        let image = try FaceDetectionTestSupport.image("single_face.jpg")
        XCTAssertEqual([image.width, image.height], [572, 562])
        for model in BlazeFaceModel.allCases {
            let faces = try FaceDetectionTestSupport.detector(model).detect(in: image)
            XCTAssertEqual(faces.count, 1, model.rawValue)
            guard let face = faces.first, let landmarks = face.landmarks else { continue }
            XCTAssertGreaterThan(face.score, 0.8, model.rawValue)
            XCTAssertEqual(face.box.center.x, 280, accuracy: 20, model.rawValue)
            XCTAssertEqual(face.box.center.y, 290, accuracy: 20, model.rawValue)
            XCTAssertEqual(face.box.width, 205, accuracy: 25, model.rawValue)
            XCTAssertEqual(landmarks.leftEye.x, 228, accuracy: 8, model.rawValue)
            XCTAssertEqual(landmarks.leftEye.y, 245, accuracy: 8, model.rawValue)
            XCTAssertEqual(landmarks.rightEye.x, 315, accuracy: 8, model.rawValue)
            XCTAssertEqual(landmarks.rightEye.y, 245, accuracy: 8, model.rawValue)
            XCTAssertEqual(landmarks.all.count, 6)
        }
    }

    /// multi_face.jpg: five people counted by eye (from the left: the man in sunglasses, the blonde woman in
    /// front of him, the curly-haired young man at the back, the dark-haired woman, the red-haired woman).
    /// The short-range model is meant for faces near the camera and finds only the two largest here.
    func testMultiFaceFindsEveryPerson() throws {
        let image = try FaceDetectionTestSupport.image("multi_face.jpg")
        for model in [BlazeFaceModel.fullRange, .backCamera] {
            let faces = try FaceDetectionTestSupport.detector(model).detect(in: image)
            XCTAssertEqual(faces.count, 5, model.rawValue)
            // Five distinct people: no two boxes overlap.
            for (i, a) in faces.enumerated() {
                for b in faces[(i + 1)...] { XCTAssertEqual(a.box.intersectionOverUnion(b.box), 0, model.rawValue) }
            }
        }
    }

    func testMountainVectorHasNoFaces() throws {
        let image = try FaceDetectionTestSupport.image("free-mountain-vector-01.jpg")
        for model in BlazeFaceModel.allCases {
            XCTAssertEqual(try FaceDetectionTestSupport.detector(model).detect(in: image), [], model.rawValue)
        }
    }

    /// A frame four times larger (letterboxed onto a bigger canvas) gives the same face in its own pixels.
    func testLargeFramesMapBackToSourcePixels() throws {
        let image = try FaceDetectionTestSupport.image("single_face.jpg")
        let detector = try FaceDetectionTestSupport.detector(.fullRange)
        let original = try XCTUnwrap(detector.detect(in: image).first)
        // 2x nearest-neighbour upscale placed at (300, 100) on a black 1744 x 1324 canvas.
        let (width, height, left, top) = (2 * 572 + 600, 2 * 562 + 200, 300, 100)
        var pixels = [UInt8](repeating: 0, count: width * height * 3)
        for y in 0..<(2 * 562) {
            for x in 0..<(2 * 572) {
                let from = ((y / 2) * 572 + x / 2) * 3, to = ((y + top) * width + x + left) * 3
                pixels[to] = image.pixels[from]
                pixels[to + 1] = image.pixels[from + 1]
                pixels[to + 2] = image.pixels[from + 2]
            }
        }
        let large = Image(width: width, height: height, format: .rgb24, pixels: pixels)
        let faces = try detector.detect(in: large)
        XCTAssertEqual(faces.count, 1)
        guard let face = faces.first else { return }
        // Same face: within 3% of its width once mapped back (different letterbox, different sampling).
        let tolerance = 0.03 * 2 * original.box.width
        XCTAssertEqual(face.box.minX, 2 * original.box.minX + Float(left), accuracy: tolerance)
        XCTAssertEqual(face.box.minY, 2 * original.box.minY + Float(top), accuracy: tolerance)
        XCTAssertEqual(face.box.width, 2 * original.box.width, accuracy: tolerance)
    }

    func testGrayFramesWork() throws {
        let image = try FaceDetectionTestSupport.image("single_face.jpg")
        var gray = [UInt8](repeating: 0, count: image.width * image.height)
        for index in gray.indices {
            let (r, g, b) = (Int(image.pixels[3 * index]), Int(image.pixels[3 * index + 1]), Int(image.pixels[3 * index + 2]))
            gray[index] = UInt8((299 * r + 587 * g + 114 * b) / 1000)
        }
        let faces = try FaceDetectionTestSupport.detector(.fullRange)
            .detect(in: Image(width: image.width, height: image.height, format: .gray8, pixels: gray))
        XCTAssertEqual(faces.count, 1)
    }

    func testMinimumFaceSizeAndThreshold() throws {
        let image = try FaceDetectionTestSupport.image("multi_face.jpg")
        // The faces here are 85-115 px wide (fixture): 100 drops the smallest, the young man at the back.
        let large = try FaceDetectionTestSupport.detector(.fullRange, minimumFaceSize: 100).detect(in: image)
        XCTAssertEqual(large.count, 4)
        XCTAssertTrue(large.allSatisfy { $0.box.width >= 100 })
        let strict = try BlazeFaceDetector(modelsFolder: FaceDetectionTestSupport.modelsFolder,
                                           options: .init(model: .fullRange, scoreThreshold: 0.9))
        XCTAssertEqual(try strict.detect(in: image).count, 2, "two faces score above 0.9 (0.94, 0.93)")
    }

    func testMissingModelFileIsAClearError() {
        let folder = URL(fileURLWithPath: "/nonexistent")
        XCTAssertThrowsError(try BlazeFaceDetector(modelsFolder: folder)) { error in
            guard case TFLiteError.unreadable(let path, _) = error else { return XCTFail("got \(error)") }
            XCTAssertTrue(path.hasSuffix("face_detection_full_range.tflite"))
        }
    }
}

final class AnchorAndSuppressionTests: XCTestCase {
    func testAnchorGridsMatchTheNetworkOutputs() {
        XCTAssertEqual(BlazeFaceModel.shortRange.anchorOptions.anchorCenters().count, 896)  // 16*16*2 + 8*8*6
        XCTAssertEqual(BlazeFaceModel.backCamera.anchorOptions.anchorCenters().count, 896)
        let full = BlazeFaceModel.fullRange.anchorOptions.anchorCenters()
        XCTAssertEqual(full.count, 2304)  // 48 * 48 * 1
        XCTAssertEqual(full[0], Point(x: 0.5 / 48, y: 0.5 / 48))
        XCTAssertEqual(full[1], Point(x: 1.5 / 48, y: 0.5 / 48))
        XCTAssertEqual(full[48], Point(x: 0.5 / 48, y: 1.5 / 48))
        let short = BlazeFaceModel.shortRange.anchorOptions.anchorCenters()
        // Two anchors per cell of the 16 x 16 map, then six per cell of the 8 x 8 map.
        XCTAssertEqual(short[0], short[1])
        XCTAssertEqual(short[2], Point(x: 1.5 / 16, y: 0.5 / 16))
        XCTAssertEqual(short[512], Point(x: 0.5 / 8, y: 0.5 / 8))
        XCTAssertEqual(short[517], short[512])
        XCTAssertEqual(short[518], Point(x: 1.5 / 8, y: 0.5 / 8))
    }

    func testWeightedSuppressionMergesOverlapsByScore() {
        func face(_ x: Float, _ score: Float) -> Detection {
            let eye = Point(x: x + 3, y: 3)
            return Detection(box: Box(x: x, y: 0, width: 10, height: 10), score: score,
                             landmarks: FaceLandmarks(leftEye: eye, rightEye: eye, all: [eye]))
        }
        // 0 and 1 overlap (IoU 0.82); 2 is apart; 3 is below the minimum score.
        let merged = weightedNonMaximumSuppression([face(1, 0.6), face(0, 0.9), face(50, 0.7), face(100, 0.2)],
                                                   iouThreshold: 0.3, minimumScore: 0.5)
        XCTAssertEqual(merged.count, 2)
        XCTAssertEqual(merged[0].score, 0.9)
        // Score-weighted mean of x = 0 (0.9) and x = 1 (0.6): 0.4.
        XCTAssertEqual(merged[0].box.minX, 0.4, accuracy: 1e-6)
        XCTAssertEqual(merged[0].box.maxX, 10.4, accuracy: 1e-6)
        XCTAssertEqual(merged[0].landmarks?.leftEye.x ?? 0, 3.4, accuracy: 1e-6)
        XCTAssertEqual(merged[0].landmarks?.all.first?.x ?? 0, 3.4, accuracy: 1e-6)
        XCTAssertEqual(merged[1].box.minX, 50)
        XCTAssertEqual(weightedNonMaximumSuppression([], iouThreshold: 0.3), [])
    }
}
