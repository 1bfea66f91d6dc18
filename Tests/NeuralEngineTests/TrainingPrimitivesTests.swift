import Foundation
import NeuralEngine
import XCTest

final class TrainingPrimitivesTests: XCTestCase {
    func testCrossEntropyMatchesHandValueAndFiniteDifferences() {
        // logits (0, ln 2, ln 4): softmax = (1, 2, 4) / 7; label 2 -> loss = -ln(4/7).
        let loss = SoftmaxCrossEntropy()
        let logits = Tensor(shape: [1, 3], storage: [0, Float(log(2.0)), Float(log(4.0))])
        let (value, gradient) = loss.lossAndGradient(logits: logits, targets: loss.targets(labels: [2], classes: 3))
        XCTAssertEqual(Double(value), -log(4.0 / 7.0), accuracy: 1e-6)
        XCTAssertEqual(gradient.storage[0], 1.0 / 7.0, accuracy: 1e-6)
        XCTAssertEqual(gradient.storage[2], 4.0 / 7.0 - 1, accuracy: 1e-6)

        var generator = RandomGenerator(seed: 11)
        let smoothed = SoftmaxCrossEntropy(labelSmoothing: 0.1, classWeights: [1, 3, 0.5, 2])
        var batch = Tensor(normal: [5, 4], standardDeviation: 2, generator: &generator)
        let targets = smoothed.targets(labels: [0, 1, 2, 3, 1], classes: 4)
        let analytic = smoothed.lossAndGradient(logits: batch, targets: targets).dLogits
        for index in 0..<batch.count {
            let original = batch.storage[index]
            batch.storage[index] = original + 1e-2
            let plus = smoothed.lossAndGradient(logits: batch, targets: targets).loss
            batch.storage[index] = original - 1e-2
            let minus = smoothed.lossAndGradient(logits: batch, targets: targets).loss
            batch.storage[index] = original
            // Float32 loss differences over a 2e-2 step: 1e-3 absolute.
            XCTAssertEqual(analytic.storage[index], (plus - minus) / 2e-2, accuracy: 1e-3)
        }
    }

    func testAdamFirstStepMovesEachWeightByTheLearningRate() {
        // After one step m_hat = g and v_hat = g^2, so each weight moves by lr * sign(g) (epsilon aside),
        // and AdamW's decoupled decay shrinks it by lr * wd * w first.
        let parameter = Parameter(Tensor(shape: [3], storage: [1, -2, 0.5]), decays: true)
        parameter.gradient = Tensor(shape: [3], storage: [0.3, -4, 1e-3])
        let optimizer = Adam(parameters: [parameter], learningRate: 0.1, weightDecay: 0.5)
        optimizer.step()
        let expected: [Float] = [1 - 0.05 - 0.1, -2 + 0.1 + 0.1, 0.5 - 0.025 - 0.1]
        for index in 0..<3 { XCTAssertEqual(parameter.value.storage[index], expected[index], accuracy: 1e-5) }
    }

    func testAdamStateRoundTripContinuesExactly() throws {
        func run(resumeAfter: Int?) throws -> [Float] {
            let parameter = Parameter(Tensor(shape: [2], storage: [1, 1]))
            var optimizer = Adam(parameters: [parameter], learningRate: 0.05)
            for step in 0..<6 {
                if step == resumeAfter {
                    let saved = optimizer.state()
                    let values = parameter.value
                    let fresh = Parameter(values)
                    optimizer = Adam(parameters: [fresh], learningRate: 0.05)
                    try optimizer.restore(saved)
                    return try continueRun(parameter: fresh, optimizer: optimizer, from: step)
                }
                parameter.gradient = Tensor(shape: [2], storage: [parameter.value.storage[0] - 3, 2 * parameter.value.storage[1]])
                optimizer.step()
            }
            return parameter.value.storage
        }
        func continueRun(parameter: Parameter, optimizer: Adam, from start: Int) throws -> [Float] {
            for _ in start..<6 {
                parameter.gradient = Tensor(shape: [2], storage: [parameter.value.storage[0] - 3, 2 * parameter.value.storage[1]])
                optimizer.step()
            }
            return parameter.value.storage
        }
        XCTAssertEqual(try run(resumeAfter: nil), try run(resumeAfter: 3))
    }

    func testSGDMomentumByHand() {
        // v1 = g = 2, w1 = 1 - 0.1*2 = 0.8; v2 = 0.9*2 + 2 = 3.8, w2 = 0.8 - 0.38 = 0.42
        let parameter = Parameter(Tensor(shape: [1], storage: [1]))
        let optimizer = SGD(parameters: [parameter], learningRate: 0.1, momentum: 0.9)
        for _ in 0..<2 {
            parameter.gradient = Tensor(shape: [1], storage: [2])
            optimizer.step()
        }
        XCTAssertEqual(parameter.value.storage[0], 0.42, accuracy: 1e-6)
    }

    func testSchedules() {
        let cosine = LearningRateSchedule.cosine(peak: 1, minimum: 0.1, warmupSteps: 10, totalSteps: 110)
        XCTAssertEqual(cosine.rate(atStep: 0), 0.1, accuracy: 1e-6)
        XCTAssertEqual(cosine.rate(atStep: 9), 1, accuracy: 1e-6)
        XCTAssertEqual(cosine.rate(atStep: 60), 0.55, accuracy: 1e-6)   // half way: mean of peak and minimum
        XCTAssertEqual(cosine.rate(atStep: 110), 0.1, accuracy: 1e-6)
        var plateau = ReduceOnPlateau(factor: 0.5, patience: 1)
        var rate: Float = 1
        for metric: Float in [0.5, 0.6, 0.6, 0.6, 0.7, 0.65, 0.65] { rate = plateau.update(metric: metric, rate: rate) }
        XCTAssertEqual(rate, 0.25)
    }
}
