import ModelEvaluation
import Testing

@Suite struct TrainingLogTests {
    @Test func readsColumnsByNameAndIgnoresExtras() throws {
        // Columns reordered, an extra column, CRLF line ends, a blank line and an empty val cell.
        let csv = "epoch,lr,train_loss,train_acc,val_loss,val_acc,seconds,grad_norm\r\n"
            + "1,0.001,1.80,0.25,1.70,0.30,61.5,3.2\r\n"
            + "\r\n"
            + "2,0.0009,1.50,0.40,,,60.0,2.9\r\n"
            + "3,0.0008,1.30,0.50,1.40,0.45,59.0,2.1\r\n"
        let log = try TrainingLog(csv: csv)
        #expect(log.entries.map(\.epoch) == [1, 2, 3])
        #expect(log.entries[0].learningRate == 0.001)
        #expect(log.entries[0].trainAccuracy == 0.25)
        #expect(log.entries[0].seconds == 61.5)
        #expect(log.entries[1].validationLoss.isNaN && log.entries[1].validationAccuracy.isNaN)
        #expect(log.bestValidationEntry?.epoch == 3)

        let reordered = try TrainingLog(csv: "val_acc,epoch,seconds,lr,train_acc,val_loss,train_loss\n0.5,7,10,0.1,0.6,1.1,0.9\n")
        #expect(reordered.entries.first?.epoch == 7)
        #expect(reordered.entries.first?.trainLoss == 0.9)
        #expect(reordered.entries.first?.validationAccuracy == 0.5)
    }

    @Test func rejectsMissingColumnsAndBadCells() {
        #expect(throws: TrainingLogError.missingColumns(["val_loss", "val_acc"])) {
            try TrainingLog(csv: "epoch,lr,train_loss,train_acc,seconds\n1,0.1,1,0.5,3\n")
        }
        #expect(throws: TrainingLogError.malformedRow(line: 2, reason: "train_loss 'abc' is not a number")) {
            try TrainingLog(csv: "epoch,lr,train_loss,train_acc,val_loss,val_acc,seconds\n1,0.1,abc,0.5,1,0.5,3\n")
        }
        #expect(throws: TrainingLogError.empty) { try TrainingLog(csv: "\n\n") }
    }
}
