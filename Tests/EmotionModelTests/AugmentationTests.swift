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

    // MARK: mixup

    func testBetaSamplesHaveTheRightMeanAndSpread() {
        var generator = RandomGenerator(seed: 7)
        for (a, b) in [(Float(0.2), Float(0.2)), (2, 5), (1, 1)] {
            let samples = (0..<20000).map { _ in Double(generator.nextBeta(a, b)) }
            let mean = samples.reduce(0, +) / Double(samples.count)
            let variance = samples.map { ($0 - mean) * ($0 - mean) }.reduce(0, +) / Double(samples.count)
            let (x, y) = (Double(a), Double(b))
            XCTAssertEqual(mean, x / (x + y), accuracy: 0.01, "Beta(\(a), \(b)) mean")
            XCTAssertEqual(variance, x * y / ((x + y) * (x + y) * (x + y + 1)), accuracy: 0.005, "Beta(\(a), \(b)) variance")
            XCTAssertTrue(samples.allSatisfy { (0...1).contains($0) })
        }
    }

    func testMixupBlendsImagesAndTargetsWithOneWeight() {
        let batch = 6, pixels = 4, classes = 3
        var input = Tensor(shape: [batch, 1, 2, 2], storage: (0..<(batch * pixels)).map { Float($0 / pixels) })  // image i is all i
        var targets = SoftmaxCrossEntropy().targets(labels: (0..<batch).map { $0 % classes }, classes: classes)
        let (originalInput, originalTargets) = (input, targets)
        var generator = RandomGenerator(seed: 3)
        let lambda = Mixup(alpha: 0.4).apply(to: &input, targets: &targets, generator: &generator)
        XCTAssertGreaterThanOrEqual(lambda, 0.5)
        XCTAssertLessThanOrEqual(lambda, 1)
        var partners: [Int] = []
        for row in 0..<batch {
            // Every pixel of row i is lambda * i + (1 - lambda) * partner: recover the partner from it.
            let value = input.storage[row * pixels]
            let partner = Int(((value - lambda * Float(row)) / (1 - lambda)).rounded())
            partners.append(partner)
            XCTAssertEqual(value, lambda * Float(row) + (1 - lambda) * Float(partner), accuracy: 1e-4)
            XCTAssertTrue((0..<pixels).allSatisfy { input.storage[row * pixels + $0] == value })
            for k in 0..<classes {
                XCTAssertEqual(targets.storage[row * classes + k],
                               lambda * originalTargets.storage[row * classes + k]
                                   + (1 - lambda) * originalTargets.storage[partner * classes + k], accuracy: 1e-6)
            }
            XCTAssertEqual((0..<classes).map { targets.storage[row * classes + $0] }.reduce(0, +), 1, accuracy: 1e-5)
        }
        XCTAssertEqual(partners.sorted(), Array(0..<batch), "partners are a permutation of the batch")
        // Seeded: the same generator state gives the same blend.
        var again = (originalInput, originalTargets)
        var replay = RandomGenerator(seed: 3)
        Mixup(alpha: 0.4).apply(to: &again.0, targets: &again.1, generator: &replay)
        XCTAssertEqual(again.0, input)
    }
}
