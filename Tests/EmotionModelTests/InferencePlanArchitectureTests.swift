import CMallocCounter
import EmotionModel
import NeuralEngine
import XCTest

/// The shipped architectures through `InferencePlan` and `EmotionClassifier` against the layer stack's own
/// evaluation-mode forward.
final class InferencePlanArchitectureTests: XCTestCase {
    /// A network of `name` with random weights and non-trivial batch-norm statistics.
    private func makeNetwork(_ name: String) throws -> (ArchitectureConfig, Sequential) {
        let architecture = try ArchitectureConfig.named(name)
        let network = architecture.makeNetwork(seed: 41)
        var generator = RandomGenerator(seed: 42)
        for case let norm as BatchNorm in network.allLayers {
            let count = norm.channels
            norm.scale.value = Tensor(uniform: [count], bound: 1, generator: &generator)
            for index in 0..<count { norm.scale.value.storage[index] += 1.2 }
            norm.shift.value = Tensor(normal: [count], standardDeviation: 0.1, generator: &generator)
            norm.runningMean.value = Tensor(normal: [count], standardDeviation: 0.1, generator: &generator)
            norm.runningVariance.value = Tensor(uniform: [count], bound: 0.5, generator: &generator)
            for index in 0..<count { norm.runningVariance.value.storage[index] += 1 }
        }
        return (architecture, network)
    }

    func testPlanMatchesFoldedForwardForEachArchitecture() throws {
        for name in ArchitectureConfig.names {
            let (architecture, network) = try makeNetwork(name)
            let side = architecture.inputSize
            let folded = foldingBatchNorms(network)
            let plan = InferencePlan(folded, inputItemShape: [1, side, side], maximumBatch: 8)
            XCTAssertEqual(plan.outputItemShape, [architecture.classes])
            var generator = RandomGenerator(seed: 43)
            for batch in [1, 5, 19] {  // 19 > maximumBatch: runs as 8 + 8 + 3
                let input = Tensor(normal: [batch, 1, side, side], standardDeviation: 1, generator: &generator)
                let difference = plan.run(input).maxAbsoluteDifference(folded.forward(input, training: false))
                // The plan runs the 3x3 convolutions of >= 4 channels through Winograd F(2x2, 3x3), which rounds
                // differently from forward's im2col (WinogradConvolutionTests: within 1e-4 relative per layer):
                // 1e-4 on logits of order 1 (measured 1.5e-5 for vgg).
                XCTAssertLessThanOrEqual(difference, 1e-4, "\(name), batch \(batch)")
            }
            // Unfolded (batch norms and dropout as layers), as for a network in training.
            let input = Tensor(normal: [2, 1, side, side], standardDeviation: 1, generator: &generator)
            let unfolded = InferencePlan(network, inputItemShape: [1, side, side], maximumBatch: 2)
            // 1e-4: Winograd, as above.
            XCTAssertLessThanOrEqual(unfolded.run(input).maxAbsoluteDifference(network.forward(input, training: false)), 1e-4,
                                     "\(name), unfolded")
        }
    }

    private func makeClassifier(_ name: String) throws -> (EmotionClassifier, Sequential) {
        let (architecture, network) = try makeNetwork(name)
        let file = EmotionModelFile(architecture: architecture, classNames: (0..<architecture.classes).map { "class\($0)" },
                                    preprocessing: InputPreprocessing(mean: 0.5, standardDeviation: 0.25, blurSigma: 1.5),
                                    weights: network.stateDictionary(prefix: "network."), provenance: [:])
        return (try EmotionClassifier(model: file), foldingBatchNorms(network))
    }

    func testClassifierMatchesTheFoldedNetworkAtAnyBatch() throws {
        let (classifier, folded) = try makeClassifier("mini")
        let side = classifier.inputSize
        var generator = RandomGenerator(seed: 44)
        for count in [1, 5, 40] {  // 40: more than the 32 faces of the classifier's plan
            let pixels = (0..<(count * side * side)).map { _ in UInt8(truncatingIfNeeded: generator.next() >> 56) }
            for mirrorAverage in [false, true] {
                var expected = Softmax.probabilities(folded.forward(classifier.inputTensor(pixels: pixels, count: count),
                                                                    training: false))
                if mirrorAverage {
                    let mirrored = Softmax.probabilities(folded.forward(
                        classifier.inputTensor(pixels: pixels, count: count, mirrored: true), training: false))
                    for index in 0..<expected.count {
                        expected.storage[index] = 0.5 * (expected.storage[index] + mirrored.storage[index])
                    }
                }
                let rows = classifier.probabilities(pixels: pixels, count: count, mirrorAverage: mirrorAverage)
                XCTAssertEqual(rows.count, count)
                let got = Tensor(shape: expected.shape, storage: rows.flatMap { $0 })
                // Probabilities: 1e-6 absolute.
                XCTAssertLessThanOrEqual(got.maxAbsoluteDifference(expected), 1e-6, "count \(count), mirror \(mirrorAverage)")
            }
        }
    }

    func testClassifierAllocatesOnlyTheRowsItReturns() throws {
        let (classifier, _) = try makeClassifier("vgg")
        let side = classifier.inputSize
        let pixels = [UInt8](repeating: 100, count: side * side)
        for _ in 0..<3 { _ = classifier.probabilities(pixels: pixels, count: 1, mirrorAverage: true) }
        let calls = 50
        let allocations = countingMallocCalls {
            for _ in 0..<calls { _ = classifier.probabilities(pixels: pixels, count: 1, mirrorAverage: true) }
        }
        // Per call: the outer array and one row of probabilities. (OpenBLAS's own small-matrix sgemm scratch, taken
        // by the Winograd products, is counted apart by the counter and is not ours.)
        XCTAssertLessThanOrEqual(allocations, 2 * calls)
    }
}

// MARK: - Counting allocations

/// malloc calls, on every thread, while `body` runs (Tests/CMallocCounter).
private func countingMallocCalls(_ body: () -> Void) -> Int {
    malloc_counter_classify_callers(1)
    defer { malloc_counter_classify_callers(0) }
    let before = malloc_call_count()
    body()
    return malloc_call_count() - before
}
