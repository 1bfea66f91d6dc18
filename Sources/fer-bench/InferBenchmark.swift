import ArgumentParser
import EmotionModel
import NeuralEngine

/// Single-face inference latency, three ways: the whole `EmotionClassifier` call (pixels -> low-pass and
/// normalisation -> BN-folded network -> softmax), which is what a video frame pays per face; the folded network
/// alone on a ready tensor through the `InferencePlan` the classifier runs (`infer_plan`), which is what PyTorch
/// and ONNX Runtime are timed on; and the same network through `Sequential.forward` (`infer_network`, the
/// training code in evaluation mode, which allocates and uses im2col throughout).
struct InferBenchmark: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "infer", abstract: "Inference latency (p50/p95) of EmotionClassifier with batch norms folded.")

    @OptionGroup var engine: EngineOptions

    @Option(help: "Faces per call.")
    var batch = 1

    @Option(help: "Timed calls per measurement.")
    var iterations = 500

    @Option(help: "Untimed calls first.")
    var warmup = 50

    @Option(help: "A trained model file (its architecture overrides --arch); default: random weights of --arch.")
    var model: String?

    @Option(help: "Low-pass sigma of the in-memory model's preprocessing (the shipped model uses 2.9).")
    var blurSigma: Float = 2.9

    @Option(help: "Seed of the in-memory weights and the inputs.")
    var seed: UInt64 = 1

    func validate() throws {
        guard batch > 0, iterations > 0, warmup >= 0 else {
            throw ValidationError("--batch and --iterations must be positive; --warmup not negative")
        }
    }

    struct Result: Encodable {
        let engine = "ours"
        let measurement: String
        let arch: String
        let threads: Int
        let batch: Int
        let iterations: Int
        let latency: LatencySummary
        let perFaceMs: Double
        let cpuMsPerCall: Double
        let loadAverage: Double
    }

    func run() throws {
        let threads = engine.applyThreads(default: 1)
        let file = try BenchModel.load(path: model, architecture: engine.architecture, blurSigma: blurSigma, seed: seed)
        let architecture = file.architecture
        let classifier = try EmotionClassifier(model: file, source: model ?? "in-memory model")
        let network = foldingBatchNorms(try file.makeNetwork())

        var generator = RandomGenerator(seed: seed &+ 200)
        let side = architecture.inputSize
        let pixels = (0..<(batch * side * side)).map { _ in UInt8(truncatingIfNeeded: generator.next() >> 56) }
        let input = classifier.inputTensor(pixels: pixels, count: batch)

        func measure(_ name: String, _ call: () -> Void) {
            let load = loadAverage()
            for _ in 0..<warmup { call() }
            var durations: [Double] = []
            durations.reserveCapacity(iterations)
            let stopwatch = Stopwatch()
            for _ in 0..<iterations { durations.append(Stopwatch.time(call)) }
            let latency = LatencySummary(seconds: durations)
            emit(Result(measurement: name, arch: architecture.name, threads: threads, batch: batch, iterations: iterations,
                        latency: latency, perFaceMs: latency.p50Ms / Double(batch),
                        cpuMsPerCall: stopwatch.cpuSeconds / Double(iterations) * 1e3, loadAverage: load))
        }

        var sink: Float = 0
        let plan = InferencePlan(network, inputItemShape: Array(input.shape.dropFirst()), maximumBatch: batch)
        var logits = [Float](repeating: 0, count: batch * plan.outputItemShape.reduce(1, *))
        measure("infer_plan") {
            plan.run(input.storage, count: batch, into: &logits)
            sink += logits[0]
        }
        measure("infer_network") { sink += network.forward(input, training: false).storage[0] }
        measure("infer_classifier") { sink += classifier.probabilities(pixels: pixels, count: batch)[0][0] }
        if sink.isNaN { print("# NaN in outputs") }
    }
}
