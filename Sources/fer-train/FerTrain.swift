import ArgumentParser
import EmotionModel
import Foundation
import MediaIO
import NeuralEngine
import VisionCore

@main
struct FerTrain: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "fer-train",
        abstract: "Train a facial-emotion CNN on FER2013 with our own engine.",
        discussion: """
        Reads FER2013 as a folder tree (<data>/<split>/<class>/*.jpg, the Kaggle layout) or as the original \
        fer2013.csv (emotion,pixels,Usage; splits train = Training, val = PublicTest, test = PrivateTest). \
        Images are decoded once and cached next to the data.

        Writes three files next to --output:
          MODEL.safetensors             the best model on the validation split (what fer-annotate loads)
          MODEL.checkpoint.safetensors  weights and position after every epoch and on Ctrl-C
          MODEL.optimizer.safetensors   the optimizer's state for that checkpoint
          MODEL.log.csv                 epoch,lr,train_loss,train_acc,val_loss,val_acc,seconds

        Resume an interrupted run, exactly where it stopped, with --resume (options come from the checkpoint; \
        --epochs may extend the run).

        Example:
          fer-train --data data/fer2013 --arch vgg --epochs 50 -o runs/vgg/fer-vgg.safetensors
        """)

    @Option(name: .long, help: "FER2013 folder (with train/ and val/ inside) or fer2013.csv.")
    var data: String

    @Option(name: [.customShort("o"), .long], help: "Path of the best model; checkpoint and log go beside it.")
    var output: String

    @Option(name: .customLong("arch"), help: "Architecture: \(ArchitectureConfig.names.joined(separator: ", ")).")
    var architecture = "vgg"

    @Option(help: "Epochs to train (with --resume: extends the run to this many).")
    var epochs: Int?

    @Option(help: "Images per batch.")
    var batchSize = 64

    @Option(help: "Optimizer: adamw (decoupled weight decay), adam, sgd (Nesterov momentum).")
    var optimizer = TrainingOptions.OptimizerKind.adamw

    @Option(name: .customLong("lr"), help: "Peak learning rate.")
    var learningRate: Float = 1e-3

    @Option(name: .customLong("min-lr"), help: "Final learning rate of the cosine schedule.")
    var minimumLearningRate: Float = 1e-5

    @Option(help: "Learning-rate schedule: cosine (with warm-up), plateau (halve after 3 flat epochs), constant.")
    var schedule = TrainingOptions.ScheduleKind.cosine

    @Option(help: "Linear warm-up epochs of the cosine schedule.")
    var warmupEpochs = 2

    @Option(help: "Weight decay (decoupled for adamw, L2 otherwise); not applied to biases or batch norm.")
    var weightDecay: Float = 0.05

    @Option(help: "SGD momentum.")
    var momentum: Float = 0.9

    @Option(help: "Label smoothing of the cross-entropy targets.")
    var labelSmoothing: Float = 0.1

    @Option(help: "Class weights in the loss: none, balanced (n / (K n_k)), sqrt (square root of balanced).")
    var classWeighting = TrainingOptions.ClassWeighting.none

    @Option(help: "Augmentation strength: 1 = rotation ±15°, zoom ±15%, shift ±10%, flips, brightness/contrast ±20%, random erasing 25%; 0 = none.")
    var augment: Float = 1

    @Option(help: "mixup alpha: blend random pairs of images and their targets with lambda ~ Beta(alpha, alpha); 0.2 is typical, 0 = off. Training accuracy is then counted against each image's own label.")
    var mixup: Float = 0

    @Option(help: ArgumentHelp(
        "Gaussian low-pass (sigma in pixels) applied to inputs at evaluation and in video, or 'auto'.",
        discussion: "auto measures the sharpness of the training and validation faces and picks the sigma that brings the validation faces to the training faces' sharpness (0 when they match)."))
    var inputBlur = "auto"

    @Option(help: "Random seed (weights, order, augmentation, dropout).")
    var seed: UInt64 = 1

    @Option(help: "OpenBLAS threads (default: all cores).")
    var threads: Int?

    @Option(help: "Training split name.")
    var trainSplit = "train"

    @Option(help: "Validation split for model selection ('none' to train without).")
    var valSplit = "val"

    @Option(help: "Use at most this many training images per class (quick experiments).")
    var limitPerClass: Int?

    @Option(help: "Checkpoint to resume from (default: the checkpoint beside --output).")
    var resumeFrom: String?

    @Flag(help: "Resume from the checkpoint beside --output (or --resume-from).")
    var resume = false

    @Flag(help: "No progress bar.")
    var quiet = false

    func validate() throws {
        guard batchSize > 1 else { throw ValidationError("--batch-size must be at least 2") }
        guard augment >= 0 else { throw ValidationError("--augment must not be negative") }
        if let threads, threads < 1 { throw ValidationError("--threads must be positive") }
        if inputBlur != "auto" && Float(inputBlur) == nil { throw ValidationError("--input-blur takes a number or 'auto'") }
    }

    func run() throws {
        do {
            try train()
        } catch let error as EmotionModelError {
            FileHandle.standardError.write(Data("error: \(error)\n".utf8))
            throw ExitCode(2)
        }
    }

    private func train() throws {
        if let threads { Parallelism.workers = threads }
        let progressLine = ProgressLine(enabled: !quiet)
        let started = Date()
        let trainingSet = try FER2013.load(from: data, split: trainSplit) { done, total in
            progressLine.update("decoding \(trainSplit): \(done)/\(total) images")
        }
        let validationSet = valSplit == "none" ? nil : try FER2013.load(from: data, split: valSplit) { done, total in
            progressLine.update("decoding \(valSplit): \(done)/\(total) images")
        }
        let training = limitPerClass.map { trainingSet.balancedSample(perClass: $0) } ?? trainingSet
        progressLine.finish()
        log("data: \(training.count) training images \(training.classCounts), "
            + "\(validationSet?.count ?? 0) validation images (\(String(format: "%.1f", Date().timeIntervalSince(started))) s)")

        let outputs = TrainingOutputs(model: URL(fileURLWithPath: output))
        let trainer: Trainer
        if resume || resumeFrom != nil {
            let checkpoint = resumeFrom.map { URL(fileURLWithPath: $0) } ?? outputs.checkpoint
            trainer = try Trainer(resumingFrom: checkpoint, training: training, validation: validationSet, epochs: epochs)
            log("resuming \(checkpoint.path) at epoch \(trainer.state.epoch + 1), batch \(trainer.state.batch)")
        } else {
            var options = TrainingOptions()
            options.architecture = architecture
            options.epochs = epochs ?? 50
            options.batchSize = batchSize
            options.optimizer = optimizer
            options.learningRate = learningRate
            options.minimumLearningRate = minimumLearningRate
            options.schedule = schedule
            options.warmupEpochs = warmupEpochs
            options.weightDecay = weightDecay
            options.momentum = momentum
            options.labelSmoothing = labelSmoothing
            options.classWeighting = classWeighting
            options.augmentation = .standard(strength: augment)
            options.seed = seed
            options.inputBlurSigma = Float(inputBlur)
            options.mixupAlpha = mixup > 0 ? mixup : nil
            trainer = try Trainer(options: options, training: training, validation: validationSet)
        }
        let architecture = trainer.architecture
        log("model: \(architecture.name) \(architecture.widths), "
            + "\(architecture.makeNetwork(seed: 0).trainableParameterCount) parameters, "
            + "\(String(format: "%.3f", Double(architecture.multiplyAccumulates) * 2e-9)) GFLOP per image; "
            + "\(trainer.options.epochs) epochs of \(trainer.batchesPerEpoch) batches, \(Parallelism.workers) threads; "
            + "input low-pass sigma \(trainer.preprocessing.blurSigma) px")

        StopSignal.install()
        let outcome = try trainer.train(
            outputs: outputs,
            progress: { progress in
                progressLine.update(String(
                    format: "epoch %d/%d %@ %d/%d loss %.4f acc %.3f lr %.2e %.0f img/s ETA %@",
                    progress.epoch + 1, progress.epochs, bar(Double(progress.batch) / Double(progress.batches)),
                    progress.batch, progress.batches, progress.loss, progress.accuracy, progress.learningRate,
                    progress.imagesPerSecond, duration(progress.remainingSeconds)))
            },
            epochEnded: { summary in
                progressLine.finish()
                var line = String(format: "epoch %d: train loss %.4f acc %.4f", summary.epoch + 1, summary.trainLoss, summary.trainAccuracy)
                if let loss = summary.validationLoss, let accuracy = summary.validationAccuracy {
                    line += String(format: ", val loss %.4f acc %.4f", loss, accuracy)
                }
                line += String(format: ", lr %.2e, %.0f s", summary.learningRate, summary.seconds) + (summary.isBest ? " (best, saved)" : "")
                log(line)
            },
            shouldStop: { StopSignal.isRequested })
        progressLine.finish()
        switch outcome {
        case .interrupted(let epoch, let batch):
            log("stopped by \(StopSignal.signalName ?? "request") at epoch \(epoch + 1), batch \(batch); "
                + "checkpoint \(outputs.checkpoint.path); continue with --resume")
            throw ExitCode(130)
        case .finished(let best, let bestEpoch):
            if let best {
                log(String(format: "done: best val accuracy %.4f at epoch %d -> %@", best, bestEpoch + 1, outputs.model.path))
            } else {
                log("done -> \(outputs.model.path)")
            }
        }
    }

    private func log(_ message: String) {
        FileHandle.standardError.write(Data((message + "\n").utf8))
    }
}

extension TrainingOptions.OptimizerKind: ExpressibleByArgument {}
extension TrainingOptions.ScheduleKind: ExpressibleByArgument {}
extension TrainingOptions.ClassWeighting: ExpressibleByArgument {}

private func bar(_ fraction: Double, width: Int = 20) -> String {
    let filled = Int((fraction * Double(width)).rounded(.down))
    return "[" + String(repeating: "#", count: filled) + String(repeating: ".", count: max(0, width - filled)) + "]"
}

private func duration(_ seconds: Double) -> String {
    guard seconds.isFinite else { return "?" }
    let total = Int(seconds)
    return total >= 3600 ? String(format: "%dh%02dm", total / 3600, total % 3600 / 60)
        : String(format: "%dm%02ds", total / 60, total % 60)
}

/// One self-overwriting status line on a terminal; silent when stderr is not a terminal, except that
/// it prints a plain line at most once a minute so logs of background runs show progress.
final class ProgressLine: @unchecked Sendable {
    private let enabled: Bool
    private let isTerminal = isatty(STDERR_FILENO) != 0
    private var lastPlain = Date.distantPast
    private var lastDraw = Date.distantPast
    private var active = false
    private let lock = NSLock()

    init(enabled: Bool) { self.enabled = enabled }

    func update(_ text: String) {
        guard enabled else { return }
        lock.lock(); defer { lock.unlock() }
        let now = Date()
        if isTerminal {
            guard now.timeIntervalSince(lastDraw) > 0.2 else { return }
            lastDraw = now
            FileHandle.standardError.write(Data(("\r\u{1B}[K" + text).utf8))
            active = true
        } else if now.timeIntervalSince(lastPlain) >= 60 {
            lastPlain = now
            FileHandle.standardError.write(Data((text + "\n").utf8))
        }
    }

    func finish() {
        lock.lock(); defer { lock.unlock() }
        if active { FileHandle.standardError.write(Data("\n".utf8)); active = false }
    }
}
