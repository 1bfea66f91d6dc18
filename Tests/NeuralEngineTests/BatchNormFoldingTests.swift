import NeuralEngine
import XCTest

final class BatchNormFoldingTests: XCTestCase {
    func testFoldedNetworkGivesTheSameEvaluationOutputs() {
        var generator = RandomGenerator(seed: 21)
        let first = BatchNorm(channels: 4), second = BatchNorm(channels: 6)
        for norm in [first, second] {
            let count = norm.channels
            norm.scale.value = Tensor(normal: [count], standardDeviation: 1, generator: &generator)
            norm.shift.value = Tensor(normal: [count], standardDeviation: 1, generator: &generator)
            norm.runningMean.value = Tensor(normal: [count], standardDeviation: 1, generator: &generator)
            norm.runningVariance.value = Tensor(uniform: [count], bound: 1, generator: &generator)
            for index in 0..<count { norm.runningVariance.value.storage[index] += 1.1 }
        }
        let network = Sequential([
            Conv2d(inChannels: 2, outChannels: 4, kernelSize: 3, padding: .uniform(1), bias: false, generator: &generator),
            first, ReLU(), MaxPool2d(kernelSize: 2),
            Residual(body: Sequential([
                Conv2d(inChannels: 4, outChannels: 6, kernelSize: 3, padding: .uniform(1), generator: &generator), second,
            ]), shortcut: Conv2d(inChannels: 4, outChannels: 6, kernelSize: 1, generator: &generator)),
            Flatten(), Linear(inFeatures: 6 * 4 * 4, outFeatures: 3, generator: &generator),
        ])
        let folded = foldingBatchNorms(network)
        XCTAssertFalse(folded.allLayers.contains { $0 is BatchNorm }, "every conv + batch norm pair folded")
        let input = Tensor(normal: [3, 2, 8, 8], standardDeviation: 1, generator: &generator)
        let expected = network.forward(input, training: false)
        // Float32 reassociation of (w x) * a + b: 1e-4 relative to outputs of order 10.
        XCTAssertLessThan(folded.forward(input, training: false).maxAbsoluteDifference(expected), 1e-3)
    }
}
