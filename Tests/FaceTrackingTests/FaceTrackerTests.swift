import FaceTracking
import VisionCore
import XCTest

final class FaceTrackerTests: XCTestCase {
    /// Runs `tracker` over frames at `fps` from 0 to `duration` seconds; `scene` gives each time's detections.
    func run(_ tracker: FaceTracker = FaceTracker(), fps: Double, duration: Double,
             scene: (Double) -> [Detection]) -> [(time: Double, faces: [TrackedFace])] {
        frameTimes(fps: fps, to: duration).map { time in (time, tracker.update(detections: scene(time), time: time)) }
    }

    /// Every ID reported anywhere in `frames`.
    func ids(_ frames: [(time: Double, faces: [TrackedFace])]) -> Set<Int> {
        Set(frames.flatMap { $0.faces.map(\.id) })
    }

    // MARK: Crossing

    /// Face A (score 0.9) moves right from x = 100, face B (score 0.8) left from x = 600, both at 200 px/s,
    /// 15 px apart vertically; they meet at t = 1.25 s. Scores tell which face a track was matched to.
    func crossing(fps: Double, hideBackFace: Bool) -> [(time: Double, faces: [TrackedFace])] {
        run(fps: fps, duration: 2.5) { t in
            let a = face(x: 100 + 200 * t, y: 200, score: 0.9)
            let b = face(x: 600 - 200 * t, y: 215, score: 0.8)
            // While they overlap, B (behind) may be hidden by A.
            if hideBackFace && a.box.intersectionOverUnion(b.box) > 0.1 { return [a] }
            return [a, b]
        }
    }

    func assertKeepsIdentities(_ frames: [(time: Double, faces: [TrackedFace])], file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertEqual(ids(frames), [1, 2], "one ID per face, none new after the crossing", file: file, line: line)
        var scoreOfID: [Int: Float] = [:]
        for frame in frames {
            for face in frame.faces {
                guard let score = face.detection?.score else { continue }
                XCTAssertEqual(scoreOfID[face.id, default: score], score, "ID \(face.id) swapped faces at t = \(frame.time)",
                               file: file, line: line)
                scoreOfID[face.id] = score
            }
        }
        XCTAssertEqual(Set(scoreOfID.values), [0.9, 0.8], file: file, line: line)
    }

    func testCrossingFacesKeepTheirIDs() {
        for fps in [24.0, 30, 120] { assertKeepsIdentities(crossing(fps: fps, hideBackFace: false)) }
    }

    func testCrossingFaceHiddenBehindTheOtherKeepsItsID() {
        for fps in [24.0, 30, 120] {
            let frames = crossing(fps: fps, hideBackFace: true)
            assertKeepsIdentities(frames)
            // The hidden face coasts on its prediction, so it is still reported while hidden.
            let hidden = frames.filter { $0.time > 1.2 && $0.time < 1.3 }
            XCTAssertFalse(hidden.isEmpty)
            XCTAssertTrue(hidden.allSatisfy { $0.faces.count == 2 && $0.faces.contains(where: \.isPredicted) })
        }
    }

    // MARK: Gaps and retention

    /// A face drifting right at 30 px/s, missing from `gap.lowerBound` to `gap.upperBound` seconds.
    func gapScene(fps: Double, gap: Range<Double>, duration: Double) -> [(time: Double, faces: [TrackedFace])] {
        run(fps: fps, duration: duration) { t in gap.contains(t) ? [] : [face(x: 200 + 30 * t, y: 200)] }
    }

    func testShortGapKeepsTheID() throws {
        // Missing for 0.5 s, under the 1 s retention.
        let frames = gapScene(fps: 30, gap: 1.0..<1.5, duration: 2.5)
        XCTAssertEqual(ids(frames), [1])
        let during = frames.filter { $0.time >= 1.0 && $0.time < 1.5 }
        XCTAssertTrue(during.allSatisfy { $0.faces.count == 1 && $0.faces[0].isPredicted })
        // The coasting box keeps drifting at 30 px/s: at t = 1.4 s the face would be at x = 242; the
        // estimated velocity is within a few px/s, so within 2 px.
        let coasting = try XCTUnwrap(frames.first { abs($0.time - 1.4) < 1e-9 }?.faces.first)
        XCTAssertEqual(Double(coasting.box.center.x), 242, accuracy: 2)
        XCTAssertEqual(coasting.secondsSinceDetection, 1.4 - 29.0 / 30, accuracy: 1e-9)
        XCTAssertTrue(try XCTUnwrap(frames.last).faces.allSatisfy { !$0.isPredicted && $0.id == 1 })
    }

    func testLongGapGivesANewIDNeverTheOldOne() throws {
        // Missing for 1.3 s, over the retention: the old track is retired, the face returns as ID 2.
        let frames = gapScene(fps: 30, gap: 1.0..<2.3, duration: 3.0)
        XCTAssertEqual(ids(frames), [1, 2])
        XCTAssertEqual(ids(frames.filter { $0.time >= 2.3 }), [2], "ID 1 never comes back")
        // Reported until 1 s after its last detection (t = 29/30 s), then gone until the new track confirms.
        XCTAssertTrue(frames.filter { $0.time > 29.0 / 30 + 1 + 1e-9 && $0.time < 2.3 }.allSatisfy(\.faces.isEmpty))
        XCTAssertFalse(try XCTUnwrap(frames.first { abs($0.time - 1.95) < 0.02 }).faces.isEmpty)
    }

    func testResetKeepsCountingIDs() {
        let tracker = FaceTracker()
        _ = run(tracker, fps: 30, duration: 0.5) { _ in [face(x: 100, y: 100)] }
        tracker.reset()
        let frames = run(tracker, fps: 30, duration: 0.5) { _ in [face(x: 100, y: 100)] }
        XCTAssertEqual(ids(frames), [2])
    }

    // MARK: Tentative tracks and the low-score pass

    func testSpuriousDetectionsNeverBecomeTracks() {
        // A real face throughout; a one-frame false alarm at 0.5 s; another flickering every other frame.
        let frames = run(fps: 30, duration: 2) { t in
            let frame = Int((t * 30).rounded())
            var detections = [face(x: 200, y: 200)]
            if frame == 15 { detections.append(face(x: 500, y: 300, score: 0.95)) }
            if frame % 2 == 0 { detections.append(face(x: 400, y: 100, score: 0.7)) }
            return detections
        }
        XCTAssertEqual(ids(frames), [1])
        // Confirmed on its third hit (frame 2), not before.
        XCTAssertTrue(frames[0].faces.isEmpty && frames[1].faces.isEmpty)
        XCTAssertEqual(frames[2].faces.map(\.hits), [3])
    }

    func testLowScoreDetectionsKeepATrackButStartNone() {
        var configuration = TrackerConfiguration()
        configuration.reportsTentativeTracks = true  // so even a tentative track would show
        let frames = run(FaceTracker(configuration: configuration), fps: 30, duration: 3) { t in
            // Face 1: confident for 0.5 s, then weak (0.3) for 2.5 s, longer than the retention.
            // Face 2: weak from the start, never confirmed by a confident detection.
            [face(x: 200 + 20 * t, y: 200, score: t < 0.5 ? 0.9 : 0.3), face(x: 500, y: 300, score: 0.3)]
        }
        XCTAssertEqual(ids(frames), [1])
        let weak = frames.filter { $0.time >= 0.5 }
        XCTAssertTrue(weak.allSatisfy { $0.faces.count == 1 && $0.faces[0].detection?.score == 0.3 })
    }

    func testDetectionsBelowTheLowThresholdAreIgnored() {
        let frames = run(fps: 30, duration: 2) { t in [face(x: 200, y: 200, score: t < 0.5 ? 0.9 : 0.1)] }
        // Matched until 0.5 s, coasting 1 s, retired after t = 14/30 + 1 s.
        XCTAssertEqual(ids(frames), [1])
        XCTAssertTrue(frames.filter { $0.time >= 0.5 }.allSatisfy { $0.faces.allSatisfy(\.isPredicted) })
        XCTAssertTrue(frames.filter { $0.time > 14.0 / 30 + 1 + 1e-9 }.allSatisfy(\.faces.isEmpty))
    }

    // MARK: Detect every N frames

    func testPredictCarriesTracksBetweenDetections() {
        // 30 fps, detector on every 5th frame; the face moves right at 120 px/s.
        let tracker = FaceTracker()
        var predictedErrors: [Double] = []
        for (frame, time) in frameTimes(fps: 30, to: 3).enumerated() {
            let truth = 100 + 120 * time
            let faces = frame % 5 == 0
                ? tracker.update(detections: [face(x: truth, y: 200)], time: time)
                : tracker.predict(time: time)
            guard frame >= 10 else { continue }  // confirmed on the third detection, frame 10
            XCTAssertEqual(faces.map(\.id), [1], "t = \(time)")
            XCTAssertEqual(faces[0].isPredicted, frame % 5 != 0)
            if time >= 1, frame % 5 != 0 { predictedErrors.append(abs(Double(faces[0].box.center.x) - truth)) }
        }
        // After a second the velocity is known: predictions between detections move with the face, within
        // 3 px (a sitting box would lag by up to 4 frames x 4 px = 16 px).
        XCTAssertLessThan(try XCTUnwrap(predictedErrors.max()), 3)
    }

    func testPredictIsNotAMiss() {
        // Three detections confirm the face; then 2 s (twice the retention) of predict calls only, no
        // update; a detection afterwards still finds the same track, and even a tentative track survives.
        let tracker = FaceTracker()
        for time in [0.0, 0.1, 0.2] { _ = tracker.update(detections: [face(x: 100, y: 100)], time: time) }
        _ = tracker.update(detections: [face(x: 100, y: 100), face(x: 400, y: 100)], time: 0.3)
        for time in stride(from: 0.4, to: 2.4, by: 0.1) { XCTAssertEqual(tracker.predict(time: time).map(\.id), [1]) }
        _ = tracker.update(detections: [face(x: 100, y: 100), face(x: 400, y: 100)], time: 2.4)
        let faces = tracker.update(detections: [face(x: 100, y: 100), face(x: 400, y: 100)], time: 2.5)
        XCTAssertEqual(faces.map(\.id), [1, 2])
        XCTAssertEqual(faces.map(\.hits), [6, 3])
    }

    // MARK: Frame-rate independence

    func testPredictionFollowsStreamTimeNotFrames() throws {
        // A face moving right at 120 px/s, detected for 1 s at 24, 30, 120 fps and at a variable rate
        // (intervals 1/60 to 1/15 s); predicted 0.5 s past its last frame it sits at the true position.
        // The velocity is learnt exactly from exact detections, so 1 px (1% of the box) is ample; a
        // filter stepping by frames would fall short by about 60 px.
        let variable = variableFrameTimes(seed: 4, to: 1)
        for times in [frameTimes(fps: 24, to: 1), frameTimes(fps: 30, to: 1), frameTimes(fps: 120, to: 1), variable] {
            let tracker = FaceTracker()
            for time in times { _ = tracker.update(detections: [face(x: 100 + 120 * time, y: 200)], time: time) }
            let later = times.last! + 0.5
            let predicted = try XCTUnwrap(tracker.predict(time: later).first)
            XCTAssertEqual(Double(predicted.box.center.x), 100 + 120 * later, accuracy: 1, "\(times.count) frames")
            XCTAssertEqual(Double(predicted.box.center.y), 200, accuracy: 1)
        }
    }

    /// In seconds: A moves right at 100 px/s, missing 1.0-1.8 s (under the retention); B stands still,
    /// appears at 0.5 s, leaves at 1.5 s and returns at 2.7 s (gone 1.2 s, over the retention).
    func scene(_ t: Double) -> [Detection] {
        var detections: [Detection] = []
        if !(1.0..<1.8).contains(t) { detections.append(face(x: 100 + 100 * t, y: 150, score: 0.9)) }
        if (0.5..<1.5).contains(t) || t >= 2.7 { detections.append(face(x: 500, y: 400, score: 0.8)) }
        return detections
    }

    func testSameTracksAt24And30And120FPS() throws {
        for fps in [24.0, 30, 120] {
            let frames = run(fps: fps, duration: 3.5, scene: scene)
            var idsOfFace: [Float: Set<Int>] = [:]
            for face in frames.flatMap(\.faces) { if let score = face.detection?.score { idsOfFace[score, default: []].insert(face.id) } }
            XCTAssertEqual(idsOfFace[0.9], [1], "\(fps) fps: A keeps its ID through the 0.8 s gap")
            XCTAssertEqual(idsOfFace[0.8], [2, 3], "\(fps) fps: B returns after 1.2 s with a new ID")
            // B's first track is reported (coasting) until 1 s after its last detection, not 1 s of frames.
            let lastDetectionOfB = try XCTUnwrap(frames.last { $0.time < 1.5 }).time
            let lastReportOfB = try XCTUnwrap(frames.last { $0.faces.contains { $0.id == 2 } }).time
            XCTAssertEqual(lastReportOfB, lastDetectionOfB + 1, accuracy: 1 / fps + 1e-9, "\(fps) fps")
            // The filtered box of A at the end sits on the face, within 1 px.
            let end = try XCTUnwrap(frames.last)
            let a = try XCTUnwrap(end.faces.first { $0.id == 1 })
            XCTAssertEqual(Double(a.box.center.x), 100 + 100 * end.time, accuracy: 1, "\(fps) fps")
        }
    }
}
