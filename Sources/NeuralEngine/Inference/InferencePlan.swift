/// A layer that can run evaluation-mode forward into memory someone else owns: what an `InferencePlan` calls.
/// Shapes here leave out the batch axis ("items"); each layer implements this in its own file, next to its
/// forward and backward, through the same pointer-level kernel as its forward.
protocol InferenceLayer: Layer {
    /// Shape of one output item for one input item of `itemShape`; checks that the layer accepts it.
    func inferenceOutputShape(for itemShape: [Int]) -> [Int]
    /// Whether `infer` may be handed the same memory as input and output (it must also work with distinct ones).
    var infersInPlace: Bool { get }
    /// Grows the per-worker scratch areas to what a batch of up to `batch` items needs (nothing by default).
    func reserveInferenceScratch(for itemShape: [Int], batch: Int, in areas: [ConvolutionScratch])
    /// `forward(_, training: false)` of `batch` items of `itemShape` from `input` into `output`, allocating nothing.
    func infer(_ input: UnsafePointer<Float>, itemShape: [Int], batch: Int,
               into output: UnsafeMutablePointer<Float>, scratch: [ConvolutionScratch])
}

extension InferenceLayer {
    var infersInPlace: Bool { false }
    func reserveInferenceScratch(for itemShape: [Int], batch: Int, in areas: [ConvolutionScratch]) {}
}

/// Evaluation-mode forward of a layer stack with every activation and scratch buffer allocated once, so that
/// steady-state calls allocate nothing: activations alternate between two buffers sized for the largest layer
/// output at `maximumBatch` items (in-place layers such as ReLU write over their input), convolutions share one
/// im2col scratch area per worker, and larger batches run in chunks of `maximumBatch`. A ReLU or PReLU right
/// after a convolution is applied by the convolution as it writes its output (`OutputActivation`).
///
/// The plan holds the layers, not copies of their weights: it always runs the current parameters. Results equal
/// `forward(_, training: false)` of the same stack (same kernels; bit for bit at batches up to `maximumBatch`).
/// Not for concurrent use: one plan per thread.
public final class InferencePlan {
    /// Shape of one input item, without the batch axis, e.g. [1, 48, 48].
    public let inputItemShape: [Int]
    /// Shape of one output item, e.g. [7].
    public let outputItemShape: [Int]
    /// Items per pass; larger batches are split.
    public let maximumBatch: Int

    private struct Step {
        let layer: any InferenceLayer
        let itemShape: [Int]
        let inPlace: Bool
        /// A ReLU or PReLU right after a convolution, applied by the convolution as it writes (`OutputActivation`).
        let foldedActivation: FoldedActivation?
    }

    private let steps: [Step]
    private let inputItemCount: Int
    private let outputItemCount: Int
    /// The two activation buffers, each [maximumBatch, largest item].
    private let buffers: (UnsafeMutableBufferPointer<Float>, UnsafeMutableBufferPointer<Float>)
    /// One per worker, shared by the convolutions (they run one after another).
    private let areas: [ConvolutionScratch]

    /// Whether every layer of `network` (nested `Sequential`s flattened) can be planned. Supported: Conv2d,
    /// BatchNorm, ReLU, PReLU, MaxPool2d, GlobalAveragePool, Flatten, Dropout, Linear, Softmax.
    public static func canPlan(_ network: Layer) -> Bool {
        flattened(network).allSatisfy { $0 is any InferenceLayer }
    }

    private static func flattened(_ layer: Layer) -> [Layer] {
        (layer as? Sequential).map { $0.layers.flatMap(flattened) } ?? [layer]
    }

    /// Plans `network` for inputs of `inputItemShape` (no batch axis) in batches of up to `maximumBatch`.
    public init(_ network: Layer, inputItemShape: [Int], maximumBatch: Int) {
        precondition(maximumBatch > 0, "maximumBatch must be positive")
        precondition(inputItemShape.allSatisfy { $0 > 0 }, "bad input item shape \(inputItemShape)")
        self.inputItemShape = inputItemShape
        self.maximumBatch = maximumBatch
        let workerCount = Parallelism.workers
        areas = (0..<workerCount).map { _ in ConvolutionScratch() }

        var steps: [Step] = []
        var shape = inputItemShape
        var largest = 0
        let layers = InferencePlan.flattened(network)
        var index = 0
        while index < layers.count {
            guard let layer = layers[index] as? any InferenceLayer else {
                preconditionFailure("InferencePlan cannot run \(type(of: layers[index])) (see InferencePlan.canPlan)")
            }
            index += 1
            var folded: FoldedActivation? = nil
            if let convolution = layer as? Conv2d, index < layers.count {
                folded = FoldedActivation(layers[index], channels: convolution.outChannels)
                if folded != nil { index += 1 }
            }
            // The first step reads the caller's input, which it must not overwrite.
            steps.append(Step(layer: layer, itemShape: shape, inPlace: layer.infersInPlace && !steps.isEmpty,
                              foldedActivation: folded))
            layer.reserveInferenceScratch(for: shape, batch: maximumBatch, in: areas)
            shape = layer.inferenceOutputShape(for: shape)
            largest = max(largest, shape.reduce(1, *))
        }
        self.steps = steps
        outputItemShape = shape
        inputItemCount = inputItemShape.reduce(1, *)
        outputItemCount = shape.reduce(1, *)
        let size = max(1, largest * maximumBatch)
        // Left unfilled: every step writes its output before the next reads it, and pages nobody writes (the
        // rows of batch items a call does not use) then cost no memory: 19 MB of the classifier's 16-item plan.
        buffers = (.allocate(capacity: size), .allocate(capacity: size))
    }

    deinit {
        buffers.0.deallocate()
        buffers.1.deallocate()
    }

    /// Runs `count` items packed in `input` and writes their outputs, packed, to the front of `output`.
    /// Allocates nothing when `output` is uniquely referenced and already large enough.
    public func run(_ input: [Float], count: Int, into output: inout [Float]) {
        precondition(input.count >= count * inputItemCount, "input holds fewer than \(count) items of \(inputItemShape)")
        precondition(output.count >= count * outputItemCount, "output has room for fewer than \(count) items")
        input.withUnsafeBufferPointer { source in
            output.withUnsafeMutableBufferPointer { target in
                run(source.baseAddress!, count: count, into: target.baseAddress!)
            }
        }
    }

    /// The network's output for a batch [N, inputItemShape...] (allocates the result only).
    public func run(_ input: Tensor) -> Tensor {
        precondition(input.rank == inputItemShape.count + 1 && Array(input.shape.dropFirst()) == inputItemShape,
                     "plan expects [N] + \(inputItemShape), got \(input.shape)")
        let count = input.shape[0]
        var output = [Float](repeating: 0, count: count * outputItemCount)
        run(input.storage, count: count, into: &output)
        return Tensor(shape: [count] + outputItemShape, storage: output)
    }

    /// The pointer-level entry: chunks of up to `maximumBatch` items.
    func run(_ input: UnsafePointer<Float>, count: Int, into output: UnsafeMutablePointer<Float>) {
        var start = 0
        while start < count {
            let batch = min(maximumBatch, count - start)
            runChunk(input + start * inputItemCount, batch: batch, into: output + start * outputItemCount)
            start += batch
        }
    }

    private func runChunk(_ input: UnsafePointer<Float>, batch: Int, into output: UnsafeMutablePointer<Float>) {
        var current = input
        var inFirstBuffer: Bool? = nil  // nil: still the caller's input
        for step in steps {
            let toFirst = step.inPlace ? inFirstBuffer! : !(inFirstBuffer ?? false)
            let target = (toFirst ? buffers.0 : buffers.1).baseAddress!
            if let folded = step.foldedActivation, let convolution = step.layer as? Conv2d {
                let source = current
                folded.withOutputActivation { activation in
                    convolution.infer(source, itemShape: step.itemShape, batch: batch, into: target, scratch: areas,
                                      activation: activation)
                }
            } else {
                step.layer.infer(current, itemShape: step.itemShape, batch: batch, into: target, scratch: areas)
            }
            current = UnsafePointer(target)
            inFirstBuffer = toFirst
        }
        output.update(from: current, count: batch * outputItemCount)
    }
}
