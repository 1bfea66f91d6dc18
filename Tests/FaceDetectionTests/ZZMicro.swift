import NeuralEngine
import Foundation
import XCTest

final class ZZMicro: XCTestCase {
    func testDepthwiseSpeed() {
        var generator = RandomGenerator(seed: 1)
        let input = Tensor(normal: [1, 32, 96, 96], standardDeviation: 1, generator: &generator)
        let weight = Tensor(normal: [32, 1, 3, 3], standardDeviation: 1, generator: &generator)
        for (stride, padding) in [(1, Padding.uniform(1)), (2, Padding(top: 0, left: 0, bottom: 1, right: 1))] {
            let layer = DepthwiseConv2d(weight: weight, bias: nil, stride: stride, padding: padding)
            var output = Tensor(zeros: [0])
            layer.forward(input, into: &output)
            var times: [Double] = []
            for _ in 0..<200 {
                let t0 = DispatchTime.now().uptimeNanoseconds
                layer.forward(input, into: &output)
                times.append(Double(DispatchTime.now().uptimeNanoseconds - t0) / 1e6)
            }
            times.sort()
            print(String(format: "MICRO depthwise stride %d: median %.3f ms min %.3f", stride, times[100], times[0]))
        }
    }
}
