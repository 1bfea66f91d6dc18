import EmotionModel
import VisionCore
import XCTest

final class SmoothingTests: XCTestCase {
    func testHalfLifeIsInSecondsWhateverTheFrameRate() {
        // A step from class 0 to class 1 at t = 0; after exactly one half-life the smoothed value is half way.
        for fps in [24.0, 30.0, 120.0] {
            let smoother = EmotionSmoother(configuration: SmoothingConfiguration(method: .exponential(halfLife: 0.5),
                                                                                switchMargin: 0, switchSeconds: 0))
            _ = smoother.update(track: 1, probabilities: [1, 0], time: 0)
            var last = SmoothedEmotion(probabilities: [], label: 0, confidence: 0)
            for frame in 1...Int(fps * 0.5) { last = smoother.update(track: 1, probabilities: [0, 1], time: Double(frame) / fps) }
            // (1 - 0.5) of the way from [1, 0] to [0, 1]; Float arithmetic over up to 60 steps: 1e-4.
            XCTAssertEqual(last.probabilities[1], 0.5, accuracy: 1e-4, "\(fps) fps")
        }
    }

    func testLabelHoldsOnlyNearTiesAndOnlyBriefly() {
        let smoother = EmotionSmoother(configuration: SmoothingConfiguration(method: .none, switchMargin: 0.2, switchSeconds: 0.3))
        XCTAssertEqual(smoother.update(track: 7, probabilities: [0.8, 0.2], time: 0).label, 0)
        // Class 1 leads, but by less than the margin: held for up to 0.3 s...
        XCTAssertEqual(smoother.update(track: 7, probabilities: [0.45, 0.55], time: 0.1).label, 0)
        XCTAssertEqual(smoother.update(track: 7, probabilities: [0.45, 0.55], time: 0.3).label, 0)
        // ...then the leader is shown.
        XCTAssertEqual(smoother.update(track: 7, probabilities: [0.45, 0.55], time: 0.4).label, 1)
        // Leading again resets the clock: a near tie that alternates never outlasts 0.3 s behind.
        XCTAssertEqual(smoother.update(track: 7, probabilities: [0.52, 0.48], time: 0.5).label, 1)
        XCTAssertEqual(smoother.update(track: 7, probabilities: [0.45, 0.55], time: 0.6).label, 1)
        // A lead of the margin or more switches at once.
        XCTAssertEqual(smoother.update(track: 7, probabilities: [0.75, 0.25], time: 0.65).label, 0)
        // Tracks are independent; a retired track starts fresh.
        XCTAssertEqual(smoother.update(track: 8, probabilities: [0.1, 0.9], time: 0.7).label, 1)
        smoother.retainOnly([8])
        XCTAssertEqual(smoother.update(track: 7, probabilities: [0.9, 0.1], time: 0.8).label, 0)
    }

    /// The shown label sinking from first to fourth place, each step within the margin of the leader (as on
    /// WolfgangLanger_Pexels.mp4 at 3.0 s, where `happy 17%` stayed on screen beside sad 0.26 and fear 0.21): it
    /// gives way to the leader within the switch time, and on no frame is it more than the margin behind.
    func testALabelFallingAwayIsNotHeld() {
        let configuration = SmoothingConfiguration(method: .exponential(halfLife: 0.5), switchMargin: 0.1, switchSeconds: 0.3)
        let smoother = EmotionSmoother(configuration: configuration)
        // happy (3) leads, then sad (4), fear (2) and neutral (6) rise slowly past it.
        var leaderSince: Double?
        var switchedAt: Double?
        for frame in 0...90 {
            let time = Double(frame) / 30
            let t = Float(min(1, time / 2))
            var raw: [Float] = [0.05, 0.02, 0.10 + 0.15 * t, 0.45 - 0.30 * t, 0.13 + 0.17 * t, 0.05, 0.20 - 0.02 * t]
            let total = raw.reduce(0, +)
            raw = raw.map { $0 / total }
            let shown = smoother.update(track: 1, probabilities: raw, time: time)
            let leader = shown.probabilities.indices.max { shown.probabilities[$0] < shown.probabilities[$1] }!
            XCTAssertLessThan(shown.probabilities[leader] - shown.confidence, configuration.switchMargin, "at \(time) s")
            XCTAssertEqual(shown.confidence, shown.probabilities[shown.label])
            if leader != 3, leaderSince == nil { leaderSince = time }
            if shown.label != 3, switchedAt == nil { switchedAt = time }
        }
        let overtaken = try! XCTUnwrap(leaderSince), switched = try! XCTUnwrap(switchedAt)
        XCTAssertLessThanOrEqual(switched - overtaken, configuration.switchSeconds + 1e-9)
    }

    func testWindowMeanCoversTheLastSeconds() {
        let smoother = EmotionSmoother(configuration: SmoothingConfiguration(method: .window(seconds: 1), switchMargin: 0, switchSeconds: 0))
        _ = smoother.update(track: 1, probabilities: [1, 0], time: 0)
        _ = smoother.update(track: 1, probabilities: [0, 1], time: 0.5)
        XCTAssertEqual(smoother.update(track: 1, probabilities: [0, 1], time: 0.9).probabilities[1], 2.0 / 3, accuracy: 1e-6)
        // At t = 1.6 the frame at 0 and the one at 0.5 are older than 1 s.
        XCTAssertEqual(smoother.update(track: 1, probabilities: [1, 0], time: 1.6).probabilities[1], 0.5, accuracy: 1e-6)
    }
}

final class FaceCropperTests: XCTestCase {
    /// Two dark "eyes" on a light face tilted by 20 degrees: after alignment they sit on one row of the crop.
    func testAlignmentLevelsTheEyes() {
        let size = 200
        var pixels = [UInt8](repeating: 220, count: size * size * 3)
        let angle = Float(20) * .pi / 180
        let center = Point(x: 100, y: 100)
        let leftEye = Point(x: center.x - 30 * cosf(angle), y: center.y - 30 * sinf(angle))
        let rightEye = Point(x: center.x + 30 * cosf(angle), y: center.y + 30 * sinf(angle))
        for eye in [leftEye, rightEye] {
            for y in -4...4 {
                for x in -4...4 where x * x + y * y <= 16 {
                    let offset = ((Int(eye.y) + y) * size + Int(eye.x) + x) * 3
                    pixels[offset] = 0; pixels[offset + 1] = 0; pixels[offset + 2] = 0
                }
            }
        }
        let image = Image(width: size, height: size, format: .rgb24, pixels: pixels)
        let box = Box(x: 50, y: 50, width: 100, height: 100)
        let landmarks = FaceLandmarks(leftEye: leftEye, rightEye: rightEye, all: [leftEye, rightEye])
        let crop = FaceCropper(side: 48, scale: 1).crop(image, box: box, landmarks: landmarks)
        // Darkest pixel in each half of the crop: the two eyes, on (nearly) the same row.
        func darkest(columns: Range<Int>) -> (x: Int, y: Int) {
            var best = (x: 0, y: 0, value: UInt8.max)
            for y in 0..<48 {
                for x in columns where crop[y * 48 + x] < best.value { best = (x, y, crop[y * 48 + x]) }
            }
            return (best.x, best.y)
        }
        let left = darkest(columns: 0..<24), right = darkest(columns: 24..<48)
        XCTAssertLessThanOrEqual(abs(left.y - right.y), 1, "eyes level after alignment: \(left) \(right)")
        // 60 px apart in a 100 px crop of 48 px: about 29 px apart.
        XCTAssertEqual(Double(right.x - left.x), 28.8, accuracy: 2)
        // Without alignment they are not level.
        let tilted = FaceCropper(side: 48, scale: 1, aligns: false).crop(image, box: box, landmarks: landmarks)
        let tiltedLeft = tilted.indices.filter { $0 % 48 < 24 }.min { tilted[$0] < tilted[$1] }!
        let tiltedRight = tilted.indices.filter { $0 % 48 >= 24 }.min { tilted[$0] < tilted[$1] }!
        XCTAssertGreaterThan(tiltedRight / 48 - tiltedLeft / 48, 5)
    }

    func testGrayAndRGBCropsAgree() {
        var rgb = [UInt8](repeating: 0, count: 64 * 64 * 3)
        var gray = [UInt8](repeating: 0, count: 64 * 64)
        for index in 0..<(64 * 64) {
            let value = UInt8((index * 7) % 256)
            rgb[3 * index] = value; rgb[3 * index + 1] = value; rgb[3 * index + 2] = value
            gray[index] = value
        }
        let cropper = FaceCropper(side: 48, scale: 1.2)
        let box = Box(x: 10, y: 12, width: 40, height: 36)
        let fromRGB = cropper.crop(Image(width: 64, height: 64, format: .rgb24, pixels: rgb), box: box, landmarks: nil)
        let fromGray = cropper.crop(Image(width: 64, height: 64, format: .gray8, pixels: gray), box: box, landmarks: nil)
        // Luma of a grey pixel is the grey value (weights sum to 1); rounding may differ by one.
        for index in fromRGB.indices { XCTAssertLessThanOrEqual(abs(Int(fromRGB[index]) - Int(fromGray[index])), 1) }
    }
}
