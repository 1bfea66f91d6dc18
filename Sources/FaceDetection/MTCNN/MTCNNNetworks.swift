import NeuralEngine

#if canImport(Glibc)
import Glibc
#else
import Darwin
#endif

/// MTCNN's first stage (P-Net), as facenet-pytorch's `PNet`: a fully convolutional 12 x 12 face / not-face
/// classifier with box regression, run over a whole pyramid level at once. Per output cell (stride 2 in the
/// input): the face probability and four box offsets in units of the 12-pixel cell.
///
/// conv 3->10 (3x3), PReLU, max pool 2x2 ceil mode, conv 10->16 (3x3), PReLU, conv 16->32 (3x3), PReLU, then
/// two 1x1 heads: conv4_1 (2 logits, softmax over channels) and conv4_2 (4 offsets), run here as one 1x1
/// convolution with 6 outputs.
public final class MTCNNProposalNetwork {
    let body: Sequential
    /// Channels 0-3: conv4_2 (offsets); 4-5: conv4_1 (background, face logits).
    let heads: PointwiseConv2d

    public init(weights: MTCNNWeights, prefix: String = "pnet.") throws(MTCNNError) {
        body = Sequential([
            try weights.convolution(prefix + "conv1", in: 3, out: 10, kernel: 3),
            try weights.prelu(prefix + "prelu1", channels: 10),
            MaxPool2d(kernelSize: 2, stride: 2, ceilMode: true),
            try weights.convolution(prefix + "conv2", in: 10, out: 16, kernel: 3),
            try weights.prelu(prefix + "prelu2", channels: 16),
            try weights.convolution(prefix + "conv3", in: 16, out: 32, kernel: 3),
            try weights.prelu(prefix + "prelu3", channels: 32),
        ])
        let offsets = try weights.tensor(prefix + "conv4_2.weight", [4, 32, 1, 1])
        let logits = try weights.tensor(prefix + "conv4_1.weight", [2, 32, 1, 1])
        let offsetBias = try weights.tensor(prefix + "conv4_2.bias", [4])
        let logitBias = try weights.tensor(prefix + "conv4_1.bias", [2])
        heads = PointwiseConv2d(weight: Tensor(shape: [6, 32, 1, 1], storage: offsets.storage + logits.storage),
                                bias: Tensor(shape: [6], storage: offsetBias.storage + logitBias.storage))
    }

    /// Output cells for an input of `height` x `width` (at least 12 x 12).
    public static func outputSize(height: Int, width: Int) -> (height: Int, width: Int) {
        // conv 3x3, pool 2x2 ceil (ceil((n - 2) / 2)), conv 3x3, conv 3x3.
        ((height - 1) / 2 - 4, (width - 1) / 2 - 4)
    }

    /// The raw 6-channel output of body and heads. The three 3x3 convolutions run through Winograd F(2x2, 3x3):
    /// on P-Net's wide strips it beat im2col + sgemm for each of them (conv2 and conv3 1.2-1.6x per layer; conv1,
    /// 3 -> 10 channels, a few ms per 720p frame, where the 10-row product is a poor fit for sgemm).
    /// PReLUs rectify in place and the heads are one sgemm (`PointwiseConv2d`): copies of the activations were a
    /// tenth of P-Net's time.
    private func evaluate(_ input: Tensor) -> Tensor {
        var activation = input
        for layer in body.layers {
            if let convolution = layer as? Conv2d, convolution.qualifiesForWinograd {
                activation = convolution.winogradForward(activation)
            } else if let rectifier = layer as? PReLU {
                rectifier.rectify(&activation)
            } else {
                activation = layer.forward(activation, training: false)
            }
        }
        return heads.forward(activation, training: false)
    }

    /// Output rows computed per pass over a horizontal strip of the input (see `forward`).
    public var rowsPerStrip = 32

    /// input: [N, 3, H, W], values (byte - 127.5) / 128. Returns regression [N, 4, h, w] (conv4_2) and
    /// probabilities [N, 2, h, w] (softmax of conv4_1 over its two channels: background, face).
    ///
    /// A large level runs as horizontal strips: output rows a ..< b need input rows 2a ..< 2b + 10 (the
    /// receptive field is 12 rows at stride 2; strips start on even rows, so the 2x2 pool windows line up with
    /// the whole image's, and only the last strip reaches the bottom edge and its partial windows). The strips'
    /// im2col buffers stay in cache where the whole level's would not, for 10 repeated input rows per strip.
    public func forward(_ input: Tensor) -> (regression: Tensor, probabilities: Tensor) {
        precondition(input.rank == 4 && input.shape[1] == 3 && input.shape[2] >= 12 && input.shape[3] >= 12,
                     "P-Net takes [N, 3, H >= 12, W >= 12], got \(input.shape)")
        let (batch, inputHeight, inputWidth) = (input.shape[0], input.shape[2], input.shape[3])
        let (height, width) = Self.outputSize(height: inputHeight, width: inputWidth)
        let raw: Tensor
        if batch > 1 || height <= rowsPerStrip + rowsPerStrip / 2 {
            raw = evaluate(input)
        } else {
            // The strips cover every output row, and each strip every input row it reads: no zero fills.
            raw = Tensor(uninitialized: [1, 6, height, width]) { stitched in
                input.storage.withUnsafeBufferPointer { source in
                    for first in stride(from: 0, to: height, by: rowsPerStrip) {
                        let end = min(first + rowsPerStrip, height)
                        let rows = (2 * first)..<min(2 * end + 10, inputHeight)
                        let strip = Tensor(uninitialized: [1, 3, rows.count, inputWidth]) { strip in
                            for c in 0..<3 {
                                (strip.baseAddress! + c * rows.count * inputWidth).update(
                                    from: source.baseAddress! + (c * inputHeight + rows.lowerBound) * inputWidth,
                                    count: rows.count * inputWidth)
                            }
                        }
                        let part = evaluate(strip)
                        precondition(part.shape == [1, 6, end - first, width], "P-Net strip \(part.shape)")
                        let count = (end - first) * width
                        part.storage.withUnsafeBufferPointer { part in
                            for c in 0..<6 {
                                (stitched.baseAddress! + (c * height + first) * width).update(
                                    from: part.baseAddress! + c * count, count: count)
                            }
                        }
                    }
                }
            }
        }
        let plane = height * width
        return raw.storage.withUnsafeBufferPointer { raw in
            let regression = Tensor(uninitialized: [batch, 4, height, width]) { offsets in
                for n in 0..<batch {
                    (offsets.baseAddress! + n * 4 * plane).update(from: raw.baseAddress! + n * 6 * plane, count: 4 * plane)
                }
            }
            let probabilities = Tensor(uninitialized: [batch, 2, height, width]) { probabilities in
                for n in 0..<batch {
                    let background = raw.baseAddress! + n * 6 * plane + 4 * plane, face = background + plane
                    let out = probabilities.baseAddress! + n * 2 * plane
                    for p in 0..<plane {
                        // torch.softmax: exp(x - max) / sum.
                        let largest = max(background[p], face[p])
                        let e0 = expf(background[p] - largest), e1 = expf(face[p] - largest)
                        out[p] = e0 / (e0 + e1)
                        out[plane + p] = e1 / (e0 + e1)
                    }
                }
            }
            return (regression, probabilities)
        }
    }
}

/// Splits the fused head's logits into softmax probabilities: columns `logits` ..< `logits` + 2 of each row.
private func twoClassSoftmax(_ raw: Tensor, columns: Int, logits: Int) -> Tensor {
    let rows = raw.shape[0]
    var probabilities = Tensor(zeros: [rows, 2])
    for row in 0..<rows {
        let background = raw.storage[row * columns + logits], face = raw.storage[row * columns + logits + 1]
        // torch.softmax: exp(x - max) / sum.
        let largest = max(background, face)
        let e0 = expf(background - largest), e1 = expf(face - largest)
        probabilities.storage[2 * row] = e0 / (e0 + e1)
        probabilities.storage[2 * row + 1] = e1 / (e0 + e1)
    }
    return probabilities
}

/// Columns `range` of each row of [N, columns].
private func columns(_ raw: Tensor, _ range: Range<Int>) -> Tensor {
    let (rows, width) = (raw.shape[0], raw.shape[1])
    var values: [Float] = []
    values.reserveCapacity(rows * range.count)
    for row in 0..<rows { values += raw.storage[(row * width + range.lowerBound)..<(row * width + range.upperBound)] }
    return Tensor(shape: [rows, range.count], storage: values)
}

/// One dense layer computing several heads at once: their weights and biases stacked in `names` order.
private func fusedHeads(_ weights: MTCNNWeights, _ names: [(String, Int)], in inFeatures: Int) throws(MTCNNError) -> Linear {
    var weight: [Float] = [], bias: [Float] = []
    for (name, outFeatures) in names {
        weight += try weights.tensor(name + ".weight", [outFeatures, inFeatures]).storage
        bias += try weights.tensor(name + ".bias", [outFeatures]).storage
    }
    return Linear(weight: Tensor(shape: [bias.count, inFeatures], storage: weight), bias: Tensor(shape: [bias.count], storage: bias))
}

/// MTCNN's second stage (R-Net), as facenet-pytorch's `RNet`, on 24 x 24 crops:
/// conv 3->28 (3x3), PReLU, max pool 3x3 stride 2 ceil, conv 28->48 (3x3), PReLU, max pool 3x3 stride 2 ceil,
/// conv 48->64 (2x2), PReLU, dense 576->128 (on the permuted flatten, see `MTCNNWeights.denseAfterPermute`),
/// PReLU, then dense5_2 (4 box offsets) and dense5_1 (2 logits, softmax), run as one dense layer of 6 outputs.
/// Runs through an `InferencePlan`: batches up to `maximumBatch` allocate nothing but the results.
public final class MTCNNRefineNetwork {
    public static let inputSize = 24
    let network: Sequential
    let plan: InferencePlan

    public init(weights: MTCNNWeights, prefix: String = "rnet.", maximumBatch: Int = 64) throws(MTCNNError) {
        network = Sequential([
            try weights.convolution(prefix + "conv1", in: 3, out: 28, kernel: 3),
            try weights.prelu(prefix + "prelu1", channels: 28),
            MaxPool2d(kernelSize: 3, stride: 2, ceilMode: true),
            try weights.convolution(prefix + "conv2", in: 28, out: 48, kernel: 3),
            try weights.prelu(prefix + "prelu2", channels: 48),
            MaxPool2d(kernelSize: 3, stride: 2, ceilMode: true),
            try weights.convolution(prefix + "conv3", in: 48, out: 64, kernel: 2),
            try weights.prelu(prefix + "prelu3", channels: 64),
            Flatten(),
            try weights.denseAfterPermute(prefix + "dense4", channels: 64, height: 3, width: 3, out: 128),
            try weights.prelu(prefix + "prelu4", channels: 128),
            try fusedHeads(weights, [(prefix + "dense5_2", 4), (prefix + "dense5_1", 2)], in: 128),
        ])
        plan = InferencePlan(network, inputItemShape: [3, 24, 24], maximumBatch: maximumBatch)
    }

    /// input: [N, 3, 24, 24]. Returns regression [N, 4] and probabilities [N, 2] (background, face).
    public func forward(_ input: Tensor) -> (regression: Tensor, probabilities: Tensor) {
        precondition(input.rank == 4 && Array(input.shape.dropFirst()) == [3, 24, 24],
                     "R-Net takes [N, 3, 24, 24], got \(input.shape)")
        let raw = plan.run(input)
        return (columns(raw, 0..<4), twoClassSoftmax(raw, columns: 6, logits: 4))
    }
}

/// MTCNN's third stage (O-Net), as facenet-pytorch's `ONet`, on 48 x 48 crops:
/// conv 3->32 (3x3), PReLU, max pool 3x3/2 ceil, conv 32->64 (3x3), PReLU, max pool 3x3/2 ceil,
/// conv 64->64 (3x3), PReLU, max pool 2x2/2 ceil, conv 64->128 (2x2), PReLU, dense 1152->256 (permuted
/// flatten), PReLU, then dense6_2 (4 box offsets), dense6_3 (10 landmark coordinates: five x, then five y, as
/// fractions of the box) and dense6_1 (2 logits, softmax), run as one dense layer of 16 outputs.
/// Runs through an `InferencePlan` like R-Net.
public final class MTCNNOutputNetwork {
    public static let inputSize = 48
    let network: Sequential
    let plan: InferencePlan

    public init(weights: MTCNNWeights, prefix: String = "onet.", maximumBatch: Int = 64) throws(MTCNNError) {
        network = Sequential([
            try weights.convolution(prefix + "conv1", in: 3, out: 32, kernel: 3),
            try weights.prelu(prefix + "prelu1", channels: 32),
            MaxPool2d(kernelSize: 3, stride: 2, ceilMode: true),
            try weights.convolution(prefix + "conv2", in: 32, out: 64, kernel: 3),
            try weights.prelu(prefix + "prelu2", channels: 64),
            MaxPool2d(kernelSize: 3, stride: 2, ceilMode: true),
            try weights.convolution(prefix + "conv3", in: 64, out: 64, kernel: 3),
            try weights.prelu(prefix + "prelu3", channels: 64),
            MaxPool2d(kernelSize: 2, stride: 2, ceilMode: true),
            try weights.convolution(prefix + "conv4", in: 64, out: 128, kernel: 2),
            try weights.prelu(prefix + "prelu4", channels: 128),
            Flatten(),
            try weights.denseAfterPermute(prefix + "dense5", channels: 128, height: 3, width: 3, out: 256),
            try weights.prelu(prefix + "prelu5", channels: 256),
            try fusedHeads(weights, [(prefix + "dense6_2", 4), (prefix + "dense6_3", 10), (prefix + "dense6_1", 2)],
                           in: 256),
        ])
        plan = InferencePlan(network, inputItemShape: [3, 48, 48], maximumBatch: maximumBatch)
    }

    /// input: [N, 3, 48, 48]. Returns regression [N, 4], landmarks [N, 10] and probabilities [N, 2].
    public func forward(_ input: Tensor) -> (regression: Tensor, landmarks: Tensor, probabilities: Tensor) {
        precondition(input.rank == 4 && Array(input.shape.dropFirst()) == [3, 48, 48],
                     "O-Net takes [N, 3, 48, 48], got \(input.shape)")
        let raw = plan.run(input)
        return (columns(raw, 0..<4), columns(raw, 4..<14), twoClassSoftmax(raw, columns: 16, logits: 14))
    }
}
