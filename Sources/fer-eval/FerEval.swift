import ArgumentParser
import EmotionModel
import Foundation
import ModelEvaluation
import NeuralEngine

@main
struct FerEval: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "fer-eval",
        abstract: "Evaluate an emotion model on FER2013 and write an HTML report.",
        discussion: """
        Prints accuracy and per-class precision, recall, F1 and support, and writes a report folder:
          report.html                 self-contained page: confusion matrices, ROC curves with AUC,
                                      learning curves (with --log), most confused pairs
          metrics.json                every number in the report
          confusion_counts.svg, confusion_normalized.svg, roc.svg, learning_curves.svg

        Example:
          fer-eval --model runs/vgg/fer-vgg.safetensors --data data/fer2013 --split val --tta
        """)

    @Option(help: "Model file written by fer-train.")
    var model: String

    @Option(help: "FER2013 folder (with <split>/<class>/ inside) or fer2013.csv.")
    var data: String

    @Option(help: "Split to evaluate: val (PublicTest), test (PrivateTest), train, or a folder name.")
    var split = "val"

    @Flag(help: "Test-time augmentation: average over mirror images and 2-pixel shifts (10 views).")
    var tta = false

    @Option(help: "Training log CSV for the learning curves (default: MODEL.log.csv when present).")
    var log: String?

    @Option(help: "Report folder.")
    var report = "fer-eval-report"

    @Option(help: "Worker threads (default: all cores).")
    var threads: Int?

    @Option(help: ArgumentHelp("Replace the model's input low-pass (Gaussian sigma in pixels, 0 for none), to measure "
                               + "how accuracy depends on it.", valueName: "sigma"))
    var inputBlur: Float?

    func run() throws {
        do {
            try evaluate()
        } catch let error as EmotionModelError {
            FileHandle.standardError.write(Data("error: \(error)\n".utf8))
            throw ExitCode(2)
        } catch let error as TrainingLogError {
            FileHandle.standardError.write(Data("error: training log: \(error)\n".utf8))
            throw ExitCode(2)
        }
    }

    private func evaluate() throws {
        if let threads { Parallelism.workers = threads }
        let modelURL = URL(fileURLWithPath: model)
        var modelFile = try EmotionModelFile(contentsOf: modelURL)
        if let inputBlur {
            guard inputBlur >= 0 else { throw ValidationError("--input-blur must be 0 or more") }
            modelFile.preprocessing.blurSigma = inputBlur
        }
        let classifier = try EmotionClassifier(model: modelFile, source: modelURL.path)
        let dataset = try FER2013.load(from: data, split: split)
        let started = Date()
        let probabilities = tta ? classifier.testTimeAugmentedProbabilities(for: dataset)
            : classifier.probabilities(for: dataset)
        let seconds = Date().timeIntervalSince(started)
        let metrics = try ClassificationMetrics(labels: dataset.labels, probabilities: probabilities,
                                                classNames: classifier.classNames)
        let logPath = log ?? (modelURL.deletingPathExtension().path + ".log.csv")
        let trainingLog: TrainingLog?
        if FileManager.default.fileExists(atPath: logPath) {
            trainingLog = try TrainingLog(contentsOf: URL(fileURLWithPath: logPath))
        } else if log != nil {
            throw EmotionModelError.dataNotFound("training log not found: \(logPath)")
        } else {
            trainingLog = nil
        }
        var metadata: [(String, String)] = [
            ("Model", modelURL.lastPathComponent),
            ("Architecture", "\(classifier.architecture.name) \(classifier.architecture.widths)"),
            ("Data", data),
            ("Split", split),
            ("Test-time augmentation", tta ? "mirror + 4 shifts (10 views)" : "none"),
        ]
        if let epoch = classifier.provenance["epoch"] { metadata.append(("Selected epoch", epoch)) }
        metadata.append(("Inference", String(format: "%.1f s, %.0f images/s", seconds, Double(dataset.count) / seconds)))
        let folder = URL(fileURLWithPath: report)
        try EvaluationReport.write(metrics: metrics, trainingLog: trainingLog, metadata: metadata, to: folder,
                                   title: "FER2013 \(split): \(modelURL.lastPathComponent)")
        print(metrics.summaryText())
        print("report: \(folder.appendingPathComponent(EvaluationReport.FileName.html).path)")
    }
}
