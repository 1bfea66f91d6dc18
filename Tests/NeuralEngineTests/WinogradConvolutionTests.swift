import CMallocCounter
import NeuralEngine
import XCTest

/// Winograd F(2x2, 3x3) (inference only) against the im2col convolution of `forward(training: false)`.
final class WinogradConvolutionTests: XCTestCase {
    /// Largest |winograd - direct| over the largest |direct|, for a random convolution and input.
    private func relativeDifference(size: (height: Int, width: Int), inChannels: Int, outChannels: Int, batch: Int,
                                    padding: Int, bias: Bool, generator: inout RandomGenerator) -> Float {
        let conv = Conv2d(inChannels: inChannels, outChannels: outChannels, kernelSize: 3, padding: .uniform(padding),
                          bias: bias, generator: &generator)
        if let parameter = conv.bias {
            parameter.value = Tensor(normal: [outChannels], standardDeviation: 1, generator: &generator)
        }
        let input = Tensor(normal: [batch, inChannels, size.height, size.width], standardDeviation: 1,
                           generator: &generator)
        let direct = conv.forward(input, training: false)
        let winograd = conv.winogradForward(input)
        XCTAssertEqual(winograd.shape, direct.shape)
        let scale = direct.storage.reduce(Float(0)) { max($0, abs($1)) }
        return winograd.maxAbsoluteDifference(direct) / max(scale, 1e-6)
    }

    /// Every size from 1x1 to 13x13 (odd sizes leave partial tiles at the right and bottom), channels 1..40,
    /// batches 1..5, with and without bias, padding 1 (and 0 where the output is not empty).
    func testMatchesIm2colConvolution() {
        var generator = RandomGenerator(seed: 71)
        var worst: Float = 0
        for height in 1...13 {
            for width in 1...13 {
                let inChannels = [1, 2, 3, 7, 16, 40][(height + width) % 6]
                let outChannels = [1, 5, 8, 13, 32, 40][(height * width) % 6]
                let batch = 1 + (height + 2 * width) % 5
                let paddings = height >= 3 && width >= 3 ? [1, 0] : [1]
                for padding in paddings {
                    let difference = relativeDifference(size: (height, width), inChannels: inChannels,
                                                        outChannels: outChannels, batch: batch, padding: padding,
                                                        bias: (height + width + padding) % 2 == 0,
                                                        generator: &generator)
                    worst = max(worst, difference)
                    // Float32 Winograd sums products of transformed values up to 4x (input) and 9/4x (weights) the
                    // originals, so its rounding error is a small constant times im2col's (about 1e-7 per product,
                    // grown by sqrt(9 * in) at most 40 channels): 1e-4 relative leaves two orders of magnitude.
                    XCTAssertLessThanOrEqual(difference, 1e-4,
                                             "\(height)x\(width), in \(inChannels), out \(outChannels), batch \(batch), pad \(padding)")
                }
            }
        }
        XCTAssertGreaterThan(worst, 0)  // the two paths really differ: the Winograd one ran
    }

    /// Eight or more small images per chunk take the image-interleaved transforms (WinogradInterleaved.swift):
    /// counts that are and are not multiples of eight, odd and even sizes, both paddings, MTCNN's R-Net and O-Net
    /// shapes; 23x23 makes chunks of 9 images and a last one of 7 (the row-wise path), in one call.
    func testMatchesIm2colOnBatchesOfSmallImages() {
        var generator = RandomGenerator(seed: 74)
        let cases = [(side: 11, inChannels: 28, outChannels: 48, batch: 16, padding: 0),  // R-Net conv2
                     (side: 23, inChannels: 32, outChannels: 64, batch: 16, padding: 0),  // O-Net conv2
                     (side: 10, inChannels: 64, outChannels: 64, batch: 16, padding: 0),  // O-Net conv3
                     (side: 7, inChannels: 5, outChannels: 3, batch: 9, padding: 1),
                     (side: 6, inChannels: 4, outChannels: 9, batch: 13, padding: 1),
                     (side: 9, inChannels: 16, outChannels: 8, batch: 8, padding: 1),
                     (side: 12, inChannels: 8, outChannels: 16, batch: 23, padding: 0)]
        for shape in cases {
            let difference = relativeDifference(size: (shape.side, shape.side), inChannels: shape.inChannels,
                                                outChannels: shape.outChannels, batch: shape.batch,
                                                padding: shape.padding, bias: true, generator: &generator)
            XCTAssertLessThanOrEqual(difference, 1e-4, "\(shape)")
            XCTAssertGreaterThan(difference, 0, "\(shape): the Winograd path ran")
        }
    }

    /// The vgg stage shapes, the sizes the classifier's plan runs through Winograd.
    func testMatchesIm2colOnClassifierShapes() {
        var generator = RandomGenerator(seed: 72)
        for (side, inChannels, outChannels) in [(48, 32, 32), (24, 64, 64), (12, 64, 128), (6, 256, 256)] {
            let difference = relativeDifference(size: (side, side), inChannels: inChannels, outChannels: outChannels,
                                                batch: 2, padding: 1, bias: true, generator: &generator)
            // As above; 256 channels add a factor sqrt(256 / 40) to a bound that is still 100x away.
            XCTAssertLessThanOrEqual(difference, 1e-4, "\(side)x\(side), \(inChannels) -> \(outChannels)")
        }
    }

    /// Large images run in bands of tile rows (P-Net's pyramid levels): odd sizes leave a partial last band and
    /// partial tiles, on one worker and on two (bands shared out), one image and two.
    func testMatchesIm2colInBandsOfTileRows() {
        var generator = RandomGenerator(seed: 73)
        let savedWorkers = Parallelism.workers
        defer { Parallelism.workers = savedWorkers }
        for workers in [1, 2] {
            Parallelism.workers = workers
            for (height, width, inChannels, outChannels, batch) in [(42, 71, 16, 32, 1), (83, 130, 10, 16, 2),
                                                                    (61, 48, 32, 32, 1)] {
                let difference = relativeDifference(size: (height, width), inChannels: inChannels,
                                                    outChannels: outChannels, batch: batch, padding: 1, bias: true,
                                                    generator: &generator)
                XCTAssertLessThanOrEqual(difference, 1e-4, "\(height)x\(width), \(inChannels) -> \(outChannels), "
                                         + "batch \(batch), \(workers) workers")
            }
        }
    }

    /// The plan runs the convolution through Winograd and follows a weight update (the transformed weights are
    /// rebuilt from the parameter's version).
    func testPlanFollowsWeightUpdates() {
        var generator = RandomGenerator(seed: 73)
        let conv = Conv2d(inChannels: 16, outChannels: 16, kernelSize: 3, padding: .uniform(1), generator: &generator)
        let network = Sequential([conv, ReLU()])
        let plan = InferencePlan(network, inputItemShape: [16, 24, 24], maximumBatch: 2)
        let input = Tensor(normal: [2, 16, 24, 24], standardDeviation: 1, generator: &generator)
        let before = plan.run(input)
        // Winograd rounds differently from im2col: 1e-4 (see testMatchesIm2colConvolution) on values of order 1.
        XCTAssertLessThanOrEqual(before.maxAbsoluteDifference(network.forward(input, training: false)), 1e-4)
        for index in 0..<conv.weight.value.count { conv.weight.value.storage[index] *= -0.5 }  // an optimiser step
        let after = plan.run(input)
        XCTAssertGreaterThan(after.maxAbsoluteDifference(before), 0.01)
        XCTAssertLessThanOrEqual(after.maxAbsoluteDifference(network.forward(input, training: false)), 1e-4)
    }

    /// A plan of Winograd convolutions alone (no other layer kinds) allocates nothing in steady state.
    func testSteadyStateWinogradAllocatesNothing() {
        var generator = RandomGenerator(seed: 74)
        let network = Sequential([
            Conv2d(inChannels: 8, outChannels: 16, kernelSize: 3, padding: .uniform(1), generator: &generator),
            Conv2d(inChannels: 16, outChannels: 16, kernelSize: 3, padding: .uniform(1), generator: &generator),
        ])
        let plan = InferencePlan(network, inputItemShape: [8, 13, 13], maximumBatch: 3)
        let input = Tensor(normal: [3, 8, 13, 13], standardDeviation: 1, generator: &generator)
        var output = [Float](repeating: 0, count: 3 * 16 * 13 * 13)
        for _ in 0..<3 { plan.run(input.storage, count: 3, into: &output) }  // warm-up
        let allocations = countingMallocCalls {
            for call in 0..<100 { plan.run(input.storage, count: 1 + call % 3, into: &output) }
        }
        XCTAssertEqual(allocations, 0, "malloc calls in 100 steady-state calls")
    }
}
