/// A ReLU or PReLU that an `InferencePlan` folds into the convolution before it: the convolution rectifies each
/// value as it writes its output, instead of the activation making a pass of its own over the whole map. Same
/// arithmetic as the layers' own kernels, so the outputs are the same bit for bit.
enum OutputActivation {
    case identity
    /// max(x, 0), as `ReLU`.
    case relu
    /// x < 0 ? x * slope[channel] : x, as `PReLU`; the slopes outlive the call.
    case prelu(UnsafePointer<Float>)

    /// `body` specialised for this activation: it receives channel -> rectifier, and each kind of rectifier gets
    /// its own branch-free copy of the caller's loops.
    @inline(__always)
    func dispatch(identity: ((Int) -> Unrectified) -> Void, relu: ((Int) -> ZeroClamp) -> Void,
                  prelu: ((Int) -> NegativeSlope) -> Void) {
        switch self {
        case .identity: identity { _ in Unrectified() }
        case .relu: relu { _ in ZeroClamp() }
        case .prelu(let slopes): prelu { NegativeSlope(slope: slopes[$0]) }
        }
    }
}

/// One output channel's activation, on single values and on eight at a time.
protocol ChannelRectifier {
    func callAsFunction(_ value: Float) -> Float
    func callAsFunction(_ values: SIMD8<Float>) -> SIMD8<Float>
}

struct Unrectified: ChannelRectifier {
    @inline(__always) func callAsFunction(_ value: Float) -> Float { value }
    @inline(__always) func callAsFunction(_ values: SIMD8<Float>) -> SIMD8<Float> { values }
}

/// ReLU's max(x, 0).
struct ZeroClamp: ChannelRectifier {
    @inline(__always) func callAsFunction(_ value: Float) -> Float { max(value, 0) }
    /// Lane by lane as max(x, 0): zero where x <= 0 (a negative zero too), x elsewhere (NaN stays NaN).
    @inline(__always) func callAsFunction(_ values: SIMD8<Float>) -> SIMD8<Float> {
        values.replacing(with: 0, where: values .<= 0)
    }
}

/// PReLU's x < 0 ? x * slope : x.
struct NegativeSlope: ChannelRectifier {
    let slope: Float
    @inline(__always) func callAsFunction(_ value: Float) -> Float { value < 0 ? value * slope : value }
    @inline(__always) func callAsFunction(_ values: SIMD8<Float>) -> SIMD8<Float> {
        values.replacing(with: values * slope, where: values .< 0)
    }
}

/// The ReLU or PReLU layer a plan folded into a convolution.
enum FoldedActivation {
    case relu
    case prelu(PReLU)

    /// `layer` if it is an activation a convolution of `channels` outputs can apply as it writes.
    init?(_ layer: Layer, channels: Int) {
        if layer is ReLU {
            self = .relu
        } else if let rectifier = layer as? PReLU, rectifier.slope.value.count == channels {
            self = .prelu(rectifier)
        } else {
            return nil
        }
    }

    /// `body` with the activation's current parameters.
    func withOutputActivation<Result>(_ body: (OutputActivation) -> Result) -> Result {
        switch self {
        case .relu: body(.relu)
        case .prelu(let rectifier):
            rectifier.slope.value.storage.withUnsafeBufferPointer { body(.prelu($0.baseAddress!)) }
        }
    }
}
