/// A point in source-image pixels (x right, y down).
public struct Point: Sendable, Hashable, Codable {
    public var x: Float
    public var y: Float

    public init(x: Float, y: Float) {
        self.x = x
        self.y = y
    }
}

/// An axis-aligned box in source-image pixels: top-left corner and size.
public struct Box: Sendable, Hashable, Codable {
    public var x: Float
    public var y: Float
    public var width: Float
    public var height: Float

    public init(x: Float, y: Float, width: Float, height: Float) {
        self.x = x
        self.y = y
        self.width = width
        self.height = height
    }

    public init(minX: Float, minY: Float, maxX: Float, maxY: Float) {
        self.init(x: minX, y: minY, width: maxX - minX, height: maxY - minY)
    }

    public var minX: Float { x }
    public var minY: Float { y }
    public var maxX: Float { x + width }
    public var maxY: Float { y + height }
    public var center: Point { Point(x: x + width / 2, y: y + height / 2) }
    public var area: Float { max(width, 0) * max(height, 0) }

    /// Intersection over union; 0 for disjoint or empty boxes.
    public func intersectionOverUnion(_ other: Box) -> Float {
        let overlapWidth = min(maxX, other.maxX) - max(minX, other.minX)
        let overlapHeight = min(maxY, other.maxY) - max(minY, other.minY)
        guard overlapWidth > 0, overlapHeight > 0 else { return 0 }
        let intersection = overlapWidth * overlapHeight
        let union = area + other.area - intersection
        return union > 0 ? intersection / union : 0
    }

    /// The same box in an image scaled by `factor` (detector input -> source, or back).
    public func scaled(by factor: Float) -> Box {
        Box(x: x * factor, y: y * factor, width: width * factor, height: height * factor)
    }

    /// Clipped to an image of the given size.
    public func clipped(width imageWidth: Int, height imageHeight: Int) -> Box {
        Box(minX: max(0, minX), minY: max(0, minY),
            maxX: min(Float(imageWidth), maxX), maxY: min(Float(imageHeight), maxY))
    }
}

/// Facial keypoints a detector may report, in source pixels. BlazeFace gives six (eyes, nose tip, mouth,
/// ear tragions); MTCNN five (eyes, nose, mouth corners). Eyes are what alignment needs.
public struct FaceLandmarks: Sendable, Hashable, Codable {
    /// The eye on the left of the image (the person's right eye).
    public var leftEye: Point
    public var rightEye: Point
    /// Every keypoint in the detector's own order.
    public var all: [Point]

    public init(leftEye: Point, rightEye: Point, all: [Point]) {
        self.leftEye = leftEye
        self.rightEye = rightEye
        self.all = all
    }
}

/// One face found in one frame.
public struct Detection: Sendable, Hashable, Codable {
    public var box: Box
    /// Detector confidence, 0 to 1.
    public var score: Float
    public var landmarks: FaceLandmarks?

    public init(box: Box, score: Float, landmarks: FaceLandmarks? = nil) {
        self.box = box
        self.score = score
        self.landmarks = landmarks
    }
}

/// Finds faces in a frame. Implementations own their scratch buffers: one instance per thread.
public protocol FaceDetector: AnyObject {
    /// Faces in `image` (rgb24), boxes and landmarks in the image's own pixels.
    func detect(in image: Image) throws -> [Detection]
}

/// A detector whose work on a frame has a part that depends on that frame alone (a network over the whole image)
/// and a remainder that may depend on the frames before (what an accurate detector found last time): a pipeline
/// runs the first part of consecutive frames on several threads, each with its own copy, and the remainder in
/// frame order, with the same results as `detect(in:)` frame after frame.
public protocol StagedFaceDetector: FaceDetector {
    /// A new detector computing the frame-only part (its `detect(in:)`), with buffers of its own for another
    /// thread; nil when this detector has no such part.
    func makeFrameStage() throws -> FaceDetector?
    /// The frame's detections given what a frame stage found on it: `detect(in: image)` is
    /// `detect(in: image, frameStageDetections: stage.detect(in: image))`. Called for every frame, in order.
    func detect(in image: Image, frameStageDetections: [Detection]) throws -> [Detection]
}
