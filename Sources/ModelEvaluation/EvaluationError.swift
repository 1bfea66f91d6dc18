/// Why a set of labels and scores cannot be evaluated.
///
/// Thrown instead of trapping, so a command-line tool can tell the user which input was wrong.
public enum EvaluationError: Error, Equatable, Sendable, CustomStringConvertible {
    /// There is nothing to evaluate.
    case noSamples
    /// `classNames` is empty.
    case noClasses
    /// One label per probability row is required.
    case countMismatch(labels: Int, probabilityRows: Int)
    /// Every probability row needs exactly one column per class.
    case rowWidthMismatch(row: Int, width: Int, classCount: Int)
    /// A label is not a valid class index.
    case labelOutOfRange(sample: Int, label: Int, classCount: Int)
    /// A probability or score is NaN or infinite.
    case nonFiniteScore(sample: Int, column: Int)
    /// `ROCCurve` needs one positive/negative flag per score.
    case scoreCountMismatch(scores: Int, flags: Int)

    public var description: String {
        switch self {
        case .noSamples:
            "no samples to evaluate"
        case .noClasses:
            "no class names given"
        case let .countMismatch(labels, rows):
            "\(labels) labels but \(rows) probability rows"
        case let .rowWidthMismatch(row, width, classCount):
            "probability row \(row) has \(width) columns, expected one per class (\(classCount))"
        case let .labelOutOfRange(sample, label, classCount):
            "label \(label) of sample \(sample) is outside 0..<\(classCount)"
        case let .nonFiniteScore(sample, column):
            "score of sample \(sample), column \(column) is not a finite number"
        case let .scoreCountMismatch(scores, flags):
            "\(scores) scores but \(flags) positive/negative flags"
        }
    }
}
