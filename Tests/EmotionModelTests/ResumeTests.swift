import EmotionModel
import Foundation
import NeuralEngine
import XCTest

final class ResumeTests: XCTestCase {
    func testInterruptedAndResumedRunEqualsUninterruptedRun() throws {
        let folder = try SharedFER2013.dataFolder()
        let training = try FER2013.load(from: folder, split: "train").balancedSample(perClass: 20)
        let validation = try FER2013.load(from: folder, split: "val").balancedSample(perClass: 5)
        var options = TrainingOptions()
        options.architecture = "mini"
        options.epochs = 2
        options.batchSize = 16
        options.warmupEpochs = 1
        options.classWeighting = .sqrt
        options.mixupAlpha = 0.2  // its draws must resume exactly too
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("resume-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: directory) }

        let straight = TrainingOutputs(model: directory.appendingPathComponent("straight.safetensors"))
        let straightTrainer = try Trainer(options: options, training: training, validation: validation)
        _ = try straightTrainer.train(outputs: straight)

        let interrupted = TrainingOutputs(model: directory.appendingPathComponent("interrupted.safetensors"))
        var batches = 0
        let first = try Trainer(options: options, training: training, validation: validation)
        // 140 images / 16 = 8 batches per epoch: stop in the middle of the second epoch.
        let outcome = try first.train(outputs: interrupted, progress: { _ in batches += 1 }, shouldStop: { batches >= 11 })
        guard case .interrupted(let epoch, let batch) = outcome else { return XCTFail("expected an interruption") }
        XCTAssertEqual(epoch, 1)
        XCTAssertEqual(batch, 3)
        let resumed = try Trainer(resumingFrom: interrupted.checkpoint, training: training, validation: validation)
        XCTAssertEqual(resumed.state.epoch, 1)
        _ = try resumed.train(outputs: interrupted)

        let expected = try SafeTensorsFile(contentsOf: straight.checkpoint).tensors.merging(
            try SafeTensorsFile(contentsOf: Trainer.optimizerStateURL(forCheckpoint: straight.checkpoint)).tensors) { $1 }
        let actual = try SafeTensorsFile(contentsOf: interrupted.checkpoint).tensors.merging(
            try SafeTensorsFile(contentsOf: Trainer.optimizerStateURL(forCheckpoint: interrupted.checkpoint)).tensors) { $1 }
        XCTAssertTrue(expected.keys.contains { $0.hasPrefix("optimizer.m.") }, "the optimizer's moments are compared too")
        XCTAssertEqual(Set(expected.keys), Set(actual.keys))
        for (name, tensor) in expected {
            // Same arithmetic in the same order: bit-identical.
            XCTAssertEqual(actual[name], tensor, "tensor \(name) differs after resume")
        }
        let straightLog = try String(contentsOf: straight.log, encoding: .utf8).split(separator: "\n")
        let resumedLog = try String(contentsOf: interrupted.log, encoding: .utf8).split(separator: "\n")
        XCTAssertEqual(resumedLog.count, 3, "header and two epochs")
        // Losses and accuracies agree; the seconds column differs.
        XCTAssertEqual(straightLog.map { $0.split(separator: ",").dropLast() }, resumedLog.map { $0.split(separator: ",").dropLast() })
    }
}
