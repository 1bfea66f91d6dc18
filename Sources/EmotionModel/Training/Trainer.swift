import Foundation
import NeuralEngine
import VisionCore

/// Where a run writes: the best model, the resumable checkpoint and the per-epoch log.
public struct TrainingOutputs: Sendable {
    public var model: URL
    public var checkpoint: URL
    public var log: URL

    /// `model.safetensors` -> `model.checkpoint.safetensors`, `model.log.csv`.
    public init(model: URL) {
        self.model = model
        let stem = model.deletingPathExtension().path
        checkpoint = URL(fileURLWithPath: stem + ".checkpoint.safetensors")
        log = URL(fileURLWithPath: stem + ".log.csv")
    }
}

/// Where a run stands; saved in checkpoints, so a resumed run continues exactly.
public struct TrainingState: Codable, Sendable {
    public var epoch = 0
    public var batch = 0
    public var step = 0
    public var learningRate: Float = 0
    public var plateau = ReduceOnPlateau()
    public var bestValidationAccuracy: Float = -1
    public var bestEpoch = -1
    // Running sums of the epoch in progress.
    public var lossSum: Double = 0
    public var correct = 0
    public var seen = 0
    public var seconds: Double = 0
}

public struct TrainingProgress: Sendable {
    public let epoch: Int, epochs: Int, batch: Int, batches: Int
    public let loss: Float, accuracy: Float, learningRate: Float
    public let imagesPerSecond: Double
    /// Seconds left for the whole run at the current pace.
    public let remainingSeconds: Double
}

public struct EpochSummary: Sendable {
    public let epoch: Int
    public let learningRate: Float
    public let trainLoss: Float, trainAccuracy: Float
    public let validationLoss: Float?, validationAccuracy: Float?
    public let seconds: Double
    public let isBest: Bool

    static let csvHeader = "epoch,lr,train_loss,train_acc,val_loss,val_acc,seconds"

    var csvRow: String {
        func format(_ value: Float?) -> String { value.map { String(format: "%.6f", $0) } ?? "" }
        return "\(epoch + 1),\(String(format: "%.8f", learningRate)),\(format(trainLoss)),\(format(trainAccuracy)),"
            + "\(format(validationLoss)),\(format(validationAccuracy)),\(String(format: "%.1f", seconds))"
    }
}

public enum TrainingOutcome: Sendable {
    case finished(bestValidationAccuracy: Float?, bestEpoch: Int)
    case interrupted(epoch: Int, batch: Int)
}

/// Mini-batch training with augmentation, a learning-rate schedule, best-on-validation model selection and
/// exact resume. Every random draw is a function of (seed, epoch, batch), so stopping anywhere and resuming
/// from the checkpoint gives the same run.
public final class Trainer {
    public let options: TrainingOptions
    public let architecture: ArchitectureConfig
    public let preprocessing: InputPreprocessing
    public private(set) var state = TrainingState()
    private let network: Sequential
    private let optimizer: Optimizer
    private let training: FaceDataset
    private let validation: FaceDataset?
    private let loss: SoftmaxCrossEntropy

    public init(options: TrainingOptions, training: FaceDataset, validation: FaceDataset?) throws(EmotionModelError) {
        try options.validate()
        guard training.count >= options.batchSize else {
            throw .badDataSet("training set has \(training.count) images, fewer than one batch of \(options.batchSize)")
        }
        var options = options
        if options.inputBlurSigma == nil {
            // Measured, not assumed: validation faces sharper than the training faces get a matching low-pass.
            options.inputBlurSigma = validation.map { Sharpness.matchingBlurSigma(reference: training, sharper: $0) } ?? 0
        }
        self.options = options
        architecture = try ArchitectureConfig.named(options.architecture)
        let statistics = training.pixelStatistics
        preprocessing = InputPreprocessing(mean: statistics.mean, standardDeviation: max(statistics.standardDeviation, 1e-3),
                                           blurSigma: options.inputBlurSigma ?? 0)
        network = architecture.makeNetwork(seed: options.seed)
        self.training = training
        self.validation = validation
        loss = SoftmaxCrossEntropy(labelSmoothing: options.labelSmoothing,
                                   classWeights: options.classWeights(counts: training.classCounts))
        switch options.optimizer {
        case .adam, .adamw:
            optimizer = Adam(parameters: network.parameters, learningRate: options.learningRate,
                             weightDecay: options.weightDecay, decoupledWeightDecay: options.optimizer == .adamw)
        case .sgd:
            optimizer = SGD(parameters: network.parameters, learningRate: options.learningRate,
                            momentum: options.momentum, weightDecay: options.weightDecay, nesterov: true)
        }
        state.learningRate = options.learningRate
    }

    /// Rebuilds a run from its checkpoint; `epochs` may extend it.
    public convenience init(resumingFrom checkpoint: URL, training: FaceDataset, validation: FaceDataset?,
                            epochs: Int? = nil) throws(EmotionModelError) {
        let file: SafeTensorsFile
        do { file = try SafeTensorsFile(contentsOf: checkpoint) } catch { throw .badModelFile("\(error)") }
        let decoder = JSONDecoder()
        guard let optionsJSON = file.metadata["training_options"], let stateJSON = file.metadata["training_state"],
              var options = try? decoder.decode(TrainingOptions.self, from: Data(optionsJSON.utf8)),
              let state = try? decoder.decode(TrainingState.self, from: Data(stateJSON.utf8)) else {
            throw .badModelFile("\(checkpoint.path) is not a fer-train checkpoint (no training state)")
        }
        if let epochs { options.epochs = epochs }
        try self.init(options: options, training: training, validation: validation)
        let model = try EmotionModelFile(file: file, source: checkpoint.path)
        do {
            try network.load(stateDictionary: model.weights, prefix: "network.", source: checkpoint.path)
            let prefix = "optimizer."
            var optimizerTensors = file.tensors.filter { $0.key.hasPrefix(prefix) }
            if optimizerTensors.isEmpty {
                // Written beside the checkpoint since the optimizer state moved to a file of its own.
                let sidecar = try SafeTensorsFile(contentsOf: Trainer.optimizerStateURL(forCheckpoint: checkpoint))
                guard sidecar.metadata["step"] == String(state.step) else {
                    throw OptimizerStateError(description: "the optimizer state is from step \(sidecar.metadata["step"] ?? "?"), "
                                              + "the checkpoint from step \(state.step)")
                }
                optimizerTensors = sidecar.tensors
            }
            try optimizer.restore(Dictionary(uniqueKeysWithValues: optimizerTensors
                .map { (String($0.key.dropFirst(prefix.count)), $0.value) }))
        } catch {
            throw .badModelFile("cannot resume from \(checkpoint.path): \(error)")
        }
        self.state = state
        optimizer.learningRate = state.learningRate
    }

    /// The network being trained, as a classifier (for evaluation without saving).
    public var classifier: EmotionClassifier {
        EmotionClassifier(training: network, architecture: architecture, preprocessing: preprocessing)
    }

    public var batchesPerEpoch: Int { training.count / options.batchSize }

    private func learningRate(atStep step: Int) -> Float {
        switch options.schedule {
        case .constant: return options.learningRate
        case .plateau: return state.learningRate
        case .cosine:
            return LearningRateSchedule.cosine(peak: options.learningRate, minimum: options.minimumLearningRate,
                                               warmupSteps: options.warmupEpochs * batchesPerEpoch,
                                               totalSteps: options.epochs * batchesPerEpoch).rate(atStep: step)
        }
    }

    private func mixedSeed(epoch: Int, batch: Int, stream: UInt64) -> UInt64 {
        options.seed &* 0x9E37_79B9_7F4A_7C15 &+ UInt64(epoch) << 40 &+ UInt64(batch) << 8 &+ stream
    }

    /// The epoch's sample order.
    private func permutation(epoch: Int) -> [Int] {
        var generator = RandomGenerator(seed: mixedSeed(epoch: epoch, batch: 0xFFFFF, stream: 1))
        var order = Array(0..<training.count)
        order.shuffle(using: &generator)
        return order
    }

    private func makeBatch(indices: ArraySlice<Int>, epoch: Int, batch: Int) -> (input: Tensor, labels: [Int]) {
        let side = training.side
        let pixels = side * side
        var generator = RandomGenerator(seed: mixedSeed(epoch: epoch, batch: batch, stream: 2))
        var input = Tensor(zeros: [indices.count, 1, side, side])
        input.storage.withUnsafeMutableBufferPointer { target in
            training.pixels.withUnsafeBufferPointer { source in
                for (slot, index) in indices.enumerated() {
                    options.augmentation.apply(
                        to: UnsafeBufferPointer(rebasing: source[(index * pixels)..<((index + 1) * pixels)]),
                        side: side, normalization: preprocessing, generator: &generator,
                        into: UnsafeMutableBufferPointer(rebasing: target[(slot * pixels)..<((slot + 1) * pixels)]))
                }
            }
        }
        return (input, indices.map { training.labels[$0] })
    }

    /// Mean plain cross-entropy and accuracy on a data set, in evaluation mode.
    public func evaluate(_ dataset: FaceDataset) -> (loss: Float, accuracy: Float) {
        let probabilities = classifier.probabilities(for: dataset)
        var total: Double = 0
        var correct = 0
        for (row, label) in zip(probabilities, dataset.labels) {
            total -= log(Double(max(row[label], 1e-30)))
            if row.indices.max(by: { row[$0] < row[$1] }) == label { correct += 1 }
        }
        return (Float(total / Double(max(dataset.count, 1))), Float(correct) / Float(max(dataset.count, 1)))
    }

    public func train(outputs: TrainingOutputs, progress: (TrainingProgress) -> Void = { _ in },
                      epochEnded: (EpochSummary) -> Void = { _ in },
                      shouldStop: () -> Bool = { false }) throws(EmotionModelError) -> TrainingOutcome {
        try prepareLog(outputs.log)
        let batches = batchesPerEpoch
        while state.epoch < options.epochs {
            let order = permutation(epoch: state.epoch)
            var windowStart = Date()
            var windowImages = 0
            while state.batch < batches {
                if shouldStop() {
                    try saveCheckpoint(to: outputs.checkpoint)
                    return .interrupted(epoch: state.epoch, batch: state.batch)
                }
                let started = Date()
                let indices = order[(state.batch * options.batchSize)..<((state.batch + 1) * options.batchSize)]
                var (input, labels) = makeBatch(indices: indices, epoch: state.epoch, batch: state.batch)
                var targets = loss.targets(labels: labels, classes: architecture.classes)
                if let alpha = options.mixupAlpha, alpha > 0 {
                    // Its own stream, so runs without mixup draw exactly what they drew before it existed.
                    var generator = RandomGenerator(seed: mixedSeed(epoch: state.epoch, batch: state.batch, stream: 0x4D49_5855))
                    Mixup(alpha: alpha).apply(to: &input, targets: &targets, generator: &generator)
                }
                for (index, layer) in network.allLayers.enumerated() {
                    (layer as? Dropout)?.reseed(mixedSeed(epoch: state.epoch, batch: state.batch, stream: 3 + UInt64(index)))
                }
                optimizer.learningRate = learningRate(atStep: state.step)
                network.zeroGradients()
                let logits = network.forward(input, training: true)
                let (value, dLogits) = loss.lossAndGradient(logits: logits, targets: targets)
                _ = network.backward(dLogits)
                optimizer.step()

                for (row, label) in labels.enumerated() {
                    let scores = logits.storage[(row * architecture.classes)..<((row + 1) * architecture.classes)]
                    if scores.indices.max(by: { scores[$0] < scores[$1] })! - row * architecture.classes == label { state.correct += 1 }
                }
                state.lossSum += Double(value) * Double(labels.count)
                state.seen += labels.count
                state.batch += 1
                state.step += 1
                state.seconds += Date().timeIntervalSince(started)
                windowImages += labels.count
                let elapsed = Date().timeIntervalSince(windowStart)
                let rate = Double(windowImages) / max(elapsed, 1e-9)
                let remainingBatches = (options.epochs - state.epoch) * batches - state.batch
                progress(TrainingProgress(
                    epoch: state.epoch, epochs: options.epochs, batch: state.batch, batches: batches,
                    loss: Float(state.lossSum / Double(state.seen)), accuracy: Float(state.correct) / Float(state.seen),
                    learningRate: optimizer.learningRate, imagesPerSecond: rate,
                    remainingSeconds: Double(remainingBatches * options.batchSize) / max(rate, 1e-9)))
                if elapsed > 30 { windowStart = Date(); windowImages = 0 }
            }
            let summary = try finishEpoch(outputs: outputs)
            epochEnded(summary)
        }
        return .finished(bestValidationAccuracy: state.bestValidationAccuracy >= 0 ? state.bestValidationAccuracy : nil,
                         bestEpoch: state.bestEpoch)
    }

    private func finishEpoch(outputs: TrainingOutputs) throws(EmotionModelError) -> EpochSummary {
        let started = Date()
        let measured = validation.map(evaluate)
        let validationSeconds = Date().timeIntervalSince(started)
        let isBest = measured.map { $0.accuracy > state.bestValidationAccuracy } ?? true
        let summary = EpochSummary(
            epoch: state.epoch, learningRate: optimizer.learningRate,
            trainLoss: Float(state.lossSum / Double(max(state.seen, 1))),
            trainAccuracy: Float(state.correct) / Float(max(state.seen, 1)),
            validationLoss: measured?.loss, validationAccuracy: measured?.accuracy,
            seconds: state.seconds + validationSeconds, isBest: isBest)
        if isBest {
            state.bestValidationAccuracy = measured?.accuracy ?? state.bestValidationAccuracy
            state.bestEpoch = state.epoch
            try modelFile(extra: ["epoch": String(state.epoch + 1),
                                  "val_accuracy": measured.map { String(format: "%.4f", $0.accuracy) } ?? ""])
                .write(to: outputs.model)
        }
        if options.schedule == .plateau, let measured {
            state.learningRate = state.plateau.update(metric: measured.accuracy, rate: state.learningRate)
        }
        try appendLog(summary.csvRow, to: outputs.log)
        state.epoch += 1
        state.batch = 0
        state.lossSum = 0
        state.correct = 0
        state.seen = 0
        state.seconds = 0
        try saveCheckpoint(to: outputs.checkpoint)
        return summary
    }

    private func encoded<T: Encodable>(_ value: T) throws(EmotionModelError) -> String {
        do { return String(decoding: try JSONEncoder().encode(value), as: UTF8.self) } catch {
            throw .io("cannot encode training state: \(error)")
        }
    }

    private func modelFile(extra: [String: String]) throws(EmotionModelError) -> EmotionModelFile {
        var provenance = extra
        provenance["trained_by"] = "fer-train"
        provenance["training_options"] = try encoded(options)
        provenance["train_images"] = String(training.count)
        return EmotionModelFile(architecture: architecture, classNames: Emotion.names, preprocessing: preprocessing,
                                weights: network.stateDictionary(prefix: "network."), provenance: provenance)
    }

    /// `model.checkpoint.safetensors` -> `model.optimizer.safetensors`.
    public static func optimizerStateURL(forCheckpoint checkpoint: URL) -> URL {
        let name = checkpoint.lastPathComponent.replacingOccurrences(of: ".checkpoint.safetensors", with: "")
        return checkpoint.deletingLastPathComponent().appendingPathComponent(name + ".optimizer.safetensors")
    }

    /// The weights and position go in the checkpoint (itself a loadable model), the optimizer's moments beside it,
    /// tagged with the step so a mismatched pair is refused; each file stays a fraction of the whole.
    public func saveCheckpoint(to url: URL) throws(EmotionModelError) {
        let optimizerState = SafeTensorsFile(
            metadata: ["step": String(state.step)],
            tensors: Dictionary(uniqueKeysWithValues: optimizer.state().map { ("optimizer." + $0.key, $0.value) }))
        do { try optimizerState.write(to: Trainer.optimizerStateURL(forCheckpoint: url)) } catch {
            throw .io("\(error)")
        }
        try modelFile(extra: ["epoch": String(state.epoch)])
            .write(to: url, extraMetadata: ["training_state": try encoded(state)])
    }

    /// Keeps the rows of epochs already done (a resumed run rewrites the rest).
    private func prepareLog(_ url: URL) throws(EmotionModelError) {
        var rows = [EpochSummary.csvHeader]
        if let existing = try? String(contentsOf: url, encoding: .utf8) {
            for line in existing.split(separator: "\n").dropFirst() {
                if let epoch = Int(line.prefix { $0 != "," }), epoch <= state.epoch { rows.append(String(line)) }
            }
        }
        do {
            try FileManager.default.createDirectory(at: url.deletingLastPathComponent(), withIntermediateDirectories: true)
            try (rows.joined(separator: "\n") + "\n").write(to: url, atomically: true, encoding: .utf8)
        } catch {
            throw .io("cannot write training log \(url.path): \(error.localizedDescription)")
        }
    }

    private func appendLog(_ row: String, to url: URL) throws(EmotionModelError) {
        guard let handle = try? FileHandle(forWritingTo: url) else { throw .io("cannot append to \(url.path)") }
        defer { try? handle.close() }
        handle.seekToEndOfFile()
        handle.write(Data((row + "\n").utf8))
    }
}
