/// A learnable (or persistent) tensor with its accumulated gradient.
public final class Parameter {
    /// Every mutation (assignment, `value.storage[i] += x`, `withUnsafeMutableBufferPointer`) bumps `version`.
    /// Without `oldValue`, `didSet` keeps in-place mutation in place (SE-0268).
    public var value: Tensor { didSet { version &+= 1 } }
    /// Changes whenever `value` may have: caches derived from the value (Winograd weights) compare it.
    public private(set) var version = 0
    public var gradient: Tensor
    /// Updated by the optimiser. Running statistics are persistent but not trainable.
    public let isTrainable: Bool
    /// Subject to weight decay (weights yes; biases and normalisation parameters no).
    public let decays: Bool

    public init(_ value: Tensor, isTrainable: Bool = true, decays: Bool = false) {
        self.value = value
        self.gradient = Tensor(zeros: isTrainable ? value.shape : [0])
        self.isTrainable = isTrainable
        self.decays = decays
    }

    public func zeroGradient() {
        if isTrainable { gradient.fill(0) }
    }
}

/// One stage of a network. `forward` in training mode caches what `backward` needs;
/// `backward` takes dL/dOutput, accumulates (+=) into parameter gradients and returns dL/dInput.
public protocol Layer: AnyObject {
    func forward(_ input: Tensor, training: Bool) -> Tensor
    func backward(_ dOutput: Tensor) -> Tensor
    /// Learnable and persistent tensors by name, e.g. "weight", "running_mean".
    var namedParameters: [(name: String, parameter: Parameter)] { get }
    /// Layers contained in this one (containers only).
    var sublayers: [Layer] { get }
}

extension Layer {
    public var namedParameters: [(name: String, parameter: Parameter)] { [] }
    public var sublayers: [Layer] { [] }

    /// This layer and everything inside it, depth first.
    public var allLayers: [Layer] { [self] + sublayers.flatMap(\.allLayers) }
    public var parameters: [Parameter] { namedParameters.map(\.parameter) }

    public func zeroGradients() {
        for parameter in parameters { parameter.zeroGradient() }
    }

    /// Number of trainable scalars.
    public var trainableParameterCount: Int {
        parameters.filter(\.isTrainable).reduce(0) { $0 + $1.value.count }
    }
}

/// The "weight" and optional "bias" parameters of a convolution, in the order files list them.
func weightAndBias(_ weight: Parameter, _ bias: Parameter?) -> [(name: String, parameter: Parameter)] {
    [(name: "weight", parameter: weight)] + (bias.map { [(name: "bias", parameter: $0)] } ?? [])
}
