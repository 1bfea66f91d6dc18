import NeuralEngine
import XCTest

/// The im2col + sgemm convolution against a direct loop in Double.
final class ConvolutionReferenceTests: XCTestCase {
    struct Case { let channels, outChannels, kernel, stride: Int; let padding: Padding; let groups, height, width: Int }

    func naiveConvolution(_ input: Tensor, weight: Tensor, bias: Tensor?, stride: Int, padding: Padding, groups: Int) -> [Double] {
        let (batch, channels, height, width) = (input.shape[0], input.shape[1], input.shape[2], input.shape[3])
        let (outChannels, perGroup, kh, kw) = (weight.shape[0], weight.shape[1], weight.shape[2], weight.shape[3])
        let outHeight = (height + padding.top + padding.bottom - kh) / stride + 1
        let outWidth = (width + padding.left + padding.right - kw) / stride + 1
        let outPerGroup = outChannels / groups
        var result = [Double](repeating: 0, count: batch * outChannels * outHeight * outWidth)
        for n in 0..<batch {
            for oc in 0..<outChannels {
                let group = oc / outPerGroup
                for oy in 0..<outHeight {
                    for ox in 0..<outWidth {
                        var sum = Double(bias?.storage[oc] ?? 0)
                        for ic in 0..<perGroup {
                            let channel = group * perGroup + ic
                            for ky in 0..<kh {
                                for kx in 0..<kw {
                                    let iy = oy * stride - padding.top + ky, ix = ox * stride - padding.left + kx
                                    guard iy >= 0, iy < height, ix >= 0, ix < width else { continue }
                                    sum += Double(input.storage[((n * channels + channel) * height + iy) * width + ix])
                                        * Double(weight.storage[((oc * perGroup + ic) * kh + ky) * kw + kx])
                                }
                            }
                        }
                        result[((n * outChannels + oc) * outHeight + oy) * outWidth + ox] = sum
                    }
                }
            }
        }
        _ = channels
        return result
    }

    func testMatchesDirectLoop() {
        let cases = [
            Case(channels: 1, outChannels: 8, kernel: 3, stride: 1, padding: .uniform(1), groups: 1, height: 12, width: 9),
            Case(channels: 6, outChannels: 4, kernel: 3, stride: 2, padding: .uniform(1), groups: 1, height: 9, width: 10),
            Case(channels: 4, outChannels: 4, kernel: 3, stride: 2, padding: Padding(top: 0, left: 0, bottom: 1, right: 1),
                 groups: 4, height: 8, width: 8),
            Case(channels: 8, outChannels: 8, kernel: 5, stride: 1, padding: .uniform(2), groups: 8, height: 7, width: 6),
            Case(channels: 6, outChannels: 9, kernel: 1, stride: 1, padding: .uniform(0), groups: 3, height: 5, width: 5),
            Case(channels: 3, outChannels: 5, kernel: 2, stride: 2, padding: .uniform(0), groups: 1, height: 6, width: 7),
            // 64x70 output pixels per image exceed one chunk: the batch is split over chunks and workers.
            Case(channels: 2, outChannels: 3, kernel: 3, stride: 1, padding: .uniform(1), groups: 1, height: 64, width: 70),
        ]
        var generator = RandomGenerator(seed: 10)
        for (number, c) in cases.enumerated() {
            let conv = Conv2d(inChannels: c.channels, outChannels: c.outChannels, kernelSize: c.kernel, stride: c.stride,
                              padding: c.padding, groups: c.groups, generator: &generator)
            conv.bias!.value = Tensor(normal: [c.outChannels], standardDeviation: 1, generator: &generator)
            let input = Tensor(normal: [2, c.channels, c.height, c.width], standardDeviation: 1, generator: &generator)
            let output = conv.forward(input, training: false)
            let expected = naiveConvolution(input, weight: conv.weight.value, bias: conv.bias!.value,
                                            stride: c.stride, padding: c.padding, groups: c.groups)
            XCTAssertEqual(output.count, expected.count, "case \(number) output size")
            // Float32 sums of at most 200 unit-variance products: 1e-4 absolute is ample.
            for index in expected.indices {
                XCTAssertEqual(Double(output.storage[index]), expected[index], accuracy: 1e-4, "case \(number) element \(index)")
            }
        }
    }
}
