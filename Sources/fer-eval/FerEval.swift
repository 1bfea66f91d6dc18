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

    @Option(help: ArgumentHelp(
        "Select the input low-pass on --split: evaluate every sigma from START to END in steps of STEP and keep "
        + "the one whose accuracy, averaged with its two neighbours, is highest (single accuracies jump by a point "
        + "between neighbours at this sample size). The report is then of the selected sigma.",
        valueName: "start:end:step"))
    var selectInputBlur: String?

    @Option(help: ArgumentHelp("With --select-input-blur: write the model with the selected sigma to this path "
                               + "(weights unchanged; the metadata records the selection).", valueName: "path"))
    var writeModel: String?

    func validate() throws {
        if selectInputBlur != nil && inputBlur != nil {
            throw ValidationError("--select-input-blur and --input-blur exclude each other")
        }
        if writeModel != nil && selectInputBlur == nil {
            throw ValidationError("--write-model needs --select-input-blur")
        }
        if let selectInputBlur, InputBlurSelection(grid: selectInputBlur) == nil {
            throw ValidationError("--select-input-blur takes START:END:STEP with 0 <= START <= END, STEP > 0 "
                                  + "(at most 100 steps), e.g. 2.5:4.1:0.2")
        }
    }

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
        let dataset = try FER2013.load(from: data, split: split)
        if let selectInputBlur {
            try selectBlur(InputBlurSelection(grid: selectInputBlur)!, model: &modelFile, source: modelURL.path, on: dataset)
            if let writeModel {
                try modelFile.write(to: URL(fileURLWithPath: writeModel))
                print("wrote \(writeModel) (input low-pass sigma \(modelFile.preprocessing.blurSigma))")
            }
        }
        let classifier = try EmotionClassifier(model: modelFile, source: modelURL.path)
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

    /// Evaluates every sigma of `grid` (without test-time augmentation), prints the table and sets the model's
    /// low-pass to the sigma with the best three-point average accuracy; the metadata records how it was chosen.
    private func selectBlur(_ grid: InputBlurSelection, model: inout EmotionModelFile, source: String,
                            on dataset: FaceDataset) throws {
        let trainedSigma = model.preprocessing.blurSigma
        var accuracies: [Double] = []
        print("input low-pass on \(split) (fer-train chose \(trainedSigma)):")
        print("  sigma  accuracy  3-point mean")
        for sigma in grid.sigmas {
            model.preprocessing.blurSigma = sigma
            let classifier = try EmotionClassifier(model: model, source: source)
            // The report's own accuracy (argmax, first class on ties), so the sweep and the report agree.
            accuracies.append(try ClassificationMetrics(labels: dataset.labels,
                                                        probabilities: classifier.probabilities(for: dataset),
                                                        classNames: classifier.classNames).accuracy)
        }
        let smoothed = InputBlurSelection.smoothed(accuracies)
        let best = InputBlurSelection.bestIndex(accuracies)!
        for (index, sigma) in grid.sigmas.enumerated() {
            print(String(format: "  %5.2f  %7.2f%%  %10.2f%%", sigma, 100 * accuracies[index], 100 * smoothed[index])
                  + (index == best ? "  <- selected" : ""))
        }
        model.preprocessing.blurSigma = grid.sigmas[best]
        model.provenance["input_blur_selection"] = "sigma \(String(format: "%.2f", grid.sigmas[best])) selected on "
            + "\(split) (best 3-point mean accuracy over \(grid.description); fer-train's sharpness match: "
            + "\(String(format: "%.2f", trainedSigma)))"
        model.provenance["input_blur_sweep"] = zip(grid.sigmas, accuracies)
            .map { String(format: "%.2f:%.4f", $0, $1) }.joined(separator: ",")
    }
}
