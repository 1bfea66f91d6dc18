import CMallocCounter
import NeuralEngine
import XCTest

final class InferencePlanTests: XCTestCase {
    /// Every layer kind the plan runs, with awkward shapes: unfolded batch norms (2-d and 4-d), PReLU, the general
    /// and the ceil-mode max-pool paths, a grouped and a 1x1 convolution, a nested Sequential, dropout, softmax.
    private func makeNetwork() -> Sequential {
        var generator = RandomGenerator(seed: 31)
        let norms = [BatchNorm(channels: 8), BatchNorm(channels: 16)]
        for norm in norms {
            let count = norm.channels
            norm.scale.value = Tensor(normal: [count], standardDeviation: 1, generator: &generator)
            norm.shift.value = Tensor(normal: [count], standardDeviation: 1, generator: &generator)
            norm.runningMean.value = Tensor(normal: [count], standardDeviation: 1, generator: &generator)
            norm.runningVariance.value = Tensor(uniform: [count], bound: 1, generator: &generator)
            for index in 0..<count { norm.runningVariance.value.storage[index] += 1.1 }
        }
        return Sequential([
            Conv2d(inChannels: 3, outChannels: 8, kernelSize: 3, padding: .uniform(1), bias: false, generator: &generator),
            norms[0], PReLU(channels: 8),
            MaxPool2d(kernelSize: 3, stride: 2, padding: 1),                                   // 10 -> 5
            Conv2d(inChannels: 8, outChannels: 12, kernelSize: 3, padding: .uniform(1), groups: 4, generator: &generator),
            ReLU(),
            MaxPool2d(kernelSize: 2, ceilMode: true),                                          // 5 -> 3
            Sequential([Dropout(probability: 0.5), Conv2d(inChannels: 12, outChannels: 16, kernelSize: 1, generator: &generator)]),
            GlobalAveragePool(), norms[1],
            Linear(inFeatures: 16, outFeatures: 5, generator: &generator), Softmax(),
        ])
    }

    func testPlanMatchesEvaluationForwardAtEveryBatchSize() {
        let network = makeNetwork()
        let plan = InferencePlan(network, inputItemShape: [3, 10, 10], maximumBatch: 4)
        XCTAssertEqual(plan.outputItemShape, [5])
        var generator = RandomGenerator(seed: 32)
        for batch in [1, 3, 4, 9] {  // 9 runs as 4 + 4 + 1
            let input = Tensor(normal: [batch, 3, 10, 10], standardDeviation: 1, generator: &generator)
            let expected = network.forward(input, training: false)
            // Same kernels on the same data: equal in practice; 1e-5 allows for sgemm blocking on other batch splits.
            XCTAssertLessThanOrEqual(plan.run(input).maxAbsoluteDifference(expected), 1e-5, "batch \(batch)")
        }
    }

    /// A ReLU or PReLU right after a convolution is applied by the convolution as it writes (OutputActivation): on
    /// the Winograd path (its vector and scalar loops, partial tiles) and on im2col, per channel, in order.
    func testActivationsFoldedIntoConvolutionsMatchTheLayers() {
        var generator = RandomGenerator(seed: 35)
        let rectifier = PReLU(channels: 6)
        // Distinct slopes, some negative and one above 1: a slope taken from the wrong channel changes the output.
        rectifier.slope.value = Tensor(shape: [6], storage: [0.25, -0.5, 1.5, 0, 0.1, -1])
        let network = Sequential([
            Conv2d(inChannels: 4, outChannels: 6, kernelSize: 3, padding: .uniform(1), generator: &generator),
            rectifier,
            Conv2d(inChannels: 6, outChannels: 5, kernelSize: 2, generator: &generator),  // im2col
            ReLU(),
            Conv2d(inChannels: 5, outChannels: 4, kernelSize: 3, generator: &generator),  // Winograd, odd output
            PReLU(channels: 4),
            Flatten(),
        ])
        for side in [21, 10] {  // Winograd tiles 11 (vector loop and tail) and 5 (tail only) across
            let plan = InferencePlan(network, inputItemShape: [4, side, side], maximumBatch: 3)
            let input = Tensor(normal: [3, 4, side, side], standardDeviation: 1, generator: &generator)
            let expected = network.forward(input, training: false)
            // Winograd against im2col: 1e-5 for the transforms' rounding.
            XCTAssertLessThanOrEqual(plan.run(input).maxAbsoluteDifference(expected), 1e-5, "side \(side)")
        }
    }

    func testPlanRunsTheCurrentParameters() {
        let network = makeNetwork()
        let plan = InferencePlan(network, inputItemShape: [3, 10, 10], maximumBatch: 2)
        var generator = RandomGenerator(seed: 33)
        let input = Tensor(normal: [2, 3, 10, 10], standardDeviation: 1, generator: &generator)
        let before = plan.run(input)
        let linear = network.layers.compactMap { $0 as? Linear }[0]
        linear.bias.value.storage[0] += 3  // as an optimiser step would
        let after = plan.run(input)
        XCTAssertGreaterThan(after.maxAbsoluteDifference(before), 0.01)
        XCTAssertLessThanOrEqual(after.maxAbsoluteDifference(network.forward(input, training: false)), 1e-5)
    }

    func testSteadyStateCallsAllocateNothing() {
        let network = makeNetwork()
        let plan = InferencePlan(network, inputItemShape: [3, 10, 10], maximumBatch: 4)
        var generator = RandomGenerator(seed: 34)
        let input = Tensor(normal: [6, 3, 10, 10], standardDeviation: 1, generator: &generator)
        var output = [Float](repeating: 0, count: 6 * 5)
        for _ in 0..<3 { plan.run(input.storage, count: 6, into: &output) }  // warm-up

        // The counter must see the allocating path, or a zero below would prove nothing.
        XCTAssertGreaterThan(countingMallocCalls { _ = network.forward(input, training: false) }, 10)
        let allocations = countingMallocCalls {
            for call in 0..<200 { plan.run(input.storage, count: [1, 4, 6][call % 3], into: &output) }
        }
        XCTAssertEqual(allocations, 0, "malloc calls in 200 steady-state calls")
    }
}

// MARK: - Counting allocations

/// malloc calls, on every thread, while `body` runs (Tests/CMallocCounter).
func countingMallocCalls(_ body: () -> Void) -> Int {
    malloc_counter_classify_callers(1)
    defer { malloc_counter_classify_callers(0) }
    let before = malloc_call_count()
    body()
    return malloc_call_count() - before
}
