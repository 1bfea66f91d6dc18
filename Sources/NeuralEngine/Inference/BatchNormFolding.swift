/// Inference copy of a network in which every BatchNorm that directly follows a Conv2d is folded into that
/// convolution's weights and bias: one pass over the feature map less per block, same outputs in evaluation mode.
public func foldingBatchNorms(_ network: Sequential) -> Sequential {
    var folded: [Layer] = []
    var index = 0
    let layers = network.layers
    while index < layers.count {
        let layer = layers[index]
        if let convolution = layer as? Conv2d, index + 1 < layers.count, let norm = layers[index + 1] as? BatchNorm,
           norm.channels == convolution.outChannels {
            folded.append(fold(convolution, into: norm))
            index += 2
            continue
        }
        if let nested = layer as? Sequential {
            folded.append(foldingBatchNorms(nested))
        } else if let residual = layer as? Residual {
            let body = (residual.body as? Sequential).map(foldingBatchNorms) ?? residual.body
            let shortcut = (residual.shortcut as? Sequential).map(foldingBatchNorms) ?? residual.shortcut
            folded.append(Residual(body: body, shortcut: shortcut))
        } else {
            folded.append(layer)
        }
        index += 1
    }
    return Sequential(folded)
}

private func fold(_ convolution: Conv2d, into norm: BatchNorm) -> Conv2d {
    let (multiplier, offset) = norm.inferenceAffine
    var weight = convolution.weight.value
    let perOutput = weight.count / convolution.outChannels
    var bias = [Float](repeating: 0, count: convolution.outChannels)
    for channel in 0..<convolution.outChannels {
        for index in (channel * perOutput)..<((channel + 1) * perOutput) { weight.storage[index] *= multiplier[channel] }
        bias[channel] = (convolution.bias?.value.storage[channel] ?? 0) * multiplier[channel] + offset[channel]
    }
    return Conv2d(weight: weight, bias: Tensor(shape: [convolution.outChannels], storage: bias),
                  stride: convolution.stride, padding: convolution.padding, groups: convolution.groups)
}
