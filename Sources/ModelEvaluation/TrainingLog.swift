import Foundation

/// One line of the per-epoch log that `fer-train` writes.
public struct TrainingLogEntry: Sendable, Codable {
    public var epoch: Int
    public var learningRate: Double
    public var trainLoss: Double
    /// Fraction 0...1.
    public var trainAccuracy: Double
    /// NaN when the cell was empty (no validation that epoch).
    public var validationLoss: Double
    /// Fraction 0...1; NaN when the cell was empty.
    public var validationAccuracy: Double
    /// Wall-clock seconds the epoch took.
    public var seconds: Double

    public init(epoch: Int, learningRate: Double, trainLoss: Double, trainAccuracy: Double,
                validationLoss: Double, validationAccuracy: Double, seconds: Double) {
        self.epoch = epoch
        self.learningRate = learningRate
        self.trainLoss = trainLoss
        self.trainAccuracy = trainAccuracy
        self.validationLoss = validationLoss
        self.validationAccuracy = validationAccuracy
        self.seconds = seconds
    }
}

/// Why a training log could not be read.
public enum TrainingLogError: Error, Equatable, Sendable, CustomStringConvertible {
    case empty
    case missingColumns([String])
    /// `line` counts from 1, the header being line 1.
    case malformedRow(line: Int, reason: String)

    public var description: String {
        switch self {
        case .empty: "the training log is empty"
        case let .missingColumns(names): "the training log lacks the column(s) \(names.joined(separator: ", "))"
        case let .malformedRow(line, reason): "training log line \(line): \(reason)"
        }
    }
}

/// The per-epoch CSV log of `fer-train`:
/// `epoch,lr,train_loss,train_acc,val_loss,val_acc,seconds`.
///
/// Columns are found by header name, so their order may change and extra columns are ignored.
/// An empty numeric cell reads as NaN (for example a missing validation value); blank lines are skipped.
public struct TrainingLog: Sendable {
    public var entries: [TrainingLogEntry]

    public static let requiredColumns = ["epoch", "lr", "train_loss", "train_acc", "val_loss", "val_acc", "seconds"]

    public init(entries: [TrainingLogEntry]) {
        self.entries = entries
    }

    public init(contentsOf url: URL) throws {
        let text = try String(contentsOf: url, encoding: .utf8)
        try self.init(csv: text)
    }

    public init(csv text: String) throws(TrainingLogError) {
        let lines = text.split(omittingEmptySubsequences: false, whereSeparator: \.isNewline)
            .enumerated()
            .map { (number: $0.offset + 1, text: $0.element.trimmingCharacters(in: .whitespaces)) }
            .filter { !$0.text.isEmpty }
        guard let header = lines.first else { throw .empty }
        let names = TrainingLog.cells(header.text).map { $0.lowercased() }
        let missing = TrainingLog.requiredColumns.filter { !names.contains($0) }
        guard missing.isEmpty else { throw .missingColumns(missing) }
        let column = Dictionary(names.enumerated().map { ($0.element, $0.offset) }, uniquingKeysWith: { first, _ in first })

        var entries: [TrainingLogEntry] = []
        for line in lines.dropFirst() {
            let cells = TrainingLog.cells(line.text)
            func number(_ name: String) throws(TrainingLogError) -> Double {
                let index = column[name]!
                guard index < cells.count else {
                    throw .malformedRow(line: line.number, reason: "\(cells.count) cells, no \(name)")
                }
                let cell = cells[index]
                if cell.isEmpty { return .nan }
                guard let value = Double(cell) else {
                    throw .malformedRow(line: line.number, reason: "\(name) '\(cell)' is not a number")
                }
                return value
            }
            let epoch = try number("epoch")
            guard epoch.isFinite, epoch == epoch.rounded() else {
                throw .malformedRow(line: line.number, reason: "epoch is not a whole number")
            }
            entries.append(TrainingLogEntry(
                epoch: Int(epoch), learningRate: try number("lr"),
                trainLoss: try number("train_loss"), trainAccuracy: try number("train_acc"),
                validationLoss: try number("val_loss"), validationAccuracy: try number("val_acc"),
                seconds: try number("seconds")))
        }
        self.entries = entries
    }

    /// The entry with the highest validation accuracy (the earliest one on a tie).
    public var bestValidationEntry: TrainingLogEntry? {
        entries.filter { $0.validationAccuracy.isFinite }
            .reduce(nil) { best, entry in
                guard let best else { return entry }
                return entry.validationAccuracy > best.validationAccuracy ? entry : best
            }
    }

    private static func cells(_ line: String) -> [String] {
        line.split(separator: ",", omittingEmptySubsequences: false).map {
            $0.trimmingCharacters(in: CharacterSet(charactersIn: " \t\"\r"))
        }
    }
}
