import NeuralEngine
import XCTest

/// Central finite differences against a layer's backward pass.
/// Loss = sum(forward(x) * R) for a fixed random R, accumulated in Double; the layer itself runs in Float,
/// so the step is 1e-2 and agreement is judged relative to the gradient's scale.
struct GradientCheck {
    var step: Float = 1e-2
    /// |analytic - numeric| <= tolerance * max(1, |numeric|)
    var tolerance: Float = 2e-2
    var samplesPerTensor = 40

    /// `separated` draws inputs at least 0.1 apart, so a max never changes winner within one step.
    func verify(_ layer: Layer, inputShape: [Int], seed: UInt64 = 1, separated: Bool = false,
                file: StaticString = #filePath, line: UInt = #line) {
        var generator = RandomGenerator(seed: seed)
        var input = Tensor(normal: inputShape, standardDeviation: 1, generator: &generator)
        if separated {
            var values = (0..<input.count).map { Float($0) * 0.1 - Float(input.count) * 0.05 }
            values.shuffle(using: &generator)
            input = Tensor(shape: inputShape, storage: values)
        }
        let probe = layer.forward(input, training: true)
        let upstream = Tensor(normal: probe.shape, standardDeviation: 1, generator: &generator)

        func loss(_ x: Tensor) -> Double {
            let output = layer.forward(x, training: true)
            var sum: Double = 0
            for index in 0..<output.count { sum += Double(output.storage[index]) * Double(upstream.storage[index]) }
            return sum
        }

        layer.zeroGradients()
        _ = layer.forward(input, training: true)
        let dInput = layer.backward(upstream)
        XCTAssertEqual(dInput.shape, inputShape, "dInput shape", file: file, line: line)

        for index in sampledIndices(count: input.count, generator: &generator) {
            let original = input.storage[index]
            input.storage[index] = original + step
            let plus = loss(input)
            input.storage[index] = original - step
            let minus = loss(input)
            input.storage[index] = original
            let numeric = Float((plus - minus) / Double(2 * step))
            XCTAssertLessThanOrEqual(abs(dInput.storage[index] - numeric), tolerance * max(1, abs(numeric)),
                                     "dInput[\(index)] analytic \(dInput.storage[index]) numeric \(numeric)", file: file, line: line)
        }

        for (name, parameter) in layer.namedParameters where parameter.isTrainable {
            let analytic = parameter.gradient
            for index in sampledIndices(count: parameter.value.count, generator: &generator) {
                let original = parameter.value.storage[index]
                parameter.value.storage[index] = original + step
                let plus = loss(input)
                parameter.value.storage[index] = original - step
                let minus = loss(input)
                parameter.value.storage[index] = original
                let numeric = Float((plus - minus) / Double(2 * step))
                XCTAssertLessThanOrEqual(abs(analytic.storage[index] - numeric), tolerance * max(1, abs(numeric)),
                                         "d\(name)[\(index)] analytic \(analytic.storage[index]) numeric \(numeric)",
                                         file: file, line: line)
            }
        }
    }

    private func sampledIndices(count: Int, generator: inout RandomGenerator) -> [Int] {
        if count <= samplesPerTensor { return Array(0..<count) }
        return (0..<samplesPerTensor).map { _ in Int(generator.next() % UInt64(count)) }
    }
}
