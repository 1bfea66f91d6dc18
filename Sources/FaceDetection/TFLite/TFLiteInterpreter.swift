import Foundation
import NeuralEngine

/// Runs a float TFLite graph on our engine. The graph is compiled once into a list of steps over engine layers:
/// weights are converted from TFLite's NHWC/OHWI layouts to NCHW at load, float16 (and int8) constants behind
/// DEQUANTIZE are widened once, a spatial PAD feeding a convolution is folded into the convolution's padding,
/// a RELU is folded into the convolution or sum it follows, and ADD/RELU run in place when nothing else reads
/// their input. An ADD of a 1x1 convolution's output (read by nothing else) folds into that convolution, with
/// the channel PAD and 2x2 MAX_POOL on the other addend's way when only the ADD reads them (BlazeFace's
/// residual shortcuts): those steps disappear. 1x1 convolutions run as sgemm on bands of the NCHW storage
/// (`PointwiseConv2d`), each band finished (bias, residual, activation) in one pass while in cache; other
/// convolutions as banded im2col + sgemm (`BandedConv2d`), depthwise ones as direct vector loops
/// (`DepthwiseConv2d`); activation buffers are kept between calls.
///
/// Layout: every rank-4 activation is held NCHW; other ranks in TFLite's own row-major shape. RESHAPE and
/// CONCATENATION convert between the two where the model mixes them (BlazeFace's heads reshape NHWC maps into
/// [1, anchors, 16]), so results match TFLite element for element.
///
/// Supported: CONV_2D, DEPTHWISE_CONV_2D, ADD, RELU, PAD, MAX_POOL_2D, RESHAPE, CONCATENATION,
/// RESIZE_BILINEAR, DEQUANTIZE (constants). Anything else fails at load with `TFLiteError.unsupportedOperator`.
/// Not thread-safe: the interpreter owns its activation buffers; use one per thread.
public final class TFLiteInterpreter {
    /// The graph input as this interpreter takes it: NCHW [1, channels, height, width].
    public let inputShape: [Int]
    /// Each output's shape as `run` returns it (NCHW for rank 4, else TFLite's shape).
    public let outputShapes: [[Int]]
    public let outputNames: [String]
    /// The operator names of the compiled steps, in order (folded PADs and DEQUANTIZEs are absent; a 1x1
    /// convolution with an ADD folded in is "CONV_2D+ADD").
    public var stepNames: [String] { steps.map(\.name) }
    /// Each step's name with its kernel and its output's shape, for profiles (shapes are known after a run).
    public var stepDescriptions: [String] { steps.map(describe) }

    private var steps: [Step] = []
    /// Activation storage, one slot per runtime tensor except where an in-place step shares its input's slot.
    private var slots: [Tensor] = []
    private let inputSlot: Int
    private let outputSlots: [Int]

    private enum Activation {
        case none, relu, relu6, reluMinus1To1, tanh
    }

    /// The residual a `residualPointwise` step adds: the first `channels` output channels get the slot's
    /// values (2x2 max-pooled when `pooled`), the rest only the bias.
    private struct Shortcut {
        let slot: Int
        let channels: Int
        let pooled: Bool
    }

    private enum Step {
        case convolution(BandedConv2d, input: Int, output: Int, Activation)
        case pointwise(PointwiseConv2d, input: Int, output: Int, Activation)
        /// A 1x1 convolution and the ADD that reads it: the other addend (read through the channel PAD and 2x2
        /// MAX_POOL that BlazeFace's shortcuts take) is added with the bias and the activation in the one pass
        /// that finishes each band of the product.
        case residualPointwise(PointwiseConv2d, input: Int, output: Int, Shortcut, Activation)
        case depthwise(DepthwiseConv2d, input: Int, output: Int, Activation)
        case add(Int, Int, output: Int, Activation)
        case activation(input: Int, output: Int, Activation)
        case pad(ZeroPad2d, input: Int, output: Int)
        case maxPool(kernel: Int, stride: Int, input: Int, output: Int)
        case resize(ResizeBilinear, input: Int, output: Int)
        /// Row-major reshape; the flags say whether the input is held NCHW (to be read as NHWC) and whether the
        /// output must be stored NCHW.
        case reshape(input: Int, output: Int, shape: [Int], inputIsChannelsFirst: Bool, outputIsChannelsFirst: Bool)
        /// Concatenation along a physical axis of the stored shapes.
        case concatenate(inputs: [Int], output: Int, axis: Int, Activation)

        /// This step with a ReLU folded in, when it has no activation of its own.
        func fusingRelu() -> Step? {
            switch self {
            case .convolution(let layer, let input, let output, .none): return .convolution(layer, input: input, output: output, .relu)
            case .pointwise(let layer, let input, let output, .none): return .pointwise(layer, input: input, output: output, .relu)
            case .depthwise(let layer, let input, let output, .none): return .depthwise(layer, input: input, output: output, .relu)
            case .add(let first, let second, let output, .none): return .add(first, second, output: output, .relu)
            case .residualPointwise(let layer, let input, let output, let shortcut, .none):
                return .residualPointwise(layer, input: input, output: output, shortcut, .relu)
            default: return nil
            }
        }

        var name: String {
            switch self {
            case .convolution, .pointwise: return "CONV_2D"
            case .residualPointwise: return "CONV_2D+ADD"
            case .depthwise: return "DEPTHWISE_CONV_2D"
            case .add: return "ADD"
            case .activation: return "RELU"
            case .pad: return "PAD"
            case .maxPool: return "MAX_POOL_2D"
            case .resize: return "RESIZE_BILINEAR"
            case .reshape: return "RESHAPE"
            case .concatenate: return "CONCATENATION"
            }
        }
    }

    public convenience init(contentsOf url: URL) throws(TFLiteError) {
        try self.init(model: TFLiteModel(contentsOf: url))
    }

    public init(model: TFLiteModel, subgraph subgraphIndex: Int = 0) throws(TFLiteError) {
        guard model.subgraphs.indices.contains(subgraphIndex) else {
            throw .malformed("no subgraph \(subgraphIndex)")
        }
        var builder = try GraphBuilder(model: model, graph: model.subgraphs[subgraphIndex])
        try builder.build()
        steps = builder.steps
        slots = [Tensor](repeating: Tensor(zeros: [0]), count: builder.slotCount)
        inputShape = builder.inputShape
        inputSlot = builder.slot(of: builder.graph.inputs[0])
        outputSlots = builder.graph.outputs.map { builder.slot(of: $0) }
        outputShapes = builder.graph.outputs.map { builder.storedShape($0) }
        outputNames = builder.graph.outputs.map { builder.graph.tensors[$0].name }
    }

    /// Runs the graph on an NCHW input of `inputShape`; returns the outputs in graph order.
    public func run(_ input: Tensor) -> [Tensor] {
        precondition(input.shape == inputShape, "input shape \(input.shape), expected \(inputShape)")
        slots[inputSlot] = input
        for step in steps { execute(step) }
        let outputs = outputSlots.map { slots[$0] }
        slots[inputSlot] = Tensor(zeros: [0])
        return outputs
    }

    /// Runs the graph once and reports each step's wall time, for benchmarks.
    public func profile(_ input: Tensor) -> [(name: String, seconds: Double)] {
        precondition(input.shape == inputShape, "input shape \(input.shape), expected \(inputShape)")
        slots[inputSlot] = input
        var times: [(name: String, seconds: Double)] = []
        for step in steps {
            let start = DispatchTime.now().uptimeNanoseconds
            execute(step)
            times.append((step.name, Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9))
        }
        slots[inputSlot] = Tensor(zeros: [0])
        return times
    }

    private func describe(_ step: Step) -> String {
        func slots(_ inputs: [Int], _ output: Int) -> String {
            "\(inputs.map { "s\($0)" }.joined(separator: ",")) -> s\(output) \(self.slots[output].shape)"
        }
        switch step {
        case .convolution(let layer, let input, let output, let activation):
            let c = layer.convolution
            return "CONV_2D \(c.kernelHeight)x\(c.kernelWidth)/\(c.stride) \(activation) \(slots([input], output))"
        case .pointwise(_, let input, let output, let activation):
            return "CONV_2D 1x1 \(activation) \(slots([input], output))"
        case .residualPointwise(_, let input, let output, let shortcut, let activation):
            return "CONV_2D 1x1 + \(shortcut.pooled ? "pooled " : "")\(shortcut.channels) channels of s\(shortcut.slot) "
                + "\(activation) \(slots([input], output))"
        case .depthwise(let layer, let input, let output, let activation):
            return "DEPTHWISE_CONV_2D \(layer.kernelHeight)x\(layer.kernelWidth)/\(layer.stride) \(activation) "
                + slots([input], output)
        case .add(let first, let second, let output, let activation):
            return "ADD \(activation) \(slots([first, second], output))"
        case .activation(let input, let output, let activation):
            return "\(activation) \(slots([input], output))"
        case .pad(_, let input, let output), .maxPool(_, _, let input, let output), .resize(_, let input, let output),
             .reshape(let input, let output, _, _, _):
            return "\(step.name) \(slots([input], output))"
        case .concatenate(let inputs, let output, _, _):
            return "\(step.name) \(slots(inputs, output))"
        }
    }

    private func execute(_ step: Step) {
        switch step {
        case .convolution(let layer, let input, let output, let activation):
            layer.forward(slots[input], into: &slots[output])
            apply(activation, to: output)
        case .pointwise(let layer, let input, let output, let activation):
            pointwise(layer, input: input, output: output, shortcut: nil, activation)
        case .depthwise(let layer, let input, let output, let activation):
            layer.forward(slots[input], into: &slots[output])
            apply(activation, to: output)
        case .add(let first, let second, let output, let activation):
            if output != first { copy(first, into: output) }
            if activation == .relu {
                // One pass for the residual sum and its ReLU.
                let other = slots[second]
                slots[output].storage.withUnsafeMutableBufferPointer { sum in
                    other.storage.withUnsafeBufferPointer { addend in
                        for index in 0..<sum.count { sum[index] = max(sum[index] + addend[index], 0) }
                    }
                }
            } else {
                slots[output].add(slots[second])
                apply(activation, to: output)
            }
        case .activation(let input, let output, let activation):
            if output != input { copy(input, into: output) }
            apply(activation, to: output)
        case .pad(let layer, let input, let output):
            layer.forward(slots[input], into: &slots[output])
        case .residualPointwise(let layer, let input, let output, let shortcut, let activation):
            pointwise(layer, input: input, output: output, shortcut: shortcut, activation)
        case .maxPool(let kernel, let stride, let input, let output):
            InterpreterKernels.maxPool(slots[input], kernel: kernel, stride: stride, into: &slots[output])
        case .resize(let layer, let input, let output):
            layer.forward(slots[input], into: &slots[output])
        case .reshape(let input, let output, let shape, let fromChannelsFirst, let toChannelsFirst):
            reshape(input, into: output, shape: shape, fromChannelsFirst: fromChannelsFirst,
                    toChannelsFirst: toChannelsFirst)
        case .concatenate(let inputs, let output, let axis, let activation):
            concatenate(inputs, into: output, axis: axis)
            apply(activation, to: output)
        }
    }

    /// Floats of input and output a band of a 1x1 convolution holds (128 KB): the band's product is finished
    /// (bias, residual, activation) while it is still in the core's cache.
    private static let bandFloats = 32 * 1024

    private func pointwise(_ layer: PointwiseConv2d, input: Int, output: Int, shortcut: Shortcut?, _ activation: Activation) {
        let inShape = slots[input].shape
        let shape = [inShape[0], layer.outChannels, inShape[2], inShape[3]]
        if slots[output].shape != shape { slots[output] = Tensor(zeros: shape) }
        let (height, width) = (shape[2], shape[3])
        let bias = layer.bias?.value.storage
        let residual = shortcut.map { slots[$0.slot] }
        let bounds: (Float, Float)
        switch activation {
        case .none, .tanh: bounds = (-.infinity, .infinity)
        case .relu: bounds = (0, .infinity)
        case .relu6: bounds = (0, 6)
        case .reluMinus1To1: bounds = (-1, 1)
        }
        let rowsPerBand = max(1, Self.bandFloats / ((layer.inChannels + layer.outChannels) * width * shape[0]))
        for first in Swift.stride(from: 0, to: height, by: rowsPerBand) {
            let rows = first..<min(height, first + rowsPerBand)
            layer.product(slots[input], into: &slots[output], pixels: (rows.lowerBound * width)..<(rows.upperBound * width))
            InterpreterKernels.finish(&slots[output], bias: bias, shortcut: residual, channels: shortcut?.channels ?? 0,
                                      pooled: shortcut?.pooled ?? false, lower: bounds.0, upper: bounds.1,
                                      rows: rows)
        }
        if activation == .tanh { apply(activation, to: output) }
    }

    private func copy(_ source: Int, into target: Int) {
        let values = slots[source]
        if slots[target].shape == values.shape {
            slots[target].storage.withUnsafeMutableBufferPointer { to in
                values.storage.withUnsafeBufferPointer { to.baseAddress!.update(from: $0.baseAddress!, count: $0.count) }
            }
        } else {
            slots[target] = Tensor(shape: values.shape, storage: Array(values.storage))
        }
    }

    private func apply(_ activation: Activation, to slot: Int) {
        let bounds: (Float, Float)
        switch activation {
        case .none: return
        case .relu: bounds = (0, .infinity)
        case .relu6: bounds = (0, 6)
        case .reluMinus1To1: bounds = (-1, 1)
        case .tanh:
            slots[slot].storage.withUnsafeMutableBufferPointer { values in
                for index in 0..<values.count { values[index] = tanh(values[index]) }
            }
            return
        }
        slots[slot].storage.withUnsafeMutableBufferPointer { values in
            for index in 0..<values.count { values[index] = min(max(values[index], bounds.0), bounds.1) }
        }
    }

    private func reshape(_ input: Int, into output: Int, shape: [Int], fromChannelsFirst: Bool, toChannelsFirst: Bool) {
        var values = slots[output].shape == shape ? slots[output] : Tensor(zeros: shape)
        let source = slots[input]
        slots[output] = Tensor(zeros: [0])  // values is now the only reference: writes stay in place
        switch (fromChannelsFirst, toChannelsFirst) {
        case (false, false):
            values.storage.withUnsafeMutableBufferPointer { to in
                source.storage.withUnsafeBufferPointer { to.baseAddress!.update(from: $0.baseAddress!, count: $0.count) }
            }
        case (true, false):
            // NCHW storage read out in NHWC order.
            let (n, c, hw) = (source.shape[0], source.shape[1], source.shape[2] * source.shape[3])
            transpose(source.storage, into: &values.storage, batches: n, rows: c, columns: hw)
        case (false, true):
            // Row-major NHWC data stored as NCHW: shape is [N, C, H, W].
            let (n, c, hw) = (shape[0], shape[1], shape[2] * shape[3])
            transpose(source.storage, into: &values.storage, batches: n, rows: hw, columns: c)
        case (true, true):
            // NCHW -> NHWC -> new NHWC shape -> NCHW.
            var nhwc = [Float](repeating: 0, count: source.count)
            transpose(source.storage, into: &nhwc, batches: source.shape[0], rows: source.shape[1],
                      columns: source.shape[2] * source.shape[3])
            transpose(nhwc, into: &values.storage, batches: shape[0], rows: shape[2] * shape[3], columns: shape[1])
        }
        slots[output] = values
    }

    /// For each batch: [rows, columns] -> [columns, rows].
    private func transpose(_ source: [Float], into target: inout [Float], batches: Int, rows: Int, columns: Int) {
        source.withUnsafeBufferPointer { from in
            target.withUnsafeMutableBufferPointer { to in
                for b in 0..<batches {
                    let base = b * rows * columns
                    for r in 0..<rows {
                        for c in 0..<columns { to[base + c * rows + r] = from[base + r * columns + c] }
                    }
                }
            }
        }
    }

    private func concatenate(_ inputs: [Int], into output: Int, axis: Int) {
        var shape = slots[inputs[0]].shape
        shape[axis] = inputs.reduce(0) { $0 + slots[$1].shape[axis] }
        var values = slots[output].shape == shape ? slots[output] : Tensor(zeros: shape)
        slots[output] = Tensor(zeros: [0])
        let outer = shape[..<axis].reduce(1, *)
        let outputInner = shape[axis...].reduce(1, *)
        var offset = 0
        for input in inputs {
            let source = slots[input]
            let inner = source.shape[axis...].reduce(1, *)
            values.storage.withUnsafeMutableBufferPointer { to in
                source.storage.withUnsafeBufferPointer { from in
                    for o in 0..<outer {
                        (to.baseAddress! + o * outputInner + offset).update(from: from.baseAddress! + o * inner, count: inner)
                    }
                }
            }
            offset += inner
        }
        slots[output] = values
    }

    // MARK: Compiling the graph

    /// Turns the operator list into steps, checking every shape against the one the file declares.
    private struct GraphBuilder {
        let model: TFLiteModel
        let graph: TFLiteModel.SubGraph
        var steps: [Step] = []
        var slotCount = 0
        var inputShape: [Int] = []
        /// Constant values of DEQUANTIZE outputs (and other float constants, on demand).
        private var constants: [Int: [Float]] = [:]
        private var slotOfTensor: [Int: Int] = [:]
        /// How many operators read each tensor (graph outputs count as a reader).
        private var readers: [Int]
        /// PAD outputs folded into the convolution that reads them: tensor -> (PAD's input, padding).
        private var foldedPads: [Int: (input: Int, padding: Padding)] = [:]
        /// The step that computes each tensor.
        private var producers: [Int: Int] = [:]
        /// Outputs of channel-only PADs (zeros after the channels) and of 2x2, stride-2 MAX_POOLs: tensor -> input.
        private var channelPadSources: [Int: Int] = [:]
        private var poolSources: [Int: Int] = [:]
        /// Steps folded into a later one, dropped when the build ends.
        private var foldedSteps: Set<Int> = []

        init(model: TFLiteModel, graph: TFLiteModel.SubGraph) throws(TFLiteError) {
            self.model = model
            self.graph = graph
            readers = [Int](repeating: 0, count: graph.tensors.count)
            for op in graph.operators { for index in op.inputs where index >= 0 { readers[index] += 1 } }
            for index in graph.outputs { readers[index] += 1 }
        }

        func tensor(_ index: Int) -> TFLiteModel.TensorInfo { graph.tensors[index] }

        /// The shape a runtime tensor is stored in: NHWC rank 4 becomes NCHW.
        func storedShape(_ index: Int) -> [Int] {
            let shape = tensor(index).shape
            return shape.count == 4 ? [shape[0], shape[3], shape[1], shape[2]] : shape
        }

        mutating func assignSlot(_ index: Int) -> Int {
            if let slot = slotOfTensor[index] { return slot }
            slotOfTensor[index] = slotCount
            slotCount += 1
            return slotCount - 1
        }

        func slot(of index: Int) -> Int { slotOfTensor[index]! }

        mutating func build() throws(TFLiteError) {
            guard graph.inputs.count == 1, tensor(graph.inputs[0]).shape.count == 4 else {
                throw .unsupported("expected one image input [1, H, W, C], got \(graph.inputs.map { tensor($0).shape })")
            }
            guard tensor(graph.inputs[0]).type == .float32 else {
                throw .unsupported("input type \(tensor(graph.inputs[0]).type); only FLOAT32 models are supported")
            }
            inputShape = storedShape(graph.inputs[0])
            _ = assignSlot(graph.inputs[0])
            for op in graph.operators { try add(op) }
            steps = steps.indices.filter { !foldedSteps.contains($0) }.map { steps[$0] }
            for output in graph.outputs where slotOfTensor[output] == nil {
                throw .unsupported("output \(tensor(output).name) is not computed by any supported operator")
            }
        }

        private func constant(_ index: Int, for opName: String) throws(TFLiteError) -> [Float] {
            if let values = constants[index] { return values }
            guard index >= 0, let values = try model.constantFloats(tensor(index)) else {
                throw .unsupported("\(opName) needs a constant tensor \(index >= 0 ? tensor(index).name : "(missing)")")
            }
            return values
        }

        private func runtime(_ index: Int, for opName: String) throws(TFLiteError) -> Int {
            guard index >= 0, let slot = slotOfTensor[index] else {
                let name = index >= 0 ? tensor(index).name : "(missing)"
                throw .unsupported("\(opName) reads \(name), which is neither the input nor computed before it")
            }
            return slot
        }

        private func activation(_ activation: TFLiteModel.Activation, for opName: String) throws(TFLiteError) -> Activation {
            switch activation {
            case .none: return .none
            case .relu: return .relu
            case .relu6: return .relu6
            case .reluMinus1To1: return .reluMinus1To1
            case .tanh: return .tanh
            default: throw .unsupported("\(opName) with fused activation \(activation)")
            }
        }

        /// Records the output's slot after checking the computed shape against the declared one.
        private mutating func define(_ index: Int, shape: [Int], for opName: String, sharing shared: Int? = nil) throws(TFLiteError) -> Int {
            guard shape == storedShape(index) else {
                throw .malformed("\(opName) computes \(tensor(index).name) as \(shape) (stored), the file declares "
                                 + "\(tensor(index).shape)")
            }
            guard tensor(index).type == .float32 else {
                throw .unsupported("\(opName) output \(tensor(index).name) is \(tensor(index).type)")
            }
            producers[index] = steps.count  // the step about to be appended
            if let shared {
                slotOfTensor[index] = shared
                return shared
            }
            return assignSlot(index)
        }

        /// TFLite's SAME/VALID rule for one axis: (output size, padding before, padding after).
        private func window(_ size: Int, kernel: Int, stride: Int, _ padding: TFLiteModel.Padding) -> (Int, Int, Int) {
            switch padding {
            case .valid:
                return ((size - kernel + stride) / stride, 0, 0)
            case .same:
                let output = (size + stride - 1) / stride
                let total = max((output - 1) * stride + kernel - size, 0)
                return (output, total / 2, total - total / 2)
            }
        }

        private mutating func add(_ op: TFLiteModel.Operator) throws(TFLiteError) {
            let code = model.operatorCodes[op.opcodeIndex]
            let name = code.name
            guard code.customCode == nil else { throw .unsupportedOperator(name) }
            let inputs = op.inputs, outputs = op.outputs
            func requireCounts(_ inputCount: ClosedRange<Int>) throws(TFLiteError) {
                guard inputCount.contains(inputs.count), outputs.count == 1 else {
                    throw .malformed("\(name) with \(inputs.count) inputs and \(outputs.count) outputs")
                }
            }
            switch code.builtinCode {
            case BuiltinOperator.dequantize:
                try requireCounts(1...1)
                guard let values = try model.constantFloats(tensor(inputs[0])) else {
                    throw .unsupported("DEQUANTIZE of a runtime tensor (\(tensor(inputs[0]).name))")
                }
                constants[outputs[0]] = values

            case BuiltinOperator.conv2D, BuiltinOperator.depthwiseConv2D:
                try requireCounts(2...3)
                try addConvolution(op, name: name)

            case BuiltinOperator.pad:
                try requireCounts(2...2)
                guard let amounts = try model.constantInts(tensor(inputs[1])),
                      tensor(inputs[0]).shape.count == 4, amounts.count == 8 else {
                    throw .unsupported("PAD needs a rank-4 input and constant [4, 2] paddings")
                }
                guard amounts[0] == 0, amounts[1] == 0, amounts.allSatisfy({ $0 >= 0 }) else {
                    throw .unsupported("PAD of the batch axis or by negative amounts \(amounts)")
                }
                let spatial = Padding(top: amounts[2], left: amounts[4], bottom: amounts[3], right: amounts[5])
                let input = try runtime(inputs[0], for: name)  // also checks the input exists
                let onlyReader = graph.operators.first { $0.inputs.first == outputs[0] }
                let readerCode = onlyReader.map { model.operatorCodes[$0.opcodeIndex].builtinCode }
                if amounts[6] == 0, amounts[7] == 0, readers[outputs[0]] == 1,
                   readerCode == BuiltinOperator.conv2D || readerCode == BuiltinOperator.depthwiseConv2D {
                    // Zero padding then a convolution is the convolution with more zero padding.
                    foldedPads[outputs[0]] = (inputs[0], spatial)
                    return
                }
                let layer = ZeroPad2d(padding: spatial, channelsBefore: amounts[6], channelsAfter: amounts[7])
                let output = try define(outputs[0], shape: layer.outputShape(for: storedShape(inputs[0])), for: name)
                if spatial == .uniform(0), amounts[6] == 0 { channelPadSources[outputs[0]] = inputs[0] }
                steps.append(.pad(layer, input: input, output: output))

            case BuiltinOperator.relu:
                try requireCounts(1...1)
                let input = try runtime(inputs[0], for: name)
                if readers[inputs[0]] == 1, let producer = producers[inputs[0]], let fused = steps[producer].fusingRelu() {
                    // The only reader of a convolution's or sum's output: clamp inside that step, on data still in cache.
                    steps[producer] = fused
                    _ = try define(outputs[0], shape: storedShape(inputs[0]), for: name, sharing: input)
                    producers[outputs[0]] = producer
                    return
                }
                let inPlace = readers[inputs[0]] == 1 && inputs[0] != graph.inputs[0]
                let output = try define(outputs[0], shape: storedShape(inputs[0]), for: name, sharing: inPlace ? input : nil)
                steps.append(.activation(input: input, output: output, .relu))

            case BuiltinOperator.add:
                try requireCounts(2...2)
                guard case .add(let fused) = op.options else { throw .malformed("ADD without AddOptions") }
                guard tensor(inputs[0]).shape == tensor(inputs[1]).shape else {
                    throw .unsupported("ADD with broadcasting (\(tensor(inputs[0]).shape) + \(tensor(inputs[1]).shape))")
                }
                if try foldIntoPointwise(op, activation: try activation(fused, for: name)) { return }
                let first = try runtime(inputs[0], for: name), second = try runtime(inputs[1], for: name)
                let inPlace = readers[inputs[0]] == 1 && inputs[0] != graph.inputs[0] && first != second
                let output = try define(outputs[0], shape: storedShape(inputs[0]), for: name, sharing: inPlace ? first : nil)
                steps.append(.add(first, second, output: output, try activation(fused, for: name)))

            case BuiltinOperator.maxPool2D:
                try requireCounts(1...1)
                guard case .pool2D(let padding, let strideWidth, let strideHeight, let filterWidth, let filterHeight,
                                   let fused) = op.options else { throw .malformed("MAX_POOL_2D without Pool2DOptions") }
                let shape = storedShape(inputs[0])
                guard shape.count == 4 else { throw .unsupported("MAX_POOL_2D of rank \(shape.count)") }
                let (outHeight, top, bottom) = window(shape[2], kernel: filterHeight, stride: strideHeight, padding)
                let (outWidth, left, right) = window(shape[3], kernel: filterWidth, stride: strideWidth, padding)
                guard filterWidth == filterHeight, strideWidth == strideHeight, top == 0, bottom == 0, left == 0, right == 0,
                      try activation(fused, for: name) == .none else {
                    throw .unsupported("MAX_POOL_2D \(filterHeight)x\(filterWidth) stride \(strideHeight)x\(strideWidth) "
                                       + "with padding \(top),\(left),\(bottom),\(right) or a fused activation")
                }
                let input = try runtime(inputs[0], for: name)
                let output = try define(outputs[0], shape: [shape[0], shape[1], outHeight, outWidth], for: name)
                if filterHeight == 2, strideHeight == 2 { poolSources[outputs[0]] = inputs[0] }
                steps.append(.maxPool(kernel: filterHeight, stride: strideHeight, input: input, output: output))

            case BuiltinOperator.resizeBilinear:
                try requireCounts(2...2)
                guard case .resizeBilinear(let alignCorners, let halfPixelCenters) = op.options else {
                    throw .malformed("RESIZE_BILINEAR without ResizeBilinearOptions")
                }
                guard let size = try model.constantInts(tensor(inputs[1])), size.count == 2 else {
                    throw .unsupported("RESIZE_BILINEAR needs a constant [height, width] size")
                }
                let shape = storedShape(inputs[0])
                let input = try runtime(inputs[0], for: name)
                let output = try define(outputs[0], shape: [shape[0], shape[1], size[0], size[1]], for: name)
                let layer = ResizeBilinear(height: size[0], width: size[1], alignCorners: alignCorners,
                                           halfPixelCenters: halfPixelCenters)
                steps.append(.resize(layer, input: input, output: output))

            case BuiltinOperator.reshape:
                try requireCounts(1...2)
                let input = try runtime(inputs[0], for: name)
                let fromShape = tensor(inputs[0]).shape, toShape = tensor(outputs[0]).shape
                guard fromShape.reduce(1, *) == toShape.reduce(1, *) else {
                    throw .malformed("RESHAPE of \(fromShape) to \(toShape)")
                }
                let output = try define(outputs[0], shape: storedShape(outputs[0]), for: name)
                steps.append(.reshape(input: input, output: output, shape: storedShape(outputs[0]),
                                      inputIsChannelsFirst: fromShape.count == 4, outputIsChannelsFirst: toShape.count == 4))

            case BuiltinOperator.concatenation:
                guard !inputs.isEmpty, outputs.count == 1 else { throw .malformed("CONCATENATION without inputs") }
                guard case .concatenation(let axis, let fused) = op.options else {
                    throw .malformed("CONCATENATION without ConcatenationOptions")
                }
                let rank = tensor(inputs[0]).shape.count
                let logicalAxis = axis < 0 ? axis + rank : axis
                guard (0..<rank).contains(logicalAxis), inputs.allSatisfy({ tensor($0).shape.count == rank }) else {
                    throw .malformed("CONCATENATION on axis \(axis) of rank-\(rank) tensors")
                }
                let physicalAxis = rank == 4 ? [0, 2, 3, 1][logicalAxis] : logicalAxis
                var slots: [Int] = []
                for index in inputs { slots.append(try runtime(index, for: name)) }
                var shape = storedShape(inputs[0])
                shape[physicalAxis] = inputs.reduce(0) { $0 + storedShape($1)[physicalAxis] }
                let output = try define(outputs[0], shape: shape, for: name)
                steps.append(.concatenate(inputs: slots, output: output, axis: physicalAxis, try activation(fused, for: name)))

            default:
                throw .unsupportedOperator(name)
            }
        }

        /// Folds ADD(a, b) into the 1x1 convolution computing one addend when nothing else reads that addend
        /// (it runs at the ADD's place instead, starting from its bias plus the other addend); also folds the
        /// channel PAD and 2x2 MAX_POOL the other addend comes through when only the ADD reads them.
        private mutating func foldIntoPointwise(_ op: TFLiteModel.Operator, activation: Activation) throws(TFLiteError) -> Bool {
            for (product, other) in [(op.inputs[0], op.inputs[1]), (op.inputs[1], op.inputs[0])] where product != other {
                guard readers[product] == 1, let producer = producers[product], !foldedSteps.contains(producer),
                      case .pointwise(let layer, let input, let output, .none) = steps[producer] else { continue }
                var source = other, shortcutChannels = storedShape(other)[1], folded: [Int] = [], pooled = false
                if readers[source] == 1, let padded = channelPadSources[source], let pad = producers[source] {
                    source = padded
                    shortcutChannels = storedShape(padded)[1]
                    folded.append(pad)
                }
                if readers[source] == 1, let pooledInput = poolSources[source], let pool = producers[source] {
                    source = pooledInput
                    pooled = true
                    folded.append(pool)
                }
                guard let slot = slotOfTensor[source] else { continue }
                foldedSteps.insert(producer)
                foldedSteps.formUnion(folded)
                _ = try define(op.outputs[0], shape: storedShape(product), for: "ADD", sharing: output)
                let shortcut = Shortcut(slot: slot, channels: shortcutChannels, pooled: pooled)
                steps.append(.residualPointwise(layer, input: input, output: output, shortcut, activation))
                return true
            }
            return false
        }

        private mutating func addConvolution(_ op: TFLiteModel.Operator, name: String) throws(TFLiteError) {
            let inputs = op.inputs
            let padding: TFLiteModel.Padding, strideWidth: Int, strideHeight: Int, fused: TFLiteModel.Activation
            let dilation: (Int, Int), multiplier: Int
            switch op.options {
            case .conv2D(let p, let sw, let sh, let a, let dw, let dh):
                (padding, strideWidth, strideHeight, fused, dilation, multiplier) = (p, sw, sh, a, (dw, dh), 1)
            case .depthwiseConv2D(let p, let sw, let sh, let m, let a, let dw, let dh):
                (padding, strideWidth, strideHeight, fused, dilation, multiplier) = (p, sw, sh, a, (dw, dh), max(m, 1))
            default:
                throw .malformed("\(name) without its options")
            }
            guard strideWidth == strideHeight, strideWidth >= 1, dilation == (1, 1) else {
                throw .unsupported("\(name) with stride \(strideHeight)x\(strideWidth), dilation \(dilation)")
            }
            // Read through a folded PAD to its input.
            var source = inputs[0]
            var extra = Padding.uniform(0)
            if let folded = foldedPads[source] {
                source = folded.input
                extra = folded.padding
            }
            let input = try runtime(source, for: name)
            let inShape = storedShape(source)  // NCHW
            let filter = tensor(inputs[1]).shape
            let weights = try constant(inputs[1], for: name)
            let bias = inputs.count > 2 && inputs[2] >= 0 ? try constant(inputs[2], for: name) : nil
            guard inShape.count == 4, filter.count == 4 else { throw .unsupported("\(name) of rank \(inShape.count)") }
            let (kernelHeight, kernelWidth) = (filter[1], filter[2])
            let paddedHeight = inShape[2] + extra.top + extra.bottom, paddedWidth = inShape[3] + extra.left + extra.right
            let (outHeight, top, bottom) = window(paddedHeight, kernel: kernelHeight, stride: strideHeight, padding)
            let (outWidth, left, right) = window(paddedWidth, kernel: kernelWidth, stride: strideWidth, padding)
            let total = Padding(top: top + extra.top, left: left + extra.left, bottom: bottom + extra.bottom,
                                right: right + extra.right)
            let act = try activation(fused, for: name)

            if model.operatorCodes[op.opcodeIndex].builtinCode == BuiltinOperator.conv2D {
                // OHWI -> OIHW
                let (outChannels, inChannels) = (filter[0], filter[3])
                guard inChannels == inShape[1], bias == nil || bias!.count == outChannels else {
                    throw .malformed("\(name) filter \(filter) does not fit input \(tensor(source).shape)")
                }
                var converted = [Float](repeating: 0, count: weights.count)
                for o in 0..<outChannels {
                    for ky in 0..<kernelHeight {
                        for kx in 0..<kernelWidth {
                            for i in 0..<inChannels {
                                converted[((o * inChannels + i) * kernelHeight + ky) * kernelWidth + kx] =
                                    weights[((o * kernelHeight + ky) * kernelWidth + kx) * inChannels + i]
                            }
                        }
                    }
                }
                let weight = Tensor(shape: [outChannels, inChannels, kernelHeight, kernelWidth], storage: converted)
                let biasTensor = bias.map { Tensor(shape: [outChannels], storage: $0) }
                let output = try define(op.outputs[0], shape: [inShape[0], outChannels, outHeight, outWidth], for: name)
                if kernelHeight == 1, kernelWidth == 1, strideHeight == 1, total == .uniform(0) {
                    // One sgemm on the NCHW storage, no im2col.
                    steps.append(.pointwise(PointwiseConv2d(weight: weight, bias: biasTensor), input: input, output: output, act))
                } else {
                    let layer = BandedConv2d(weight: weight, bias: biasTensor, stride: strideHeight, padding: total)
                    steps.append(.convolution(layer, input: input, output: output, act))
                }
            } else {
                // [1, KH, KW, O] -> [O, 1, KH, KW]
                let outChannels = filter[3]
                guard filter[0] == 1, outChannels == inShape[1] * multiplier, bias == nil || bias!.count == outChannels else {
                    throw .malformed("\(name) filter \(filter) does not fit input \(tensor(source).shape) x\(multiplier)")
                }
                var converted = [Float](repeating: 0, count: weights.count)
                for o in 0..<outChannels {
                    for tap in 0..<(kernelHeight * kernelWidth) {
                        converted[o * kernelHeight * kernelWidth + tap] = weights[tap * outChannels + o]
                    }
                }
                let layer = DepthwiseConv2d(
                    weight: Tensor(shape: [outChannels, 1, kernelHeight, kernelWidth], storage: converted),
                    bias: bias.map { Tensor(shape: [outChannels], storage: $0) },
                    stride: strideHeight, padding: total, multiplier: multiplier)
                let output = try define(op.outputs[0], shape: [inShape[0], outChannels, outHeight, outWidth], for: name)
                steps.append(.depthwise(layer, input: input, output: output, act))
            }
        }
    }
}
