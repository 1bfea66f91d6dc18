import ArgumentParser
import EmotionModel
import NeuralEngine

/// Training throughput of the engine alone: forward, loss, backward and an AdamW step on one fixed random batch
/// (no data loading or augmentation), as fer-train runs them (label smoothing 0.1, weight decay 0.05 on weights).
struct TrainBenchmark: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "train", abstract: "Training images/s: forward + backward + AdamW step on random inputs and labels.")

    @OptionGroup var engine: EngineOptions

    @Option(help: "Images per batch.")
    var batchSize = 64

    @Option(help: "Seconds of timed steps (after warm-up); at least --minimum-steps are timed.")
    var seconds: Double = 10

    @Option(help: "Untimed steps first (buffers sized, caches and allocator warm).")
    var warmupSteps = 2

    @Option(help: "Fewest timed steps.")
    var minimumSteps = 3

    @Option(help: "Seed of the weights, inputs and labels.")
    var seed: UInt64 = 1

    func validate() throws {
        guard batchSize > 0, seconds >= 0, warmupSteps >= 0, minimumSteps > 0 else {
            throw ValidationError("--batch-size and --minimum-steps must be positive; --seconds and --warmup-steps not negative")
        }
    }

    struct Result: Encodable {
        let engine = "ours"
        let measurement = "train"
        let arch: String
        let threads: Int
        let batchSize: Int
        let parameters: Int
        let steps: Int
        let seconds: Double
        let imagesPerSecond: Double
        let step: LatencySummary
        let cpuSecondsPerStep: Double
        let loadAverage: Double
    }

    func run() throws {
        let threads = engine.applyThreads(default: Parallelism.workers)
        let architecture = engine.architecture
        let load = loadAverage()
        let network = architecture.makeNetwork(seed: seed)
        let optimizer = Adam(parameters: network.parameters, learningRate: 1e-3, weightDecay: 0.05, decoupledWeightDecay: true)
        let loss = SoftmaxCrossEntropy(labelSmoothing: 0.1)
        var generator = RandomGenerator(seed: seed &+ 100)
        let side = architecture.inputSize
        let input = Tensor(normal: [batchSize, 1, side, side], standardDeviation: 1, generator: &generator)
        let labels = (0..<batchSize).map { _ in Int(generator.next() % UInt64(architecture.classes)) }

        func step() {
            network.zeroGradients()
            let logits = network.forward(input, training: true)
            let (_, dLogits) = loss.lossAndGradient(logits: logits, targets: loss.targets(labels: labels, classes: architecture.classes))
            _ = network.backward(dLogits)
            optimizer.step()
        }

        for _ in 0..<warmupSteps { step() }
        var durations: [Double] = []
        let stopwatch = Stopwatch()
        while durations.count < minimumSteps || stopwatch.wallSeconds < seconds {
            durations.append(Stopwatch.time(step))
        }
        let elapsed = stopwatch.wallSeconds
        emit(Result(arch: architecture.name, threads: threads, batchSize: batchSize,
                    parameters: network.trainableParameterCount, steps: durations.count, seconds: elapsed,
                    imagesPerSecond: Double(durations.count * batchSize) / elapsed, step: LatencySummary(seconds: durations),
                    cpuSecondsPerStep: stopwatch.cpuSeconds / Double(durations.count), loadAverage: load))
    }
}
