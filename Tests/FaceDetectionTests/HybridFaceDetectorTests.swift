import FaceDetection
import Foundation
import VisionCore
import XCTest

/// BlazeFace helped by MTCNN (`--detector auto`) on the small-face group picture: BlazeFace alone misses most of
/// the 20-40 px faces; the hybrid finds them on a still image, and on video keeps finding them on the frames
/// between MTCNN's full searches by searching small windows around them.
final class HybridFaceDetectorTests: XCTestCase {
    func hybrid(interval: Int) throws -> HybridFaceDetector {
        _ = try MTCNNTestSupport.requireWeights()
        return HybridFaceDetector(fast: try FaceDetectionTestSupport.detector(.fullRange), fastFraming: .blazeFace(.fullRange),
                                  accurate: try MTCNNTestSupport.detector(), accurateFraming: .mtcnn,
                                  fullSearchInterval: interval)
    }

    /// The group picture's faces, redrawn in BlazeFace's framing (what the hybrid reports).
    func groupPicture() throws -> (image: Image, faces: [Box]) {
        let picture = try MTCNNTestSupport.smallFaceGroupPicture(locatingWith: try MTCNNTestSupport.detector())
        return (picture.image, picture.faces.map { DetectorFraming.blazeFace(.fullRange).box(redrawing: $0, framedBy: .mtcnn) })
    }

    func score(_ found: [Detection], against faces: [Box]) -> (hits: Int, falseAlarms: Int) {
        let hits = faces.filter { face in found.contains { $0.box.intersectionOverUnion(face) > 0.3 } }.count
        let falseAlarms = found.filter { detection in !faces.contains { detection.box.intersectionOverUnion($0) > 0.3 } }.count
        return (hits, falseAlarms)
    }

    func testStillImageFindsTheSmallFacesBlazeFaceMisses() throws {
        let picture = try groupPicture()
        let blazeFaceAlone = score(try FaceDetectionTestSupport.detector(.fullRange).detect(in: picture.image), against: picture.faces)
        let both = score(try hybrid(interval: 1).detect(in: picture.image), against: picture.faces)
        print("group picture: BlazeFace alone \(blazeFaceAlone.hits)/\(picture.faces.count), hybrid \(both.hits), "
              + "false alarms \(both.falseAlarms)")
        XCTAssertLessThan(Double(blazeFaceAlone.hits), 0.9 * Double(picture.faces.count), "the case the hybrid exists for")
        XCTAssertGreaterThanOrEqual(Double(both.hits), 0.9 * Double(picture.faces.count))
        XCTAssertLessThanOrEqual(both.falseAlarms, 1)
    }

    /// The picture shifted right by `offset` px on a plain gray canvas of its size.
    func drifted(_ image: Image, by offset: Int) -> Image {
        let shifted = image.cropped(x: -offset, y: 0, width: image.width, height: image.height)!
        var canvas = Image(width: image.width, height: image.height, format: .rgb24,
                           pixels: [UInt8](repeating: 128, count: image.pixels.count))
        for row in 0..<shifted.height {
            for byte in 0..<shifted.bytesPerRow {
                canvas.pixels[row * canvas.bytesPerRow + offset * 3 + byte] = shifted.pixels[row * shifted.bytesPerRow + byte]
            }
        }
        return canvas
    }

    /// Twelve frames of the picture drifting 1 px per frame, MTCNN's full search every 6th: every frame still
    /// finds the small faces, the frames between through window searches only.
    func testVideoKeepsSmallFacesBetweenFullSearches() throws {
        let picture = try groupPicture()
        let detector = try hybrid(interval: 6)
        for frame in 0..<12 {
            let canvas = drifted(picture.image, by: frame)
            let faces = picture.faces.map { Box(x: $0.x + Float(frame), y: $0.y, width: $0.width, height: $0.height) }
            let result = score(try detector.detect(in: canvas), against: faces)
            XCTAssertGreaterThanOrEqual(Double(result.hits), 0.9 * Double(faces.count), "frame \(frame)")
            XCTAssertLessThanOrEqual(result.falseAlarms, 1, "frame \(frame)")
        }
        XCTAssertEqual(detector.fullSearches, 2, "MTCNN searched the whole frame on frames 0 and 6 only")
        // In between, a window around each face BlazeFace did not find (at most every face, every frame).
        XCTAssertGreaterThan(detector.windowSearches, 10)
        XCTAssertLessThanOrEqual(detector.windowSearches, 10 * picture.faces.count)
    }

    /// Staged (the pipeline's detection threads): a copy of the fast detector on each frame, then the hybrid's
    /// remainder in frame order, gives exactly what `detect(in:)` gives, window searches and full searches
    /// included.
    func testFrameStagePlusRemainderEqualsDetect() throws {
        let picture = try groupPicture()
        let whole = try hybrid(interval: 3), staged = try hybrid(interval: 3)
        let stage = try XCTUnwrap(try staged.makeFrameStage())
        XCTAssertFalse(stage === staged.fast, "a copy with buffers of its own")
        for frame in 0..<6 {
            let canvas = drifted(picture.image, by: frame)
            let expected = try whole.detect(in: canvas)
            let found = try staged.detect(in: canvas, frameStageDetections: try stage.detect(in: canvas))
            XCTAssertEqual(found.map(\.box), expected.map(\.box), "frame \(frame)")
            XCTAssertEqual(found.map(\.score), expected.map(\.score), "frame \(frame)")
        }
        XCTAssertEqual(staged.fullSearches, 2)
        XCTAssertGreaterThan(staged.windowSearches, 0)
    }

    func testRedrawnBoxesFrameTheSameFER2013Square() {
        let mtcnnBox = Box(x: 100, y: 80, width: 40, height: 52)
        let blazeFace = DetectorFraming.blazeFace(.fullRange)
        let redrawn = blazeFace.box(redrawing: mtcnnBox, framedBy: .mtcnn)
        func square(_ box: Box, _ framing: DetectorFraming) -> (centerX: Float, centerY: Float, side: Float) {
            (box.center.x, box.center.y + framing.verticalOffset * box.height, max(box.width, box.height) * framing.cropScale)
        }
        let fromMTCNN = square(mtcnnBox, .mtcnn), fromBlazeFace = square(redrawn, blazeFace)
        XCTAssertEqual(fromBlazeFace.centerX, fromMTCNN.centerX, accuracy: 1e-3)
        XCTAssertEqual(fromBlazeFace.centerY, fromMTCNN.centerY, accuracy: 1e-3)
        XCTAssertEqual(fromBlazeFace.side, fromMTCNN.side, accuracy: 1e-3)
        XCTAssertEqual(redrawn.width, redrawn.height, "BlazeFace's boxes are square")
    }
}
