import NeuralEngine
import XCTest

/// Every layer's backward against central finite differences (see GradientCheck for the tolerance).
final class LayerGradientTests: XCTestCase {
    let check = GradientCheck()

    func testConv2dPlain() {
        var generator = RandomGenerator(seed: 2)
        check.verify(Conv2d(inChannels: 3, outChannels: 4, kernelSize: 3, padding: .uniform(1), generator: &generator),
                     inputShape: [2, 3, 6, 5])
    }

    func testConv2dSplitIntoChunksAcrossWorkers() {
        // 3 images of 64x64 = 4096 output pixels each: one image per chunk, gradients summed over workers.
        var generator = RandomGenerator(seed: 14)
        check.verify(Conv2d(inChannels: 2, outChannels: 3, kernelSize: 3, padding: .uniform(1), generator: &generator),
                     inputShape: [3, 2, 64, 64])
    }

    func testConv2dStridedAsymmetricPadding() {
        var generator = RandomGenerator(seed: 3)
        let padding = Padding(top: 0, left: 0, bottom: 1, right: 1)  // TFLite SAME padding for stride 2
        check.verify(Conv2d(inChannels: 2, outChannels: 3, kernelSize: 3, stride: 2, padding: padding, generator: &generator),
                     inputShape: [2, 2, 7, 6])
    }

    func testConv2dGroupedAndDepthwise() {
        var generator = RandomGenerator(seed: 4)
        check.verify(Conv2d(inChannels: 4, outChannels: 6, kernelSize: 3, padding: .uniform(1), groups: 2, generator: &generator),
                     inputShape: [2, 4, 5, 5])
        check.verify(Conv2d(inChannels: 3, outChannels: 3, kernelSize: 5, stride: 2, padding: .uniform(2), groups: 3,
                            generator: &generator),
                     inputShape: [1, 3, 8, 8])
    }

    func testConv2dPointwiseWithoutBias() {
        var generator = RandomGenerator(seed: 5)
        check.verify(Conv2d(inChannels: 5, outChannels: 3, kernelSize: 1, bias: false, generator: &generator),
                     inputShape: [3, 5, 4, 4])
    }

    func testBatchNorm2dAnd1d() {
        let norm2d = BatchNorm(channels: 3)
        var generator = RandomGenerator(seed: 6)
        norm2d.scale.value = Tensor(normal: [3], standardDeviation: 1, generator: &generator)
        norm2d.shift.value = Tensor(normal: [3], standardDeviation: 1, generator: &generator)
        check.verify(norm2d, inputShape: [4, 3, 3, 3])
        check.verify(BatchNorm(channels: 5), inputShape: [6, 5])
    }

    func testActivationsAndShapes() {
        check.verify(ReLU(), inputShape: [2, 3, 4, 4])
        let prelu = PReLU(channels: 3, initialSlope: 0.2)
        check.verify(prelu, inputShape: [2, 3, 4, 4])
        check.verify(Flatten(), inputShape: [2, 3, 2, 2])
        check.verify(Softmax(), inputShape: [3, 7])
    }

    func testPooling() {
        check.verify(MaxPool2d(kernelSize: 2), inputShape: [2, 3, 6, 6], separated: true)
        check.verify(MaxPool2d(kernelSize: 3, stride: 2, padding: 1), inputShape: [1, 2, 7, 7], separated: true)
        check.verify(AvgPool2d(kernelSize: 2), inputShape: [2, 2, 4, 6])
        check.verify(AvgPool2d(kernelSize: 3, stride: 2, padding: 1), inputShape: [1, 2, 5, 5])
        check.verify(GlobalAveragePool(), inputShape: [2, 4, 3, 5])
    }

    /// PyTorch's ceil_mode=True (MTCNN's pools): partial windows at the bottom and right edges.
    func testMaxPoolCeilMode() {
        check.verify(MaxPool2d(kernelSize: 2, ceilMode: true), inputShape: [2, 3, 5, 7], separated: true)
        check.verify(MaxPool2d(kernelSize: 3, stride: 2, ceilMode: true), inputShape: [1, 2, 6, 8], separated: true)
        // Values y * 5 + x: each window's maximum is its bottom-right element inside the image.
        let ramp = Tensor(shape: [1, 1, 5, 5], storage: (0..<25).map(Float.init))
        let pooled = MaxPool2d(kernelSize: 2, ceilMode: true).forward(ramp, training: false)
        XCTAssertEqual(pooled.shape, [1, 1, 3, 3])
        XCTAssertEqual(pooled.storage, [6, 8, 9, 16, 18, 19, 21, 23, 24])
        // Sizes as torch.nn.MaxPool2d gives them (3x3 stride 2 on 6: 3 with ceil, 2 without); a window that
        // would start in the right padding is dropped (2x2 stride 2 padding 1 on 5: 3, not 4).
        XCTAssertEqual(MaxPool2d(kernelSize: 3, stride: 2, ceilMode: true).forward(Tensor(zeros: [1, 1, 6, 6]), training: false).shape,
                       [1, 1, 3, 3])
        XCTAssertEqual(MaxPool2d(kernelSize: 3, stride: 2).forward(Tensor(zeros: [1, 1, 6, 6]), training: false).shape,
                       [1, 1, 2, 2])
        XCTAssertEqual(MaxPool2d(kernelSize: 2, stride: 2, padding: 1, ceilMode: true)
                        .forward(Tensor(zeros: [1, 1, 5, 5]), training: false).shape, [1, 1, 3, 3])
        // Inference takes branch-free loops (no winners); training the general loop: the same maxima.
        var generator = RandomGenerator(seed: 11)
        for shape in [[2, 3, 9, 11], [1, 2, 8, 10], [1, 1, 3, 4], [1, 1, 2, 2]] {
            let input = Tensor(normal: shape, standardDeviation: 1, generator: &generator)
            for pool in [MaxPool2d(kernelSize: 3, stride: 2, ceilMode: true), MaxPool2d(kernelSize: 2, ceilMode: true),
                         MaxPool2d(kernelSize: 3, stride: 2), MaxPool2d(kernelSize: 3, stride: 2, padding: 1),
                         MaxPool2d(kernelSize: 3, stride: 1), MaxPool2d(kernelSize: 2)] {
                XCTAssertEqual(pool.forward(input, training: false), pool.forward(input, training: true), "\(shape)")
            }
        }
    }

    func testLinear() {
        var generator = RandomGenerator(seed: 7)
        check.verify(Linear(inFeatures: 6, outFeatures: 4, generator: &generator), inputShape: [5, 6])
    }

    func testResidualAndSequential() {
        var generator = RandomGenerator(seed: 8)
        let block = Residual(body: Sequential([
            Conv2d(inChannels: 3, outChannels: 3, kernelSize: 3, padding: .uniform(1), generator: &generator),
            BatchNorm(channels: 3),
            ReLU(),
        ]))
        check.verify(block, inputShape: [2, 3, 4, 4])
        let projected = Residual(
            body: Conv2d(inChannels: 2, outChannels: 4, kernelSize: 3, stride: 2, padding: .uniform(1), generator: &generator),
            shortcut: Conv2d(inChannels: 2, outChannels: 4, kernelSize: 1, stride: 2, generator: &generator))
        check.verify(projected, inputShape: [2, 2, 6, 6])
    }

    func testDropoutMasksForwardAndBackwardAlike() {
        let dropout = Dropout(probability: 0.4, seed: 9)
        let ones = Tensor(repeating: 1, shape: [100, 100])
        let output = dropout.forward(ones, training: true)
        let dropped = output.storage.filter { $0 == 0 }.count
        // 10,000 Bernoulli(0.4) draws: mean 4000, standard deviation 49; allow 5 sigma.
        XCTAssertEqual(Double(dropped), 4000, accuracy: 245)
        for value in output.storage where value != 0 { XCTAssertEqual(value, 1 / 0.6, accuracy: 1e-6) }
        let dInput = dropout.backward(ones)
        XCTAssertEqual(dInput, output, "backward scales exactly where forward kept")
        XCTAssertEqual(dropout.forward(ones, training: false), ones, "identity in evaluation")
    }
}
