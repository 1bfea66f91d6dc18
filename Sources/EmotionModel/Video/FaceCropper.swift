import VisionCore

#if canImport(Glibc)
import Glibc
#else
import Darwin
#endif

/// Cuts the classifier's input out of a video frame: a square around the face, rotated so the eyes are level,
/// converted to gray and resampled to side x side. One function for training-time checks and the pipeline,
/// so the two cannot drift apart.
public struct FaceCropper: Sendable {
    public var side: Int
    /// Crop side as a multiple of the detector box's larger side: how FER2013 frames a face relative to the
    /// detector's box, which differs per detector (FaceDetection's `DetectorFraming`, measured by
    /// Scripts/measure_fer_framing.sh; the default lies between BlazeFace's short- and full-range framings).
    public var scale: Float
    /// Vertical shift of the crop centre, as a fraction of the box height (positive = down).
    public var verticalOffset: Float
    /// Rotate so the eyes are level when landmarks are known.
    public var aligns: Bool

    public init(side: Int = 48, scale: Float = 1.13, verticalOffset: Float = -0.06, aligns: Bool = true) {
        self.side = side
        self.scale = scale
        self.verticalOffset = verticalOffset
        self.aligns = aligns
    }

    /// The map from crop pixels to source pixels for a face.
    public func map(box: Box, landmarks: FaceLandmarks?) -> AffineMap {
        var angle: Float = 0
        if aligns, let landmarks {
            angle = atan2f(landmarks.rightEye.y - landmarks.leftEye.y, landmarks.rightEye.x - landmarks.leftEye.x)
        }
        let center = box.center
        return AffineMap.square(side: side, sourceCenterX: center.x, sourceCenterY: center.y + verticalOffset * box.height,
                                sourceSide: max(box.width, box.height) * scale, angle: angle)
    }

    /// side x side gray pixels of the face in `image` (gray8 or rgb24).
    public func crop(_ image: Image, box: Box, landmarks: FaceLandmarks?) -> [UInt8] {
        let map = map(box: box, landmarks: landmarks)
        var values = [Float](repeating: 0, count: side * side)
        image.pixels.withUnsafeBufferPointer { source in
            values.withUnsafeMutableBufferPointer { target in
                switch image.format {
                case .gray8:
                    warpGray(source, width: image.width, height: image.height, map: map, outputSide: side, into: target)
                case .rgb24:
                    warpLuma(source, width: image.width, height: image.height, map: map, outputSide: side, into: target)
                }
            }
        }
        return values.map { UInt8(max(0, min(255, $0.rounded()))) }
    }
}
