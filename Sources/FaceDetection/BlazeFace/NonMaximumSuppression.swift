import VisionCore

/// MediaPipe's weighted non-maximum suppression (NonMaxSuppressionCalculator, WEIGHTED): take the best remaining
/// detection, gather every remaining one overlapping it by more than `iouThreshold` (itself included), and emit
/// their score-weighted mean box and keypoints with the best one's score. Stops at the first detection below
/// `minimumScore`. Ties in score keep input order.
public func weightedNonMaximumSuppression(_ detections: [Detection], iouThreshold: Float,
                                          minimumScore: Float? = nil) -> [Detection] {
    var remaining = detections.indices.sorted {
        detections[$0].score != detections[$1].score ? detections[$0].score > detections[$1].score : $0 < $1
    }
    var kept: [Detection] = []
    var rest: [Int] = []
    while let best = remaining.first {
        let top = detections[best]
        if let minimumScore, top.score < minimumScore { break }
        rest.removeAll(keepingCapacity: true)
        var totalScore: Float = 0
        var corners = (minX: Float(0), minY: Float(0), maxX: Float(0), maxY: Float(0))
        // Eyes first, then every keypoint.
        var points = [Point](repeating: Point(x: 0, y: 0), count: top.landmarks.map { 2 + $0.all.count } ?? 0)
        for index in remaining {
            let candidate = detections[index]
            guard candidate.box.intersectionOverUnion(top.box) > iouThreshold else {
                rest.append(index)
                continue
            }
            let weight = candidate.score
            totalScore += weight
            corners.minX += candidate.box.minX * weight
            corners.minY += candidate.box.minY * weight
            corners.maxX += candidate.box.maxX * weight
            corners.maxY += candidate.box.maxY * weight
            if let landmarks = candidate.landmarks, landmarks.all.count + 2 == points.count {
                for (k, point) in ([landmarks.leftEye, landmarks.rightEye] + landmarks.all).enumerated() {
                    points[k].x += point.x * weight
                    points[k].y += point.y * weight
                }
            }
        }
        if totalScore > 0 {
            var merged = top
            merged.box = Box(minX: corners.minX / totalScore, minY: corners.minY / totalScore,
                             maxX: corners.maxX / totalScore, maxY: corners.maxY / totalScore)
            if top.landmarks != nil {
                let mean = points.map { Point(x: $0.x / totalScore, y: $0.y / totalScore) }
                merged.landmarks = FaceLandmarks(leftEye: mean[0], rightEye: mean[1], all: Array(mean[2...]))
            }
            kept.append(merged)
        } else {
            kept.append(top)
        }
        // A detection that overlaps nothing, not even itself (an empty box), would loop forever.
        if rest.count == remaining.count { break }
        swap(&remaining, &rest)
    }
    return kept
}
