import NeuralEngine
import XCTest

/// The engine layers BlazeFace added (DepthwiseConv2d, ZeroPad2d, ResizeBilinear): forward against naive
/// references, backward against central finite differences.
final class EngineLayerTests: XCTestCase {
    /// Against Conv2d with groups == inChannels (im2col + sgemm, itself checked against a naive loop), with
    /// asymmetric padding, strides 1 and 2, multipliers 1 and 2, a non-square kernel. Tolerance 1e-5: both
    /// sum the same 15 products in float32, in different orders.
    func testDepthwiseMatchesGroupedConvolution() {
        var generator = RandomGenerator(seed: 7)
        for (stride, multiplier) in [(1, 1), (2, 1), (1, 2), (2, 2)] {
            let padding = Padding(top: 0, left: 1, bottom: 2, right: 1)
            let weight = Tensor(normal: [4 * multiplier, 1, 3, 5], standardDeviation: 1, generator: &generator)
            let bias = Tensor(normal: [4 * multiplier], standardDeviation: 1, generator: &generator)
            let input = Tensor(normal: [2, 4, 9, 8], standardDeviation: 1, generator: &generator)
            let depthwise = DepthwiseConv2d(weight: weight, bias: bias, stride: stride, padding: padding, multiplier: multiplier)
            let grouped = Conv2d(weight: weight, bias: bias, stride: stride, padding: padding, groups: 4)
            let expected = grouped.forward(input, training: false)
            let ours = depthwise.forward(input, training: false)
            XCTAssertEqual(ours.shape, expected.shape)
            XCTAssertLessThan(ours.maxAbsoluteDifference(expected), 1e-5, "stride \(stride) multiplier \(multiplier)")
            // The in-place form reuses a buffer of the right shape and gives the same values.
            var reused = Tensor(repeating: 42, shape: expected.shape)
            depthwise.forward(input, into: &reused)
            XCTAssertEqual(reused, ours)
        }
    }

    /// The vectorised rows: 3x3 (its own kernel) and 5x5 kernels on rows wider than a vector, with partial
    /// last vectors, at strides 1 and 2, against grouped Conv2d; tolerance 1e-5 as above.
    func testDepthwiseWideRowsMatchGroupedConvolution() {
        var generator = RandomGenerator(seed: 11)
        for (kernel, stride, width) in [(3, 1, 37), (3, 2, 37), (3, 1, 16), (5, 2, 29), (5, 1, 21)] {
            let padding = stride == 1 ? Padding.uniform(kernel / 2) : Padding(top: 0, left: 0, bottom: kernel / 2 + 1, right: kernel / 2)
            let weight = Tensor(normal: [3, 1, kernel, kernel], standardDeviation: 1, generator: &generator)
            let bias = Tensor(normal: [3], standardDeviation: 1, generator: &generator)
            let input = Tensor(normal: [1, 3, 11, width], standardDeviation: 1, generator: &generator)
            let expected = Conv2d(weight: weight, bias: bias, stride: stride, padding: padding, groups: 3)
                .forward(input, training: false)
            let ours = DepthwiseConv2d(weight: weight, bias: bias, stride: stride, padding: padding)
                .forward(input, training: false)
            XCTAssertEqual(ours.shape, expected.shape)
            XCTAssertLessThan(ours.maxAbsoluteDifference(expected), 1e-5, "\(kernel)x\(kernel) stride \(stride) width \(width)")
        }
    }

    /// 3x3, stride 1, padding 1 reads the input planes directly (no padded copy): widths from the smallest it
    /// takes (a vector plus two edge columns) up, heights down to one row (zero rows above and below), channel
    /// multipliers 1 and 2, two images; against grouped Conv2d, tolerance 1e-5 as above.
    func testDepthwiseSamePaddingMatchesGroupedConvolution() {
        var generator = RandomGenerator(seed: 13)
        for (height, width, multiplier) in [(1, 10, 1), (2, 11, 2), (5, 17, 1), (7, 96, 2), (3, 9, 1)] {
            let weight = Tensor(normal: [3 * multiplier, 1, 3, 3], standardDeviation: 1, generator: &generator)
            let bias = Tensor(normal: [3 * multiplier], standardDeviation: 1, generator: &generator)
            let input = Tensor(normal: [2, 3, height, width], standardDeviation: 1, generator: &generator)
            let expected = Conv2d(weight: weight, bias: bias, stride: 1, padding: .uniform(1), groups: 3)
                .forward(input, training: false)
            let ours = DepthwiseConv2d(weight: weight, bias: bias, stride: 1, padding: .uniform(1), multiplier: multiplier)
                .forward(input, training: false)
            XCTAssertEqual(ours.shape, expected.shape)
            XCTAssertLessThan(ours.maxAbsoluteDifference(expected), 1e-5, "\(height)x\(width) multiplier \(multiplier)")
        }
    }

    /// BandedConv2d's inference paths against Conv2d's whole-image im2col: the direct loops (5x5 on 3 channels,
    /// strides 1 and 2, TensorFlow's uneven SAME padding, widths that are not a multiple of 16, channel counts
    /// that are not a multiple of 4) and the banded sgemm (3x3 on 3 channels, and 5x5 on 4: depth 100).
    func testBandedConvolutionMatchesConv2d() {
        var generator = RandomGenerator(seed: 17)
        let cases: [(inChannels: Int, kernel: Int, stride: Int, padding: Padding, outChannels: Int, height: Int, width: Int)] = [
            (3, 5, 2, Padding(top: 1, left: 1, bottom: 2, right: 2), 24, 41, 64),
            (3, 5, 1, .uniform(2), 6, 9, 37),
            (3, 5, 2, Padding(top: 0, left: 0, bottom: 1, right: 1), 5, 12, 33),
            (3, 3, 2, Padding(top: 0, left: 0, bottom: 1, right: 1), 32, 20, 40),
            (4, 5, 2, .uniform(2), 8, 15, 36),
        ]
        for shape in cases {
            let weight = Tensor(normal: [shape.outChannels, shape.inChannels, shape.kernel, shape.kernel],
                                standardDeviation: 1, generator: &generator)
            let bias = Tensor(normal: [shape.outChannels], standardDeviation: 1, generator: &generator)
            let input = Tensor(normal: [2, shape.inChannels, shape.height, shape.width], standardDeviation: 1,
                               generator: &generator)
            let expected = Conv2d(weight: weight, bias: bias, stride: shape.stride, padding: shape.padding, groups: 1)
                .forward(input, training: false)
            let banded = BandedConv2d(weight: weight, bias: bias, stride: shape.stride, padding: shape.padding)
            var output = Tensor(zeros: [1])
            banded.forward(input, into: &output)
            XCTAssertEqual(output.shape, expected.shape, "\(shape)")
            XCTAssertLessThan(output.maxAbsoluteDifference(expected), 1e-4, "\(shape)")
            // Again into the same tensor: nothing may depend on what it held.
            banded.forward(input, into: &output)
            XCTAssertLessThan(output.maxAbsoluteDifference(expected), 1e-4, "\(shape), second call")
        }
    }

    func testZeroPadPlacesInputAndZeros() {
        let input = Tensor(shape: [1, 2, 2, 3], storage: (1...12).map(Float.init))
        let pad = ZeroPad2d(padding: Padding(top: 1, left: 0, bottom: 0, right: 2), channelsBefore: 0, channelsAfter: 1)
        let output = pad.forward(input, training: false)
        XCTAssertEqual(output.shape, [1, 3, 3, 5])
        XCTAssertEqual(Array(output.storage[0..<15]), [0, 0, 0, 0, 0, 1, 2, 3, 0, 0, 4, 5, 6, 0, 0])
        XCTAssertEqual(Array(output.storage[15..<30]), [0, 0, 0, 0, 0, 7, 8, 9, 0, 0, 10, 11, 12, 0, 0])
        XCTAssertEqual(Array(output.storage[30..<45]), [Float](repeating: 0, count: 15))
    }

    /// Against the formula written out per output pixel (TensorFlow's reference kernel), for each corner and
    /// half-pixel setting.
    func testResizeBilinearMatchesTensorFlowFormula() {
        var generator = RandomGenerator(seed: 3)
        let input = Tensor(normal: [1, 2, 3, 4], standardDeviation: 1, generator: &generator)
        for (align, half) in [(false, false), (true, false), (false, true)] {
            let layer = ResizeBilinear(height: 7, width: 5, alignCorners: align, halfPixelCenters: half)
            let output = layer.forward(input, training: false)
            func source(_ index: Int, _ inSize: Int, _ outSize: Int) -> (Int, Int, Float) {
                let scale = align ? Float(inSize - 1) / Float(outSize - 1) : Float(inSize) / Float(outSize)
                let s = half ? (Float(index) + 0.5) * scale - 0.5 : Float(index) * scale
                let low = max(Int(s.rounded(.down)), 0)
                return (low, min(Int(s.rounded(.up)), inSize - 1), s - Float(low))
            }
            for c in 0..<2 {
                for y in 0..<7 {
                    for x in 0..<5 {
                        let (y0, y1, dy) = source(y, 3, 7), (x0, x1, dx) = source(x, 4, 5)
                        func at(_ yy: Int, _ xx: Int) -> Float { input.storage[(c * 3 + yy) * 4 + xx] }
                        let expected = at(y0, x0) * (1 - dy) * (1 - dx) + at(y1, x0) * dy * (1 - dx)
                            + at(y0, x1) * (1 - dy) * dx + at(y1, x1) * dy * dx
                        XCTAssertEqual(output.storage[(c * 7 + y) * 5 + x], expected, accuracy: 1e-6)
                    }
                }
            }
        }
        // Upsampling by two without half-pixel centres copies every other pixel exactly.
        let doubled = ResizeBilinear(height: 6, width: 8).forward(input, training: false)
        XCTAssertEqual(doubled.storage[0], input.storage[0])
        XCTAssertEqual(doubled.storage[2 * 8 + 4], input.storage[1 * 4 + 2])
    }

    func testGradients() {
        var generator = RandomGenerator(seed: 11)
        let weight = Tensor(normal: [6, 1, 3, 3], standardDeviation: 1, generator: &generator)
        let bias = Tensor(normal: [6], standardDeviation: 1, generator: &generator)
        verifyGradients(DepthwiseConv2d(weight: weight, bias: bias, stride: 2,
                                        padding: Padding(top: 0, left: 1, bottom: 1, right: 0), multiplier: 2),
                        inputShape: [2, 3, 7, 6])
        verifyGradients(DepthwiseConv2d(weight: weight, bias: nil, stride: 1, padding: .uniform(1)), inputShape: [1, 6, 5, 5])
        verifyGradients(ZeroPad2d(padding: Padding(top: 2, left: 1, bottom: 0, right: 1), channelsBefore: 1, channelsAfter: 2),
                        inputShape: [2, 2, 3, 4])
        verifyGradients(ResizeBilinear(height: 7, width: 3, halfPixelCenters: true), inputShape: [1, 2, 4, 5])
        verifyGradients(ResizeBilinear(height: 5, width: 9, alignCorners: true), inputShape: [1, 1, 3, 4])
    }

    /// Loss = sum(forward(x) * R) for a fixed random R, accumulated in Double; the layer runs in Float, so
    /// the step is 1e-2 and |analytic - numeric| <= 2e-2 * max(1, |numeric|) (the engine's own check).
    func verifyGradients(_ layer: Layer, inputShape: [Int], file: StaticString = #filePath, line: UInt = #line) {
        var generator = RandomGenerator(seed: 5)
        var input = Tensor(normal: inputShape, standardDeviation: 1, generator: &generator)
        let upstream = Tensor(normal: layer.forward(input, training: true).shape, standardDeviation: 1, generator: &generator)
        func loss() -> Double {
            let output = layer.forward(input, training: true)
            return zip(output.storage, upstream.storage).reduce(0) { $0 + Double($1.0) * Double($1.1) }
        }
        layer.zeroGradients()
        _ = layer.forward(input, training: true)
        let dInput = layer.backward(upstream)
        let step: Float = 1e-2
        func numeric(_ nudge: (Float) -> Void) -> Float {
            nudge(step)
            let plus = loss()
            nudge(-2 * step)
            let minus = loss()
            nudge(step)
            return Float((plus - minus) / Double(2 * step))
        }
        for index in 0..<input.count {
            let expected = numeric { input.storage[index] += $0 }
            XCTAssertEqual(dInput.storage[index], expected, accuracy: 2e-2 * max(1, abs(expected)),
                           "\(type(of: layer)) dInput[\(index)]", file: file, line: line)
        }
        for (name, parameter) in layer.namedParameters {
            for index in 0..<parameter.value.count {
                let expected = numeric { parameter.value.storage[index] += $0 }
                XCTAssertEqual(parameter.gradient.storage[index], expected, accuracy: 2e-2 * max(1, abs(expected)),
                               "\(type(of: layer)) d\(name)[\(index)]", file: file, line: line)
            }
        }
    }
}

extension EngineLayerTests {
    /// Against Conv2d with a 1x1 kernel (im2col + sgemm); the same dot products, so 1e-5.
    func testPointwiseMatchesConvolution() {
        var generator = RandomGenerator(seed: 13)
        let weight = Tensor(normal: [5, 3, 1, 1], standardDeviation: 1, generator: &generator)
        let bias = Tensor(normal: [5], standardDeviation: 1, generator: &generator)
        let input = Tensor(normal: [2, 3, 4, 7], standardDeviation: 1, generator: &generator)
        let expected = Conv2d(weight: weight, bias: bias, stride: 1, padding: .uniform(0), groups: 1).forward(input, training: false)
        let ours = PointwiseConv2d(weight: weight, bias: bias).forward(input, training: false)
        XCTAssertEqual(ours.shape, expected.shape)
        XCTAssertLessThan(ours.maxAbsoluteDifference(expected), 1e-5)
        verifyGradients(PointwiseConv2d(weight: weight, bias: bias), inputShape: [2, 3, 3, 2])
        verifyGradients(PointwiseConv2d(weight: weight, bias: nil), inputShape: [1, 3, 2, 2])
        // The product alone, in two bands of pixels (the second accumulating onto a start of 1), plus the bias
        // by hand: the forward's values, 1e-5 as above.
        let layer = PointwiseConv2d(weight: weight, bias: nil)
        var banded = Tensor(repeating: 1, shape: expected.shape)
        layer.product(input, into: &banded, pixels: 0..<10)
        layer.product(input, into: &banded, pixels: 10..<28, accumulating: true)
        for n in 0..<2 {
            for o in 0..<5 {
                for p in 0..<28 {
                    let index = (n * 5 + o) * 28 + p
                    XCTAssertEqual(banded.storage[index] + bias.storage[o] - (p < 10 ? 0 : 1), expected.storage[index],
                                   accuracy: 1e-5)
                }
            }
        }
    }
}

extension EngineLayerTests {
    /// The direct product of thin layers (no sgemm) against Conv2d's 1x1 forward (im2col + sgemm): pixel counts
    /// that are not a multiple of 16, output channels that are not a multiple of 4, a 32x32 plane (its rows a
    /// multiple of 4 KB apart), several pixel blocks, two images, bands with the second accumulating.
    func testDirectPointwiseProductMatchesConvolution() {
        var generator = RandomGenerator(seed: 29)
        for (inChannels, outChannels, height, width) in [(8, 32, 9, 11), (24, 24, 32, 32), (36, 42, 5, 7),
                                                         (64, 16, 3, 50), (3, 18, 12, 12)] {
            let weight = Tensor(normal: [outChannels, inChannels, 1, 1], standardDeviation: 1, generator: &generator)
            let input = Tensor(normal: [2, inChannels, height, width], standardDeviation: 1, generator: &generator)
            let expected = Conv2d(weight: weight, bias: nil, stride: 1, padding: .uniform(0), groups: 1)
                .forward(input, training: false)
            let layer = PointwiseConv2d(weight: weight, bias: nil)
            XCTAssertTrue(layer.usesDirectProduct, "\(inChannels) -> \(outChannels) takes the direct path")
            var whole = Tensor(repeating: 7, shape: expected.shape)  // every value overwritten
            layer.product(input, into: &whole)
            XCTAssertLessThan(whole.maxAbsoluteDifference(expected), 1e-4,
                              "\(inChannels) -> \(outChannels), \(height)x\(width)")

            let pixels = height * width, split = pixels / 3
            var banded = Tensor(repeating: 1, shape: expected.shape)
            layer.product(input, into: &banded, pixels: 0..<split)
            layer.product(input, into: &banded, pixels: split..<pixels, accumulating: true)
            var largest: Float = 0
            for index in 0..<expected.count {
                let start: Float = index % pixels < split ? 0 : 1
                largest = max(largest, abs(banded.storage[index] - start - expected.storage[index]))
            }
            XCTAssertLessThan(largest, 1e-4, "bands, \(inChannels) -> \(outChannels), \(height)x\(width)")
        }
    }
}
