import FaceTracking
import VisionCore
import XCTest

final class KalmanBoxFilterTests: XCTestCase {
    /// A 100 px box whose centre moves at (60, -30) px/s, measured exactly for one second at `times`,
    /// then predicted 0.5 s past the last measurement.
    func track(times: [Double]) -> (filter: KalmanBoxFilter, last: Double) {
        func truth(_ t: Double) -> Box { faceBox(x: 100 + 60 * t, y: 200 - 30 * t, size: 100) }
        var filter = KalmanBoxFilter(box: truth(times[0]))
        for (previous, time) in zip(times, times.dropFirst()) {
            filter.predict(elapsed: time - previous)
            filter.update(with: truth(time))
        }
        return (filter, times.last!)
    }

    func assertPredictsConstantVelocity(times: [Double], file: StaticString = #filePath, line: UInt = #line) {
        var (filter, last) = track(times: times)
        // Velocity in pixels per second whatever the frame rate. The measurements are exact, so the start-up
        // error (velocity starts at 0, with a 200 px/s prior spread against a 5 px measurement spread)
        // decays within a few frames: 0.5 px/s (1% of 60) is ample. A filter stepping by frames would
        // report 60 / fps px per frame instead.
        XCTAssertEqual(filter.velocity.x, 60, accuracy: 0.5, file: file, line: line)
        XCTAssertEqual(filter.velocity.y, -30, accuracy: 0.5, file: file, line: line)
        XCTAssertEqual(filter.velocity.width, 0, accuracy: 0.1, file: file, line: line)
        filter.predict(elapsed: 0.5)
        // 0.5 s ahead, a 0.5 px/s velocity error is 0.25 px; allow 0.5 px (0.5% of the box).
        let t = last + 0.5
        XCTAssertEqual(Double(filter.box.center.x), 100 + 60 * t, accuracy: 0.5, file: file, line: line)
        XCTAssertEqual(Double(filter.box.center.y), 200 - 30 * t, accuracy: 0.5, file: file, line: line)
        XCTAssertEqual(Double(filter.box.width), 100, accuracy: 0.1, file: file, line: line)
        XCTAssertEqual(Double(filter.box.height), 100, accuracy: 0.1, file: file, line: line)
    }

    func testConstantVelocityAt24FPS() { assertPredictsConstantVelocity(times: frameTimes(fps: 24, to: 1)) }
    func testConstantVelocityAt30FPS() { assertPredictsConstantVelocity(times: frameTimes(fps: 30, to: 1)) }
    func testConstantVelocityAt120FPS() { assertPredictsConstantVelocity(times: frameTimes(fps: 120, to: 1)) }

    func testConstantVelocityAtVariableFrameRate() {
        assertPredictsConstantVelocity(times: variableFrameTimes(seed: 3, to: 1))
    }

    func testOneLongPredictionEqualsManyShortOnes() {
        // The process noise is the exact discretisation of continuous white acceleration, so the state and
        // its covariance after 0.5 s do not depend on how the interval is cut. The covariance is seen
        // through the gain of a following update.
        let (moving, _) = track(times: frameTimes(fps: 30, to: 0.5))
        var once = moving, inSteps = moving
        once.predict(elapsed: 0.5)
        for _ in 0..<60 { inSteps.predict(elapsed: 0.5 / 60) }
        let measured = faceBox(x: 200, y: 150, size: 110)
        once.update(with: measured)
        inSteps.update(with: measured)
        XCTAssertEqual(once.box.center.x, inSteps.box.center.x, accuracy: 1e-3)
        XCTAssertEqual(once.box.center.y, inSteps.box.center.y, accuracy: 1e-3)
        XCTAssertEqual(once.box.width, inSteps.box.width, accuracy: 1e-3)
        XCTAssertEqual(once.velocity.x, inSteps.velocity.x, accuracy: 1e-6)
    }

    func testNoElapsedTimeChangesNothing() {
        var filter = KalmanBoxFilter(box: faceBox(x: 50, y: 60))
        filter.predict(elapsed: 0)
        filter.predict(elapsed: -1)
        XCTAssertEqual(filter.box, faceBox(x: 50, y: 60))
    }
}
