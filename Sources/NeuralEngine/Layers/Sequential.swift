/// Layers applied in order; backward runs them in reverse.
public final class Sequential: Layer {
    public private(set) var layers: [Layer]

    public init(_ layers: [Layer]) {
        self.layers = layers
    }

    public var sublayers: [Layer] { layers }

    public func forward(_ input: Tensor, training: Bool) -> Tensor {
        var activation = input
        for layer in layers { activation = layer.forward(activation, training: training) }
        return activation
    }

    public func backward(_ dOutput: Tensor) -> Tensor {
        var gradient = dOutput
        for layer in layers.reversed() { gradient = layer.backward(gradient) }
        return gradient
    }

    /// Children's names are prefixed with their index: "3.weight".
    public var namedParameters: [(name: String, parameter: Parameter)] {
        layers.enumerated().flatMap { index, layer in
            layer.namedParameters.map { (name: "\(index).\($0.name)", parameter: $0.parameter) }
        }
    }
}
