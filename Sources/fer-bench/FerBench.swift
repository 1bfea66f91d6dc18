import ArgumentParser
import EmotionModel
import Foundation
import NeuralEngine

@main
struct FerBench: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "fer-bench",
        abstract: "Benchmarks of our engine on the emotion CNN: training images/s and single-face inference latency.",
        discussion: """
        Each measurement prints one JSON line on standard output, for Scripts/bench_engine.sh to set side by side \
        with PyTorch and ONNX Runtime (Scripts/bench_engine_reference.py). `logits` prints a fixed input's logits \
        so the reference can prove it runs the same network.

        Numbers taken while other work runs on the cores (a training run) are contended: each line carries the \
        1-minute load average at its start so such runs can be told apart.
        """,
        subcommands: [TrainBenchmark.self, InferBenchmark.self, LogitsCommand.self, DetectBenchmark.self, TrackBenchmark.self])
}

/// Flags shared by every subcommand.
struct EngineOptions: ParsableArguments {
    @Option(name: .customLong("arch"), help: "Architecture: \(ArchitectureConfig.names.joined(separator: ", ")).")
    var architectureName = "vgg"

    @Option(help: "Worker threads of the engine (default: 1 for inference, all cores for training).")
    var threads: Int?

    func validate() throws {
        if let threads, threads < 1 { throw ValidationError("--threads must be positive") }
        do { _ = try ArchitectureConfig.named(architectureName) } catch { throw ValidationError(error.description) }
    }

    var architecture: ArchitectureConfig { try! ArchitectureConfig.named(architectureName) }

    /// Sets the engine's worker count and returns it.
    func applyThreads(default defaultThreads: Int) -> Int {
        Parallelism.workers = threads ?? defaultThreads
        return Parallelism.workers
    }
}
