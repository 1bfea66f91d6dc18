import EmotionModel
import Foundation
import NeuralEngine

/// The model a benchmark runs: a trained file, or fresh weights of a named architecture built in memory.
enum BenchModel {
    /// FER2013's class order; only the count matters to a benchmark.
    static let classNames = ["angry", "disgust", "fear", "happy", "sad", "surprise", "neutral"]

    static func load(path: String?, architecture: ArchitectureConfig, blurSigma: Float, seed: UInt64) throws -> EmotionModelFile {
        if let path { return try EmotionModelFile(contentsOf: URL(fileURLWithPath: path)) }
        let names = architecture.classes == classNames.count ? classNames : (0..<architecture.classes).map { "class\($0)" }
        return EmotionModelFile(architecture: architecture, classNames: names,
                                preprocessing: InputPreprocessing(mean: 0.5, standardDeviation: 0.25, blurSigma: blurSigma),
                                weights: architecture.makeNetwork(seed: seed).stateDictionary(prefix: "network."),
                                provenance: ["trained_by": "fer-bench (random weights)"])
    }
}
