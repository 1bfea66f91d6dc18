/// Zero padding of NCHW tensors in space and along channels (TFLite's PAD with a zero constant; residual blocks
/// that widen their shortcut pad channels this way).
public final class ZeroPad2d: Layer {
    public let padding: Padding
    public let channelsBefore: Int
    public let channelsAfter: Int
    private var inputShape: [Int] = []

    public init(padding: Padding, channelsBefore: Int = 0, channelsAfter: Int = 0) {
        precondition([padding.top, padding.left, padding.bottom, padding.right, channelsBefore, channelsAfter]
            .allSatisfy { $0 >= 0 }, "negative padding")
        self.padding = padding
        self.channelsBefore = channelsBefore
        self.channelsAfter = channelsAfter
    }

    public func outputShape(for shape: [Int]) -> [Int] {
        [shape[0], shape[1] + channelsBefore + channelsAfter,
         shape[2] + padding.top + padding.bottom, shape[3] + padding.left + padding.right]
    }

    public func forward(_ input: Tensor, training: Bool) -> Tensor {
        var output = Tensor(zeros: outputShape(for: input.shape))
        forward(input, into: &output)
        inputShape = input.shape
        return output
    }

    /// Inference into a caller-owned tensor, reusing its storage when it already has the output's shape.
    public func forward(_ input: Tensor, into output: inout Tensor) {
        precondition(input.rank == 4, "ZeroPad2d expects [N, C, H, W], got \(input.shape)")
        let shape = outputShape(for: input.shape)
        if output.shape != shape { output = Tensor(zeros: shape) } else { output.fill(0) }
        let (channels, height, width) = (input.shape[1], input.shape[2], input.shape[3])
        let (outChannels, outHeight, outWidth) = (shape[1], shape[2], shape[3])
        input.storage.withUnsafeBufferPointer { x in
            output.storage.withUnsafeMutableBufferPointer { y in
                for n in 0..<input.shape[0] {
                    for c in 0..<channels {
                        let from = x.baseAddress! + (n * channels + c) * height * width
                        let to = y.baseAddress! + ((n * outChannels + c + channelsBefore) * outHeight + padding.top)
                            * outWidth + padding.left
                        for row in 0..<height { (to + row * outWidth).update(from: from + row * width, count: width) }
                    }
                }
            }
        }
    }

    /// The gradient of the padded tensor cropped back to the input.
    public func backward(_ dOutput: Tensor) -> Tensor {
        precondition(dOutput.shape == outputShape(for: inputShape), "dOutput shape \(dOutput.shape)")
        let (channels, height, width) = (inputShape[1], inputShape[2], inputShape[3])
        let (outChannels, outHeight, outWidth) = (dOutput.shape[1], dOutput.shape[2], dOutput.shape[3])
        var dInput = Tensor(zeros: inputShape)
        dOutput.storage.withUnsafeBufferPointer { dY in
            dInput.storage.withUnsafeMutableBufferPointer { dX in
                for n in 0..<inputShape[0] {
                    for c in 0..<channels {
                        let to = dX.baseAddress! + (n * channels + c) * height * width
                        let from = dY.baseAddress! + ((n * outChannels + c + channelsBefore) * outHeight + padding.top)
                            * outWidth + padding.left
                        for row in 0..<height { (to + row * width).update(from: from + row * outWidth, count: width) }
                    }
                }
            }
        }
        return dInput
    }
}
