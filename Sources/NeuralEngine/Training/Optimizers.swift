#if canImport(Glibc)
import Glibc
#else
import Darwin
#endif

/// Updates trainable parameters from their accumulated gradients.
public protocol Optimizer: AnyObject {
    var learningRate: Float { get set }
    func step()
    /// Named tensors that make a resumed run continue exactly.
    func state() -> [String: Tensor]
    func restore(_ state: [String: Tensor]) throws
}

public struct OptimizerStateError: Error, CustomStringConvertible {
    public let description: String
    public init(description: String) { self.description = description }
}

/// Adam, or AdamW when `decoupledWeightDecay` is set (weight decay applied to the weights directly,
/// not through the gradient); only parameters marked `decays` are decayed.
public final class Adam: Optimizer {
    public var learningRate: Float
    public let beta1: Float
    public let beta2: Float
    public let epsilon: Float
    public let weightDecay: Float
    public let decoupledWeightDecay: Bool
    private let parameters: [Parameter]
    private var firstMoments: [[Float]]
    private var secondMoments: [[Float]]
    public private(set) var stepCount = 0

    public init(parameters: [Parameter], learningRate: Float = 1e-3, beta1: Float = 0.9, beta2: Float = 0.999,
                epsilon: Float = 1e-8, weightDecay: Float = 0, decoupledWeightDecay: Bool = true) {
        self.parameters = parameters.filter(\.isTrainable)
        self.learningRate = learningRate
        self.beta1 = beta1
        self.beta2 = beta2
        self.epsilon = epsilon
        self.weightDecay = weightDecay
        self.decoupledWeightDecay = decoupledWeightDecay
        firstMoments = self.parameters.map { [Float](repeating: 0, count: $0.value.count) }
        secondMoments = firstMoments
    }

    public func step() {
        stepCount += 1
        let correction1 = 1 - powf(beta1, Float(stepCount))
        let correction2 = 1 - powf(beta2, Float(stepCount))
        let stepSize = learningRate / correction1
        let (learningRate, beta1, beta2, epsilon, decoupled) = (learningRate, beta1, beta2, epsilon, decoupledWeightDecay)
        for (index, parameter) in parameters.enumerated() {
            let decay = parameter.decays ? weightDecay : 0
            parameter.value.storage.withUnsafeMutableBufferPointer { w in
                parameter.gradient.storage.withUnsafeBufferPointer { g in
                    firstMoments[index].withUnsafeMutableBufferPointer { m in
                        secondMoments[index].withUnsafeMutableBufferPointer { v in
                            guard !w.isEmpty else { return }
                            // Element-wise: slices on the workers give the same values as one loop.
                            let shared = UncheckedSendable((w.baseAddress!, g.baseAddress!, m.baseAddress!, v.baseAddress!))
                            Parallelism.forEachSlice(w.count) { slice in
                                let (w, g, m, v) = shared.value
                                for i in slice {
                                    var gradient = g[i]
                                    if decoupled { w[i] -= learningRate * decay * w[i] } else { gradient += decay * w[i] }
                                    m[i] = beta1 * m[i] + (1 - beta1) * gradient
                                    v[i] = beta2 * v[i] + (1 - beta2) * gradient * gradient
                                    w[i] -= stepSize * m[i] / ((v[i] / correction2).squareRoot() + epsilon)
                                }
                            }
                        }
                    }
                }
            }
        }
    }

    public func state() -> [String: Tensor] {
        var result = ["step": Tensor(shape: [1], storage: [Float(stepCount)])]
        for index in parameters.indices {
            result["m.\(index)"] = Tensor(shape: [firstMoments[index].count], storage: firstMoments[index])
            result["v.\(index)"] = Tensor(shape: [secondMoments[index].count], storage: secondMoments[index])
        }
        return result
    }

    public func restore(_ state: [String: Tensor]) throws {
        guard let step = state["step"]?.storage.first else { throw OptimizerStateError(description: "optimizer state has no step count") }
        for index in parameters.indices {
            guard let m = state["m.\(index)"], let v = state["v.\(index)"],
                  m.count == parameters[index].value.count, v.count == m.count else {
                throw OptimizerStateError(description: "optimizer state does not match parameter \(index)")
            }
            firstMoments[index] = m.storage
            secondMoments[index] = v.storage
        }
        stepCount = Int(step)
    }
}

/// Stochastic gradient descent with (optionally Nesterov) momentum and L2 weight decay.
public final class SGD: Optimizer {
    public var learningRate: Float
    public let momentum: Float
    public let weightDecay: Float
    public let nesterov: Bool
    private let parameters: [Parameter]
    private var velocities: [[Float]]

    public init(parameters: [Parameter], learningRate: Float, momentum: Float = 0.9, weightDecay: Float = 0, nesterov: Bool = false) {
        self.parameters = parameters.filter(\.isTrainable)
        self.learningRate = learningRate
        self.momentum = momentum
        self.weightDecay = weightDecay
        self.nesterov = nesterov
        velocities = self.parameters.map { [Float](repeating: 0, count: $0.value.count) }
    }

    public func step() {
        for (index, parameter) in parameters.enumerated() {
            let decay = parameter.decays ? weightDecay : 0
            parameter.value.storage.withUnsafeMutableBufferPointer { w in
                parameter.gradient.storage.withUnsafeBufferPointer { g in
                    velocities[index].withUnsafeMutableBufferPointer { velocity in
                        for i in 0..<w.count {
                            let gradient = g[i] + decay * w[i]
                            velocity[i] = momentum * velocity[i] + gradient
                            w[i] -= learningRate * (nesterov ? gradient + momentum * velocity[i] : velocity[i])
                        }
                    }
                }
            }
        }
    }

    public func state() -> [String: Tensor] {
        var result: [String: Tensor] = [:]
        for index in parameters.indices {
            result["velocity.\(index)"] = Tensor(shape: [velocities[index].count], storage: velocities[index])
        }
        return result
    }

    public func restore(_ state: [String: Tensor]) throws {
        for index in parameters.indices {
            guard let velocity = state["velocity.\(index)"], velocity.count == parameters[index].value.count else {
                throw OptimizerStateError(description: "optimizer state does not match parameter \(index)")
            }
            velocities[index] = velocity.storage
        }
    }
}
