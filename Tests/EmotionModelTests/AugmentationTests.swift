import EmotionModel
import NeuralEngine
import XCTest

final class AugmentationTests: XCTestCase {
    let normalization = InputPreprocessing(mean: 0.5, standardDeviation: 0.25)

    func gradient(side: Int) -> [UInt8] {
        (0..<(side * side)).map { UInt8(($0 % side) * 4 + ($0 / side)) }
    }

    func augmented(_ pixels: [UInt8], side: Int, policy: AugmentationPolicy, seed: UInt64) -> [Float] {
        var generator = RandomGenerator(seed: seed)
        return policy.applied(to: pixels, side: side, normalization: normalization, generator: &generator)
    }

    func normalized(_ pixel: UInt8) -> Float {
        (Float(pixel) / 255 - 0.5) / 0.25
    }

    func testNoAugmentationIsExactlyTheNormalisedImage() {
        let pixels = gradient(side: 48)
        let output = augmented(pixels, side: 48, policy: .none, seed: 1)
        for index in pixels.indices {
            // (p / 255 - 0.5) / 0.25, computed in Float: 1e-5.
            XCTAssertEqual(output[index], (Float(pixels[index]) / 255 - 0.5) / 0.25, accuracy: 1e-5, "pixel \(index)")
        }
    }

    func testFlipOnlyMirrorsRows() {
        var policy = AugmentationPolicy.none
        policy.horizontalFlip = true
        let pixels = gradient(side: 48)
        // Over a few seeds, each output is either the image or its mirror, and both occur.
        var sawMirror = false, sawPlain = false
        for seed in 0..<16 {
            let output = augmented(pixels, side: 48, policy: policy, seed: UInt64(seed))
            let mirrored = (0..<48).allSatisfy { (x: Int) -> Bool in
                abs(output[5 * 48 + x] - normalized(pixels[5 * 48 + 47 - x])) < 1e-4
            }
            let plain = (0..<48).allSatisfy { (x: Int) -> Bool in
                abs(output[5 * 48 + x] - normalized(pixels[5 * 48 + x])) < 1e-4
            }
            XCTAssertTrue(mirrored != plain, "seed \(seed): exactly one of plain or mirrored")
            sawMirror = sawMirror || mirrored
            sawPlain = sawPlain || plain
        }
        XCTAssertTrue(sawMirror && sawPlain)
    }

    func testSameSeedSameResultAndJitterStaysClose() {
        let pixels = gradient(side: 48)
        let first = augmented(pixels, side: 48, policy: .standard, seed: 7)
        XCTAssertEqual(first, augmented(pixels, side: 48, policy: .standard, seed: 7), "reproducible")
        XCTAssertNotEqual(first, augmented(pixels, side: 48, policy: .standard, seed: 8))
        XCTAssertTrue(first.allSatisfy(\.isFinite))
    }

    func testShiftMovesContentTheExpectedWay() {
        // A bright dot at the centre, shifted by a pure translation: it must stay a single bright blob
        // within the shift range of the centre.
        var pixels = [UInt8](repeating: 0, count: 48 * 48)
        pixels[24 * 48 + 24] = 255
        var policy = AugmentationPolicy.none
        policy.shift = 0.1
        for seed in 0..<10 {
            let output = augmented(pixels, side: 48, policy: policy, seed: UInt64(seed))
            let brightest = output.indices.max { output[$0] < output[$1] }!
            XCTAssertLessThanOrEqual(abs(brightest % 48 - 24), 6)
            XCTAssertLessThanOrEqual(abs(brightest / 48 - 24), 6)
        }
    }
}
