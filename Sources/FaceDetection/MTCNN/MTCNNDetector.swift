import Foundation
import NeuralEngine
import VisionCore

/// MTCNN (Zhang et al. 2016) on our engine with facenet-pytorch 2.6.0's weights and its `detect_face` pipeline:
///
/// 1. an image pyramid from scale 12 / minimumFaceSize down by `scaleFactor` while the short side stays
///    >= 12 px, each level area-resampled; P-Net on each level; cells with face probability >= threshold 1
///    become 12 x 12 boxes (stride 2); NMS 0.5 per level, NMS 0.7 across levels; box regression, squared;
/// 2. each box cropped (clipped to the image, stretched), area-resampled to 24 x 24, R-Net in batches;
///    probability > threshold 2; NMS 0.7; regression; squared;
/// 3. the same at 48 x 48 with O-Net; probability > threshold 3; five landmarks; regression; NMS 0.7 on
///    intersection over the smaller box.
///
/// Boxes are in source pixels and not clipped to the frame; score is O-Net's face probability; landmarks are
/// the eyes (left of the image first), nose and mouth corners. Results come best score first.
///
/// Owns its networks' scratch buffers: one detector per thread.
public final class MTCNNDetector: StagedFaceDetector {
    public struct Options: Sendable, Equatable {
        /// The smallest face to look for, in source pixels: sets the first pyramid scale, 12 / size.
        public var minimumFaceSize: Float
        /// Face probability thresholds of P-Net (>=), R-Net and O-Net (>).
        public var proposalThreshold: Float
        public var refineThreshold: Float
        public var outputThreshold: Float
        /// Ratio between successive pyramid scales.
        public var scaleFactor: Double
        /// Crops per R-Net / O-Net call (16: as fast as 64 on group photos, and each network keeps buffers for
        /// one call: 35 MB less than 64 at 1080p).
        public var batchSize: Int

        public init(minimumFaceSize: Float = 20, proposalThreshold: Float = 0.6, refineThreshold: Float = 0.7,
                    outputThreshold: Float = 0.7, scaleFactor: Double = 0.709, batchSize: Int = 16) {
            self.minimumFaceSize = minimumFaceSize
            self.proposalThreshold = proposalThreshold
            self.refineThreshold = refineThreshold
            self.outputThreshold = outputThreshold
            self.scaleFactor = scaleFactor
            self.batchSize = batchSize
        }
    }

    public let options: Options
    public let weights: MTCNNWeights
    public let proposalNetwork: MTCNNProposalNetwork
    public let refineNetwork: MTCNNRefineNetwork
    public let outputNetwork: MTCNNOutputNetwork

    /// Loads `mtcnn.safetensors` from `modelsFolder` (setup puts it in Samples/thirdparty/models).
    public convenience init(modelsFolder: URL, options: Options = Options()) throws(MTCNNError) {
        try self.init(weightsFile: modelsFolder.appendingPathComponent(MTCNNWeights.fileName), options: options)
    }

    public convenience init(weightsFile: URL, options: Options = Options()) throws(MTCNNError) {
        try self.init(weights: MTCNNWeights(contentsOf: weightsFile), options: options)
    }

    public init(weights: MTCNNWeights, options: Options = Options()) throws(MTCNNError) {
        precondition(options.minimumFaceSize > 0 && options.scaleFactor > 0 && options.scaleFactor < 1
                     && options.batchSize > 0, "invalid MTCNN options \(options)")
        self.options = options
        self.weights = weights
        proposalNetwork = try MTCNNProposalNetwork(weights: weights)
        refineNetwork = try MTCNNRefineNetwork(weights: weights, maximumBatch: options.batchSize)
        outputNetwork = try MTCNNOutputNetwork(weights: weights, maximumBatch: options.batchSize)
    }

    /// The whole detector is frame-only: a copy with its own networks' buffers.
    public func makeFrameStage() throws -> FaceDetector? {
        try MTCNNDetector(weights: weights, options: options)
    }

    public func detect(in image: Image, frameStageDetections: [Detection]) throws -> [Detection] {
        frameStageDetections
    }

    /// detect_face's pyramid for a width x height image: scales in Double, as Python computes them.
    public func pyramidScales(width: Int, height: Int) -> [Double] {
        let first = 12.0 / Double(options.minimumFaceSize)
        let factor = options.scaleFactor
        var scales: [Double] = []
        var scale = first
        var shortSide = Double(min(width, height)) * first
        while shortSide >= 12 {
            scales.append(scale)
            scale *= factor
            shortSide *= factor
        }
        return scales
    }

    /// The size of the pyramid level at `scale`: int(h * scale + 1) x int(w * scale + 1).
    public static func levelSize(width: Int, height: Int, scale: Double) -> (width: Int, height: Int) {
        (Int(Double(width) * scale + 1), Int(Double(height) * scale + 1))
    }

    public func detect(in image: Image) -> [Detection] {
        let resampler = AreaResampler(image)
        var candidates = proposals(resampler)
        guard !candidates.isEmpty else { return [] }
        candidates = refine(candidates, resampler)
        guard !candidates.isEmpty else { return [] }
        return output(candidates, resampler)
    }

    // MARK: Stage 1: P-Net over the pyramid

    private func proposals(_ resampler: AreaResampler) -> [MTCNNCandidate] {
        var candidates: [MTCNNCandidate] = []
        for scale in pyramidScales(width: resampler.width, height: resampler.height) {
            let size = Self.levelSize(width: resampler.width, height: resampler.height, scale: scale)
            let (regression, probabilities) = proposalNetwork.forward(resampler.resampled(width: size.width,
                                                                                          height: size.height))
            let level = cells(regression: regression, probabilities: probabilities, scale: Float(scale))
            candidates += MTCNNSuppression.intersectionOverUnion(level, threshold: 0.5).map { level[$0] }
        }
        return MTCNNSuppression.intersectionOverUnion(candidates, threshold: 0.7).map {
            var candidate = candidates[$0]
            candidate.regressProposal()
            candidate.square()
            return candidate
        }
    }

    /// generateBoundingBox: cells at or above the threshold, row by row.
    private func cells(regression: Tensor, probabilities: Tensor, scale: Float) -> [MTCNNCandidate] {
        let (height, width) = (probabilities.shape[2], probabilities.shape[3])
        let plane = height * width
        let threshold = options.proposalThreshold
        var found: [MTCNNCandidate] = []
        probabilities.storage.withUnsafeBufferPointer { probabilities in
            regression.storage.withUnsafeBufferPointer { offsets in
                for y in 0..<height {
                    for x in 0..<width {
                        let at = y * width + x
                        let score = probabilities[plane + at]
                        guard score >= threshold else { continue }
                        found.append(MTCNNCandidate(
                            cellX: x, cellY: y, scale: scale, score: score,
                            offsets: (offsets[at], offsets[plane + at], offsets[2 * plane + at], offsets[3 * plane + at])))
                    }
                }
            }
        }
        return found
    }

    // MARK: Stages 2 and 3: R-Net and O-Net on crops

    /// Candidates whose crop is not empty, with their crops.
    private func crops(_ candidates: [MTCNNCandidate], _ resampler: AreaResampler)
        -> (candidates: [MTCNNCandidate], regions: [PixelRegion]) {
        var kept: [MTCNNCandidate] = [], regions: [PixelRegion] = []
        for candidate in candidates {
            guard let region = candidate.crop(imageWidth: resampler.width, imageHeight: resampler.height) else { continue }
            kept.append(candidate)
            regions.append(region)
        }
        return (kept, regions)
    }

    private func refine(_ candidates: [MTCNNCandidate], _ resampler: AreaResampler) -> [MTCNNCandidate] {
        let (boxes, regions) = crops(candidates, resampler)
        var passed: [MTCNNCandidate] = []
        for start in stride(from: 0, to: regions.count, by: options.batchSize) {
            let batch = start..<min(start + options.batchSize, regions.count)
            let input = resampler.crops(Array(regions[batch]), size: MTCNNRefineNetwork.inputSize)
            let (regression, probabilities) = refineNetwork.forward(input)
            for (row, index) in batch.enumerated() {
                let score = probabilities.storage[2 * row + 1]
                guard score > options.refineThreshold else { continue }
                var candidate = boxes[index]
                candidate.score = score
                let r = regression.storage[(4 * row)..<(4 * row + 4)].map { $0 }
                candidate.offsets = (r[0], r[1], r[2], r[3])
                passed.append(candidate)
            }
        }
        return MTCNNSuppression.intersectionOverUnion(passed, threshold: 0.7).map {
            var candidate = passed[$0]
            candidate.regress()
            candidate.square()
            return candidate
        }
    }

    private func output(_ candidates: [MTCNNCandidate], _ resampler: AreaResampler) -> [Detection] {
        let (boxes, regions) = crops(candidates, resampler)
        var passed: [MTCNNCandidate] = []
        var points: [[Point]] = []
        for start in stride(from: 0, to: regions.count, by: options.batchSize) {
            let batch = start..<min(start + options.batchSize, regions.count)
            let input = resampler.crops(Array(regions[batch]), size: MTCNNOutputNetwork.inputSize)
            let (regression, landmarks, probabilities) = outputNetwork.forward(input)
            for (row, index) in batch.enumerated() {
                let score = probabilities.storage[2 * row + 1]
                guard score > options.outputThreshold else { continue }
                var candidate = boxes[index]
                candidate.score = score
                // Landmarks are fractions of the (squared, pre-regression) box with inclusive sizes.
                let width = candidate.x2 - candidate.x1 + 1, height = candidate.y2 - candidate.y1 + 1
                let l = landmarks.storage[(10 * row)..<(10 * row + 10)].map { $0 }
                points.append((0..<5).map { k in
                    Point(x: width * l[k] + candidate.x1 - 1, y: height * l[5 + k] + candidate.y1 - 1)
                })
                let r = regression.storage[(4 * row)..<(4 * row + 4)].map { $0 }
                candidate.offsets = (r[0], r[1], r[2], r[3])
                candidate.regress()
                passed.append(candidate)
            }
        }
        return MTCNNSuppression.intersectionOverMinimum(passed, threshold: 0.7).map { index in
            let face = passed[index], five = points[index]
            let (leftEye, rightEye) = five[0].x <= five[1].x ? (five[0], five[1]) : (five[1], five[0])
            return Detection(box: Box(minX: face.x1, minY: face.y1, maxX: face.x2, maxY: face.y2), score: face.score,
                             landmarks: FaceLandmarks(leftEye: leftEye, rightEye: rightEye, all: five))
        }
    }
}
