/// y = body(x) + shortcut(x), where the shortcut is the identity when nil (a residual Add).
public final class Residual: Layer {
    public let body: Layer
    public let shortcut: Layer?

    public init(body: Layer, shortcut: Layer? = nil) {
        self.body = body
        self.shortcut = shortcut
    }

    public var sublayers: [Layer] { [body] + (shortcut.map { [$0] } ?? []) }

    public func forward(_ input: Tensor, training: Bool) -> Tensor {
        var output = body.forward(input, training: training)
        output.add(shortcut?.forward(input, training: training) ?? input)
        return output
    }

    public func backward(_ dOutput: Tensor) -> Tensor {
        var dInput = body.backward(dOutput)
        dInput.add(shortcut?.backward(dOutput) ?? dOutput)
        return dInput
    }

    public var namedParameters: [(name: String, parameter: Parameter)] {
        body.namedParameters.map { (name: "body.\($0.name)", parameter: $0.parameter) }
            + (shortcut?.namedParameters.map { (name: "shortcut.\($0.name)", parameter: $0.parameter) } ?? [])
    }
}
