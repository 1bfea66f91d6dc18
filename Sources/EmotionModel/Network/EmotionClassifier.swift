import Foundation
import NeuralEngine
import VisionCore

/// Inference with a trained model: square grayscale face crops in, class probabilities out.
/// Batch norms are folded into the convolutions, and the network runs through an `InferencePlan` (softmax included)
/// with its input and output staging kept here, so a steady-state call allocates only the arrays it returns.
/// One instance per thread (the plan and the staging are reused by every call).
public final class EmotionClassifier {
    public let architecture: ArchitectureConfig
    public let classNames: [String]
    public let preprocessing: InputPreprocessing
    public let provenance: [String: String]
    private let blur: GaussianBlur
    private let plan: InferencePlan
    /// [plannedBatch, 1, side, side] preprocessed crops; probabilities of the plain and the mirrored crops; a blur row.
    private var inputs: [Float]
    private var outputs: [Float]
    private var mirroredOutputs: [Float]
    private var blurLine: [Float]

    /// Faces per pass through the plan: enough for every face of a crowded frame; larger calls run in chunks
    /// (vgg: about 19 MB of activations).
    static let plannedBatch = 32

    public var inputSize: Int { architecture.inputSize }

    public init(model: EmotionModelFile, source: String = "model") throws(EmotionModelError) {
        architecture = model.architecture
        classNames = model.classNames
        preprocessing = model.preprocessing
        blur = GaussianBlur(sigma: model.preprocessing.blurSigma)
        provenance = model.provenance
        let network = foldingBatchNorms(try model.makeNetwork(source: source))
        (plan, inputs, outputs, mirroredOutputs, blurLine) = EmotionClassifier.staging(network, architecture: architecture)
    }

    /// The plan of network + softmax and the buffers a call fills.
    private static func staging(_ network: Sequential, architecture: ArchitectureConfig)
        -> (InferencePlan, [Float], [Float], [Float], [Float]) {
        let side = architecture.inputSize
        let plan = InferencePlan(Sequential([network, Softmax()]), inputItemShape: [1, side, side],
                                 maximumBatch: plannedBatch)
        let outputs = [Float](repeating: 0, count: plannedBatch * architecture.classes)
        return (plan, [Float](repeating: 0, count: plannedBatch * side * side), outputs, outputs,
                [Float](repeating: 0, count: side))
    }

    public convenience init(contentsOf url: URL) throws(EmotionModelError) {
        try self.init(model: try EmotionModelFile(contentsOf: url), source: url.path)
    }

    /// Wraps a network being trained (no folding: it keeps training).
    init(training network: Sequential, architecture: ArchitectureConfig, preprocessing: InputPreprocessing) {
        self.architecture = architecture
        self.classNames = Emotion.names
        self.preprocessing = preprocessing
        self.blur = GaussianBlur(sigma: preprocessing.blurSigma)
        self.provenance = [:]
        (plan, inputs, outputs, mirroredOutputs, blurLine) = EmotionClassifier.staging(network, architecture: architecture)
    }

    /// Inputs [N, 1, side, side] from raw pixels of `count` packed crops: low-pass, then normalisation.
    public func inputTensor(pixels: [UInt8], count: Int, mirrored: Bool = false) -> Tensor {
        let side = inputSize
        precondition(pixels.count == count * side * side, "expected \(count) crops of \(side)x\(side)")
        var input = Tensor(zeros: [count, 1, side, side])
        input.storage.withUnsafeMutableBufferPointer { target in
            preprocess(pixels, first: 0, count: count, mirrored: mirrored, into: target)
        }
        return input
    }

    /// Crops first..<first + count of `pixels` as network inputs in `target`.
    private func preprocess(_ pixels: [UInt8], first: Int, count: Int, mirrored: Bool,
                            into target: UnsafeMutableBufferPointer<Float>) {
        let side = inputSize
        let (scale, offset) = preprocessing.affine
        pixels.withUnsafeBufferPointer { all in
            let source = all.baseAddress! + first * side * side
            for image in 0..<count {
                for y in 0..<side {
                    let row = (image * side + y) * side
                    for x in 0..<side { target[row + x] = Float(source[row + (mirrored ? side - 1 - x : x)]) }
                }
            }
        }
        let values = UnsafeMutableBufferPointer(rebasing: target[0..<(count * side * side)])
        blurLine.withUnsafeMutableBufferPointer { blur.apply(to: values, side: side, count: count, line: $0) }
        for index in 0..<values.count { values[index] = values[index] * scale + offset }
    }

    /// Probabilities of crops first..<first + count (at most `plannedBatch`) into the front of `output`.
    private func classify(_ pixels: [UInt8], first: Int, count: Int, mirrored: Bool, into output: inout [Float]) {
        inputs.withUnsafeMutableBufferPointer { preprocess(pixels, first: first, count: count, mirrored: mirrored, into: $0) }
        plan.run(inputs, count: count, into: &output)
    }

    /// Class probabilities for each of `count` crops packed in `pixels`; `mirrorAverage` also classifies the mirror
    /// image and averages (horizontal-flip test-time augmentation).
    public func probabilities(pixels: [UInt8], count: Int, mirrorAverage: Bool = false) -> [[Float]] {
        guard count > 0 else { return [] }
        let side = inputSize
        precondition(pixels.count == count * side * side, "expected \(count) crops of \(side)x\(side)")
        let classes = architecture.classes
        var result: [[Float]] = []
        result.reserveCapacity(count)
        var first = 0
        while first < count {
            let chunk = min(plan.maximumBatch, count - first)
            classify(pixels, first: first, count: chunk, mirrored: false, into: &outputs)
            if mirrorAverage {
                classify(pixels, first: first, count: chunk, mirrored: true, into: &mirroredOutputs)
                for index in 0..<(chunk * classes) { outputs[index] = 0.5 * (outputs[index] + mirroredOutputs[index]) }
            }
            for image in 0..<chunk { result.append(Array(outputs[(image * classes)..<((image + 1) * classes)])) }
            first += chunk
        }
        return result
    }

    /// Test-time augmentation: the mean over the image and four copies shifted by `shift` pixels, each with its
    /// mirror image (ten views).
    public func testTimeAugmentedProbabilities(for dataset: FaceDataset, shift: Float = 2) -> [[Float]] {
        var total = probabilities(for: dataset, mirrorAverage: true)
        for (dx, dy) in [(shift, 0), (-shift, 0), (0, shift), (0, -shift)] {
            var shifted = [UInt8](repeating: 0, count: dataset.pixels.count)
            let side = dataset.side
            var values = [Float](repeating: 0, count: side * side)
            let map = AffineMap(a: 1, b: 0, c: dx, d: 0, e: 1, f: dy)
            dataset.pixels.withUnsafeBufferPointer { source in
                for image in 0..<dataset.count {
                    let crop = UnsafeBufferPointer(rebasing: source[(image * side * side)..<((image + 1) * side * side)])
                    values.withUnsafeMutableBufferPointer { warpGray(crop, width: side, height: side, map: map, outputSide: side, into: $0) }
                    for index in 0..<(side * side) { shifted[image * side * side + index] = UInt8(max(0, min(255, values[index].rounded()))) }
                }
            }
            let view = probabilities(for: FaceDataset(side: side, pixels: shifted, labels: dataset.labels), mirrorAverage: true)
            for row in total.indices {
                for column in total[row].indices { total[row][column] += view[row][column] }
            }
        }
        return total.map { row in row.map { $0 / 5 } }
    }

    /// Probabilities for a whole data set, in batches.
    public func probabilities(for dataset: FaceDataset, batchSize: Int = 256, mirrorAverage: Bool = false) -> [[Float]] {
        precondition(dataset.side == inputSize, "data set side \(dataset.side) differs from the model's \(inputSize)")
        var result: [[Float]] = []
        result.reserveCapacity(dataset.count)
        var start = 0
        while start < dataset.count {
            let end = min(start + batchSize, dataset.count)
            let pixels = Array(dataset.pixels[(start * dataset.pixelsPerImage)..<(end * dataset.pixelsPerImage)])
            result += probabilities(pixels: pixels, count: end - start, mirrorAverage: mirrorAverage)
            start = end
        }
        return result
    }
}
