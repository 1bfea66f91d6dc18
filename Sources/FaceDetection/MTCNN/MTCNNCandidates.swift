/// A face candidate between MTCNN stages, in facenet-pytorch's conventions: corners (x1, y1, x2, y2) in source
/// pixels, a score, and the last network's box offsets. All arithmetic in Float, in the order detect_face does
/// it, so boxes agree with the reference to float rounding.
struct MTCNNCandidate {
    var x1: Float, y1: Float, x2: Float, y2: Float
    var score: Float
    var offsets: (Float, Float, Float, Float)

    /// P-Net's cell (x, y) at `scale`: the 12 x 12 window at stride 2, mapped back to source pixels and
    /// floored (generateBoundingBox).
    init(cellX: Int, cellY: Int, scale: Float, score: Float, offsets: (Float, Float, Float, Float)) {
        x1 = ((2 * Float(cellX) + 1) / scale).rounded(.down)
        y1 = ((2 * Float(cellY) + 1) / scale).rounded(.down)
        x2 = ((2 * Float(cellX) + 12) / scale).rounded(.down)
        y2 = ((2 * Float(cellY) + 12) / scale).rounded(.down)
        self.score = score
        self.offsets = offsets
    }

    /// After P-Net: offsets scaled by the box size without the +1 (detect_face's first-stage regression).
    mutating func regressProposal() {
        let width = x2 - x1, height = y2 - y1
        (x1, y1, x2, y2) = (x1 + offsets.0 * width, y1 + offsets.1 * height,
                            x2 + offsets.2 * width, y2 + offsets.3 * height)
    }

    /// After R-Net and O-Net: bbreg, with inclusive sizes (+1).
    mutating func regress() {
        let width = x2 - x1 + 1, height = y2 - y1 + 1
        (x1, y1, x2, y2) = (x1 + offsets.0 * width, y1 + offsets.1 * height,
                            x2 + offsets.2 * width, y2 + offsets.3 * height)
    }

    /// rerec: the square of side max(width, height) on the same centre.
    mutating func square() {
        let height = y2 - y1, width = x2 - x1
        let side = max(width, height)
        x1 = x1 + width * 0.5 - side * 0.5
        y1 = y1 + height * 0.5 - side * 0.5
        x2 = x1 + side
        y2 = y1 + side
    }

    /// pad + the crop detect_face takes: corners truncated toward zero, 1-based x, y clamped to >= 1 and
    /// ex, ey to the image, pixels (x - 1) ..< ex by (y - 1) ..< ey. The crop is not padded out to a square
    /// where the box leaves the image: the network sees the clipped part stretched. Nil for an empty crop.
    func crop(imageWidth: Int, imageHeight: Int) -> PixelRegion? {
        func truncated(_ value: Float) -> Int? {
            guard value.isFinite, abs(value) < 1e9 else { return nil }
            return Int(value)
        }
        guard var x = truncated(x1), var y = truncated(y1), var ex = truncated(x2), var ey = truncated(y2) else {
            return nil
        }
        x = max(x, 1)
        y = max(y, 1)
        ex = min(ex, imageWidth)
        ey = min(ey, imageHeight)
        guard ex > x - 1, ey > y - 1 else { return nil }
        return PixelRegion(x: x - 1, y: y - 1, width: ex - x + 1, height: ey - y + 1)
    }
}

enum MTCNNSuppression {
    /// torchvision's nms (what batched_nms does for one image): visit by descending score (stable), keep a
    /// box unless it overlaps a kept one by IoU > threshold, areas without +1. Kept indices, best first.
    static func intersectionOverUnion(_ boxes: [MTCNNCandidate], threshold: Float) -> [Int] {
        suppress(boxes, threshold: threshold) { a, b in
            let width = max(0, min(a.x2, b.x2) - max(a.x1, b.x1))
            let height = max(0, min(a.y2, b.y2) - max(a.y1, b.y1))
            let intersection = width * height
            let areaA = (a.x2 - a.x1) * (a.y2 - a.y1), areaB = (b.x2 - b.x1) * (b.y2 - b.y1)
            return intersection / (areaA + areaB - intersection)
        }
    }

    /// detect_face's nms_numpy with method 'Min': inclusive sizes (+1), overlap = intersection over the
    /// smaller area, drop when > threshold (keep when <= threshold).
    static func intersectionOverMinimum(_ boxes: [MTCNNCandidate], threshold: Float) -> [Int] {
        suppress(boxes, threshold: threshold) { a, b in
            let width = max(0, min(a.x2, b.x2) - max(a.x1, b.x1) + 1)
            let height = max(0, min(a.y2, b.y2) - max(a.y1, b.y1) + 1)
            let areaA = (a.x2 - a.x1 + 1) * (a.y2 - a.y1 + 1), areaB = (b.x2 - b.x1 + 1) * (b.y2 - b.y1 + 1)
            return width * height / min(areaA, areaB)
        }
    }

    private static func suppress(_ boxes: [MTCNNCandidate], threshold: Float,
                                 overlap: (MTCNNCandidate, MTCNNCandidate) -> Float) -> [Int] {
        let order = boxes.indices.sorted {
            boxes[$0].score != boxes[$1].score ? boxes[$0].score > boxes[$1].score : $0 < $1
        }
        var suppressed = [Bool](repeating: false, count: boxes.count)
        var kept: [Int] = []
        for (position, index) in order.enumerated() where !suppressed[index] {
            kept.append(index)
            let best = boxes[index]
            for other in order[(position + 1)...] where !suppressed[other] {
                if overlap(best, boxes[other]) > threshold { suppressed[other] = true }
            }
        }
        return kept
    }
}
