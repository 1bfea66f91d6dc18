import ArgumentParser
import EmotionModel
import Foundation
import NeuralEngine

/// Logits of a model file on a deterministic input, for the reference script to reproduce: the input is written
/// as raw little-endian float32 [count, 1, side, side] so both sides read the very same numbers.
struct LogitsCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "logits", abstract: "Print a model's logits on a seeded input (and write that input to a file).")

    @Option(help: "Model file (safetensors written by fer-train).")
    var model: String

    @Option(help: "Seed of the N(0, 1) input tensor.")
    var inputSeed: UInt64 = 7

    @Option(help: "Images in the input.")
    var count = 4

    @Option(help: "Where to write the input (raw little-endian float32, [count, 1, side, side]).")
    var inputOut: String

    func validate() throws {
        guard count > 0 else { throw ValidationError("--count must be positive") }
    }

    struct Result: Encodable {
        let engine = "ours"
        let measurement = "logits"
        let model: String
        let arch: String
        let inputSeed: UInt64
        let inputFile: String
        let inputShape: [Int]
        /// BN folded into the convolutions: what EmotionClassifier runs.
        let logitsFolded: [[Float]]
        /// The unfolded network in evaluation mode (batch norms with running statistics).
        let logitsEval: [[Float]]
    }

    func run() throws {
        let file = try EmotionModelFile(contentsOf: URL(fileURLWithPath: model))
        let architecture = file.architecture
        let side = architecture.inputSize
        var generator = RandomGenerator(seed: inputSeed)
        let input = Tensor(normal: [count, 1, side, side], standardDeviation: 1, generator: &generator)
        let bytes = input.storage.withUnsafeBufferPointer { Data(buffer: $0) }  // little-endian on every target we build
        try bytes.write(to: URL(fileURLWithPath: inputOut))

        let network = try file.makeNetwork(source: model)
        let folded = foldingBatchNorms(network)
        func rows(_ logits: Tensor) -> [[Float]] {
            let classes = logits.shape[1]
            return (0..<count).map { Array(logits.storage[($0 * classes)..<(($0 + 1) * classes)]) }
        }
        emit(Result(model: model, arch: architecture.name, inputSeed: inputSeed, inputFile: inputOut, inputShape: input.shape,
                    logitsFolded: rows(folded.forward(input, training: false)),
                    logitsEval: rows(network.forward(input, training: false))))
    }
}
