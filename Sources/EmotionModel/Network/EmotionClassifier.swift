import Foundation
import NeuralEngine
import VisionCore

/// Inference with a trained model: square grayscale face crops in, class probabilities out.
/// Batch norms are folded into the convolutions; one instance per thread (layers keep scratch buffers).
public final class EmotionClassifier {
    public let architecture: ArchitectureConfig
    public let classNames: [String]
    public let preprocessing: InputPreprocessing
    public let provenance: [String: String]
    private let network: Sequential
    private let blur: GaussianBlur

    public var inputSize: Int { architecture.inputSize }

    public init(model: EmotionModelFile, source: String = "model") throws(EmotionModelError) {
        architecture = model.architecture
        classNames = model.classNames
        preprocessing = model.preprocessing
        blur = GaussianBlur(sigma: model.preprocessing.blurSigma)
        provenance = model.provenance
        network = foldingBatchNorms(try model.makeNetwork(source: source))
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
        self.network = network
    }

    /// Inputs [N, 1, side, side] from raw pixels of `count` packed crops: low-pass, then normalisation.
    public func inputTensor(pixels: [UInt8], count: Int, mirrored: Bool = false) -> Tensor {
        let side = inputSize
        precondition(pixels.count == count * side * side, "expected \(count) crops of \(side)x\(side)")
        let (scale, offset) = preprocessing.affine
        var input = Tensor(zeros: [count, 1, side, side])
        input.storage.withUnsafeMutableBufferPointer { target in
            pixels.withUnsafeBufferPointer { source in
                for image in 0..<count {
                    for y in 0..<side {
                        let row = (image * side + y) * side
                        for x in 0..<side { target[row + x] = Float(source[row + (mirrored ? side - 1 - x : x)]) }
                    }
                }
            }
            blur.apply(to: target, side: side, count: count)
            for index in 0..<target.count { target[index] = target[index] * scale + offset }
        }
        return input
    }



    /// Class probabilities for each of `count` crops packed in `pixels`; `mirrorAverage` also classifies the mirror
    /// image and averages (horizontal-flip test-time augmentation).
    public func probabilities(pixels: [UInt8], count: Int, mirrorAverage: Bool = false) -> [[Float]] {
        guard count > 0 else { return [] }
        var logits = network.forward(inputTensor(pixels: pixels, count: count), training: false)
        var probabilities = Softmax.probabilities(logits)
        if mirrorAverage {
            logits = network.forward(inputTensor(pixels: pixels, count: count, mirrored: true), training: false)
            let mirrored = Softmax.probabilities(logits)
            for index in 0..<probabilities.count {
                probabilities.storage[index] = 0.5 * (probabilities.storage[index] + mirrored.storage[index])
            }
        }
        let classes = architecture.classes
        return (0..<count).map { Array(probabilities.storage[($0 * classes)..<(($0 + 1) * classes)]) }
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
