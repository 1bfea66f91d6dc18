/// One point of a receiver operating characteristic curve.
public struct ROCPoint: Sendable, Equatable, Codable {
    public var falsePositiveRate: Double
    public var truePositiveRate: Double

    public init(falsePositiveRate: Double, truePositiveRate: Double) {
        self.falsePositiveRate = falsePositiveRate
        self.truePositiveRate = truePositiveRate
    }
}

/// The exact ROC curve of a binary decision "score >= threshold means positive".
///
/// Scores are sorted once, highest first; every distinct score is one threshold and
/// gives one point, so tied scores move the curve in a single (diagonal) step. The area
/// under this curve by the trapezoid rule therefore equals the Mann-Whitney statistic
/// P(score of a positive > score of a negative) + 0.5 P(tie).
public struct ROCCurve: Sendable {
    /// From (0, 0) to (1, 1), one point per distinct score plus the origin.
    public let points: [ROCPoint]
    /// `thresholds[i]` gives `points[i]`; the origin's threshold is +infinity.
    public let thresholds: [Double]
    public let positiveCount: Int
    public let negativeCount: Int
    /// Area under the curve, or nil when there are no positives or no negatives.
    public let auc: Double?

    /// - Throws: `EvaluationError.scoreCountMismatch` or `.nonFiniteScore`.
    public init(scores: [Double], isPositive: [Bool]) throws(EvaluationError) {
        guard scores.count == isPositive.count else {
            throw .scoreCountMismatch(scores: scores.count, flags: isPositive.count)
        }
        if let bad = scores.firstIndex(where: { !$0.isFinite }) {
            throw .nonFiniteScore(sample: bad, column: 0)
        }
        let order = scores.indices.sorted { scores[$0] > scores[$1] }
        let positives = isPositive.lazy.filter { $0 }.count
        let negatives = isPositive.count - positives

        var points = [ROCPoint(falsePositiveRate: 0, truePositiveRate: 0)]
        var thresholds = [Double.infinity]
        // The area is accumulated in counts (exact integers in Double) and scaled once.
        var truePositives = 0, falsePositives = 0
        var twiceArea = 0.0
        var start = 0
        while start < order.count {
            let threshold = scores[order[start]]
            var end = start
            var groupPositives = 0
            while end < order.count, scores[order[end]] == threshold {
                if isPositive[order[end]] { groupPositives += 1 }
                end += 1
            }
            let groupNegatives = (end - start) - groupPositives
            twiceArea += Double(groupNegatives) * Double(2 * truePositives + groupPositives)
            truePositives += groupPositives
            falsePositives += groupNegatives
            points.append(ROCPoint(
                falsePositiveRate: negatives > 0 ? Double(falsePositives) / Double(negatives) : 0,
                truePositiveRate: positives > 0 ? Double(truePositives) / Double(positives) : 0))
            thresholds.append(threshold)
            start = end
        }
        self.points = points
        self.thresholds = thresholds
        self.positiveCount = positives
        self.negativeCount = negatives
        self.auc = positives > 0 && negatives > 0
            ? twiceArea / (2 * Double(positives) * Double(negatives))
            : nil
    }

    /// The curve with fewer points, for drawing and for JSON.
    ///
    /// Interior points of straight horizontal or vertical runs are dropped (the curve is
    /// unchanged), then a point is kept only when it is at least `resolution` away from the
    /// last kept one in either coordinate. The first and last points are always kept.
    public func thinned(resolution: Double = 0.002) -> [ROCPoint] {
        ROCCurve.thin(points, resolution: resolution)
    }

    static func thin(_ points: [ROCPoint], resolution: Double) -> [ROCPoint] {
        guard points.count > 2 else { return points }
        var corners = [points[0]]
        for i in 1..<(points.count - 1) {
            let previous = corners[corners.count - 1], point = points[i], next = points[i + 1]
            let vertical = previous.falsePositiveRate == point.falsePositiveRate
                && point.falsePositiveRate == next.falsePositiveRate
            let horizontal = previous.truePositiveRate == point.truePositiveRate
                && point.truePositiveRate == next.truePositiveRate
            if !vertical && !horizontal { corners.append(point) }
        }
        corners.append(points[points.count - 1])

        var kept = [corners[0]]
        for point in corners.dropFirst().dropLast() {
            let last = kept[kept.count - 1]
            if max(abs(point.falsePositiveRate - last.falsePositiveRate),
                   abs(point.truePositiveRate - last.truePositiveRate)) >= resolution {
                kept.append(point)
            }
        }
        kept.append(corners[corners.count - 1])
        return kept
    }

    /// The macro-average curve: at every false-positive rate where some class curve has a
    /// point, the mean over `curves` of each curve's true-positive rate, interpolated
    /// linearly between points (on a vertical step the upper value counts).
    ///
    /// Curves without positives or negatives are left out. Its area is close to, but not the
    /// same as, the mean of the per-class AUCs, which is what `macroAUC` reports.
    public static func macroAverage(_ curves: [ROCCurve]) -> [ROCPoint] {
        let usable = curves.filter { $0.auc != nil }
        guard !usable.isEmpty else { return [] }
        var grid = Set<Double>()
        for curve in usable { for point in curve.points { grid.insert(point.falsePositiveRate) } }
        let rates = grid.sorted()
        var averaged = [ROCPoint(falsePositiveRate: 0, truePositiveRate: 0)]
        for rate in rates {
            var sum = 0.0
            for curve in usable { sum += curve.upperTruePositiveRate(at: rate) }
            averaged.append(ROCPoint(falsePositiveRate: rate, truePositiveRate: sum / Double(usable.count)))
        }
        return averaged
    }

    /// Linear interpolation of the true-positive rate at `rate`; the highest value where the
    /// curve has a vertical step there.
    func upperTruePositiveRate(at rate: Double) -> Double {
        // First point whose false-positive rate exceeds `rate` (rates never decrease).
        var low = 0, high = points.count
        while low < high {
            let middle = (low + high) / 2
            if points[middle].falsePositiveRate <= rate { low = middle + 1 } else { high = middle }
        }
        guard low > 0 else { return 0 }
        let left = points[low - 1]
        guard low < points.count, left.falsePositiveRate < rate else { return left.truePositiveRate }
        let right = points[low]
        let t = (rate - left.falsePositiveRate) / (right.falsePositiveRate - left.falsePositiveRate)
        return left.truePositiveRate + t * (right.truePositiveRate - left.truePositiveRate)
    }
}
