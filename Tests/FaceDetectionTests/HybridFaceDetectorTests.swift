import FaceDetection
import FaceTracking
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

    /// One-to-one: each true face is claimed by at most one detection (greedy by overlap, IoU above 0.4), so a box
    /// spanning two neighbours counts once, not twice.
    func matched(_ found: [Detection], against faces: [Box]) -> (hits: Int, falseAlarms: Int) {
        var pairs: [(iou: Float, detection: Int, face: Int)] = []
        for (d, detection) in found.enumerated() {
            for (f, face) in faces.enumerated() {
                let iou = detection.box.intersectionOverUnion(face)
                if iou > 0.4 { pairs.append((iou, d, f)) }
            }
        }
        var usedDetections = Set<Int>(), usedFaces = Set<Int>()
        for pair in pairs.sorted(by: { $0.iou > $1.iou })
        where !usedDetections.contains(pair.detection) && !usedFaces.contains(pair.face) {
            usedDetections.insert(pair.detection)
            usedFaces.insert(pair.face)
        }
        return (usedFaces.count, found.count - usedDetections.count)
    }

    /// Two rows of six faces 25-40 px wide, touching, the second row offset by half a face (a team photo), in
    /// BlazeFace's framing, with MTCNN's own detections redrawn the same way.
    func teamPhoto() throws -> (image: Image, faces: [Box], mtcnn: MTCNNDetector) {
        let mtcnn = try MTCNNTestSupport.detector()
        let picture = try MTCNNTestSupport.packedFacesPicture(locatingWith: mtcnn, rows: 2, perRow: 6,
                                                              widths: [25, 28, 31, 34, 37, 40])
        let framing = DetectorFraming.blazeFace(.fullRange)
        return (picture.image, picture.faces.map { framing.box(redrawing: $0, framedBy: .mtcnn) }, mtcnn)
    }

    func redrawnMTCNN(_ detections: [Detection]) -> [Detection] {
        detections.map { detection in
            var redrawn = detection
            redrawn.box = DetectorFraming.blazeFace(.fullRange).box(redrawing: detection.box, framedBy: .mtcnn)
            return redrawn
        }
    }

    /// Packed faces on a still: the hybrid keeps every face that MTCNN alone finds (neighbours are not merged),
    /// and every face is kept with the higher of its two detectors' scores.
    func testPackedFacesOnAStillKeepWhatMTCNNFinds() throws {
        let photo = try teamPhoto()
        let mtcnnFound = redrawnMTCNN(photo.mtcnn.detect(in: photo.image))
        let alone = matched(mtcnnFound, against: photo.faces)
        let hybridFound = try hybrid(interval: 1).detect(in: photo.image)
        let both = matched(hybridFound, against: photo.faces)
        let blazeFace = matched(try FaceDetectionTestSupport.detector(.fullRange).detect(in: photo.image), against: photo.faces)
        print("team photo (\(photo.faces.count) faces): MTCNN \(alone.hits) (\(alone.falseAlarms) false), "
              + "BlazeFace \(blazeFace.hits) (\(blazeFace.falseAlarms) false), auto \(both.hits) (\(both.falseAlarms) false)")
        XCTAssertGreaterThanOrEqual(alone.hits, 10, "a picture MTCNN can read")
        XCTAssertGreaterThanOrEqual(both.hits, max(alone.hits, blazeFace.hits))
        XCTAssertLessThanOrEqual(both.falseAlarms, max(alone.falseAlarms, blazeFace.falseAlarms))
        // No confident MTCNN face comes back weaker (or not at all) from the merge.
        for detection in mtcnnFound where detection.score > 0.9 {
            let kept = hybridFound.filter { $0.box.intersectionOverUnion(detection.box) > 0.5 }.map(\.score).max() ?? 0
            XCTAssertGreaterThanOrEqual(kept, detection.score, "face at \(detection.box)")
        }
    }

    /// The same photo drifting 1 px per frame, MTCNN's full search every 6th frame: on every frame the hybrid
    /// finds at least what MTCNN alone finds on that frame, and a tracker keeps one ID per face (neighbours are
    /// neither merged nor swapped).
    func testPackedFacesOnVideoKeepWhatMTCNNFindsWithOneIDEach() throws {
        let photo = try teamPhoto()
        let detector = try hybrid(interval: 6)
        var configuration = TrackerConfiguration()
        configuration.highScoreThreshold = 0.7
        configuration.lowScoreThreshold = 0.3
        let tracker = FaceTracker(configuration: configuration)
        var idsByFace: [Int: Set<Int>] = [:]
        for frame in 0..<12 {
            let canvas = drifted(photo.image, by: frame)
            let faces = photo.faces.map { Box(x: $0.x + Float(frame), y: $0.y, width: $0.width, height: $0.height) }
            let alone = matched(redrawnMTCNN(photo.mtcnn.detect(in: canvas)), against: faces)
            let found = try detector.detect(in: canvas)
            let both = matched(found, against: faces)
            XCTAssertGreaterThanOrEqual(both.hits, alone.hits, "frame \(frame)")
            XCTAssertLessThanOrEqual(both.falseAlarms, max(1, alone.falseAlarms), "frame \(frame)")
            for face in tracker.update(detections: found, time: Double(frame) / 25) where face.isConfirmed {
                guard let best = faces.indices.max(by: { faces[$0].intersectionOverUnion(face.box) < faces[$1].intersectionOverUnion(face.box) }),
                      faces[best].intersectionOverUnion(face.box) > 0.4 else { continue }
                idsByFace[best, default: []].insert(face.id)
            }
        }
        XCTAssertGreaterThanOrEqual(idsByFace.count, 10, "faces followed by confirmed tracks")
        for (face, ids) in idsByFace { XCTAssertEqual(ids.count, 1, "face \(face) had IDs \(ids.sorted())") }
        let allIDs = idsByFace.values.flatMap { $0 }
        XCTAssertEqual(Set(allIDs).count, allIDs.count, "an ID shared by two faces")
    }

    /// Detectors that report fixed detections, to pin the merge rule down.
    final class FixedDetector: FaceDetector {
        let detections: [Detection]
        init(_ detections: [Detection]) { self.detections = detections }
        func detect(in image: Image) throws -> [Detection] { detections }
    }

    /// The merge, on fixed detections in one framing (identity framings): a face seen by both detectors comes back
    /// once with the stronger score and its landmarks; a wide weak fast box over two neighbours does not swallow
    /// the two accurate faces; accurate faces side by side are never merged with each other.
    func testMergeKeepsTheStrongerDetectionAndOnlyTrueDuplicates() throws {
        let same = DetectorFraming(cropScale: 1, verticalOffset: 0)
        let image = Image(width: 200, height: 100, format: .rgb24, pixels: [UInt8](repeating: 128, count: 200 * 100 * 3))
        let eyes = FaceLandmarks(leftEye: Point(x: 20, y: 20), rightEye: Point(x: 30, y: 20), all: [])
        // One face: BlazeFace weak (0.6), MTCNN confident (0.9998) with landmarks.
        let weak = Detection(box: Box(x: 10, y: 10, width: 30, height: 30), score: 0.6)
        let strong = Detection(box: Box(x: 11, y: 11, width: 29, height: 30), score: 0.9998, landmarks: eyes)
        var merged = try HybridFaceDetector(fast: FixedDetector([weak]), fastFraming: same, accurate: FixedDetector([strong]),
                                            accurateFraming: same, fullSearchInterval: 1).detect(in: image)
        XCTAssertEqual(merged.count, 1)
        XCTAssertEqual(merged.first?.score, 0.9998)
        XCTAssertEqual(merged.first?.landmarks, eyes)
        // A confident fast detection keeps its own score, and takes the accurate detector's landmarks when it has none.
        let confident = Detection(box: weak.box, score: 0.99)
        let lesser = Detection(box: strong.box, score: 0.8, landmarks: eyes)
        merged = try HybridFaceDetector(fast: FixedDetector([confident]), fastFraming: same, accurate: FixedDetector([lesser]),
                                        accurateFraming: same, fullSearchInterval: 1).detect(in: image)
        XCTAssertEqual(merged.map(\.score), [0.99])
        XCTAssertEqual(merged.first?.landmarks, eyes)

        // Three faces 24 px wide, touching; the fast detector sees one weak box over the first two.
        let row = (0..<3).map { Detection(box: Box(x: 50 + Float($0) * 24, y: 40, width: 24, height: 24), score: 0.95) }
        let wide = Detection(box: Box(x: 50, y: 38, width: 48, height: 28), score: 0.55)
        merged = try HybridFaceDetector(fast: FixedDetector([wide]), fastFraming: same, accurate: FixedDetector(row),
                                        accurateFraming: same, fullSearchInterval: 1).detect(in: image)
        for face in row {
            XCTAssertTrue(merged.contains { $0.box == face.box && $0.score == face.score }, "lost \(face.box)")
        }
        XCTAssertEqual(merged.count, 3, "the three faces; the wide box is the duplicate of one of them")
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
