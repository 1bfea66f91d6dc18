import FaceDetection
import Foundation
import NeuralEngine
import XCTest

final class TFLiteReaderTests: XCTestCase {
    /// What the three shipped models are made of (checked against TFLite's own op list for each file).
    func testReadsShippedModels() throws {
        let expected: [BlazeFaceModel: (input: [Int], anchors: Int, operators: Set<String>)] = [
            .shortRange: ([1, 128, 128, 3], 896,
                          ["DEQUANTIZE", "CONV_2D", "RELU", "DEPTHWISE_CONV_2D", "ADD", "PAD", "MAX_POOL_2D", "RESHAPE", "CONCATENATION"]),
            .fullRange: ([1, 192, 192, 3], 2304,
                         ["DEQUANTIZE", "CONV_2D", "RELU", "DEPTHWISE_CONV_2D", "ADD", "MAX_POOL_2D", "PAD", "RESIZE_BILINEAR", "RESHAPE"]),
            .backCamera: ([1, 256, 256, 3], 896,
                          ["DEQUANTIZE", "CONV_2D", "RELU", "DEPTHWISE_CONV_2D", "ADD", "MAX_POOL_2D", "PAD", "RESHAPE", "CONCATENATION"]),
        ]
        for (model, facts) in expected {
            let tflite = try TFLiteModel(contentsOf: FaceDetectionTestSupport.model(model))
            XCTAssertEqual(tflite.subgraphs.count, 1)
            let graph = tflite.subgraphs[0]
            XCTAssertEqual(graph.inputs.map { graph.tensors[$0].shape }, [facts.input])
            XCTAssertEqual(graph.outputs.map { graph.tensors[$0].shape }, [[1, facts.anchors, 16], [1, facts.anchors, 1]])
            XCTAssertEqual(Set(graph.operators.map { tflite.operatorCodes[$0.opcodeIndex].name }), facts.operators)
            // Weights are float16 behind DEQUANTIZE.
            XCTAssertTrue(graph.tensors.contains { $0.type == .float16 && tflite.buffers[$0.buffer].count > 0 })
            let interpreter = try TFLiteInterpreter(model: tflite)
            XCTAssertEqual(interpreter.inputShape, [1, 3, facts.input[1], facts.input[2]])
            XCTAssertFalse(interpreter.stepNames.contains("DEQUANTIZE"))
        }
    }

    func testTruncatedFilesThrowTruncated() throws {
        let bytes = try [UInt8](Data(contentsOf: FaceDetectionTestSupport.model(.shortRange)))
        for length in [6, 64, 4096, bytes.count / 2, bytes.count - 1] {
            XCTAssertThrowsError(try TFLiteModel(bytes: Array(bytes.prefix(length))), "\(length) bytes") { error in
                guard case TFLiteError.truncated = error else { return XCTFail("\(length) bytes: got \(error)") }
                XCTAssertTrue("\(error)".hasPrefix("truncated TensorFlow Lite model"), "\(error)")
            }
        }
    }

    func testForeignFilesThrowNotTFLite() throws {
        let jpeg = try Data(contentsOf: FaceDetectionTestSupport.thirdParty(
            FaceDetectionTestSupport.mediaFolder.appendingPathComponent("single_face.jpg")))
        for bytes in [[UInt8](jpeg), Array("just some text, not a model".utf8), []] {
            XCTAssertThrowsError(try TFLiteModel(bytes: bytes)) { error in
                guard case TFLiteError.notTFLite = error else { return XCTFail("got \(error)") }
            }
        }
        let missing = URL(fileURLWithPath: "/nonexistent/model.tflite")
        XCTAssertThrowsError(try TFLiteModel(contentsOf: missing)) { error in
            guard case TFLiteError.unreadable = error else { return XCTFail("got \(error)") }
        }
    }

    func testUnsupportedOperatorIsNamed() throws {
        // SOFTMAX (25) in the int8 field; and an operator only the int32 field can hold (BROADCAST_ARGS, 145),
        // with the int8 field at PLACEHOLDER_FOR_GREATER_OP_CODES (127) as converters write it.
        for (deprecated, code, name) in [(Int8(25), Int32(0), "SOFTMAX"), (Int8(127), Int32(145), "BROADCAST_ARGS")] {
            let bytes = TinyModel.bytes(operatorCode: (deprecated, code), operators: [.init(opcode: 0, inputs: [0], outputs: [1])],
                                        tensors: [.init(shape: [1, 2, 2, 3]), .init(shape: [1, 2, 2, 3])], inputs: [0], outputs: [1])
            let model = try TFLiteModel(bytes: bytes)
            XCTAssertEqual(model.operatorCodes[0].name, name)
            XCTAssertThrowsError(try TFLiteInterpreter(model: model)) { error in
                XCTAssertEqual(error as? TFLiteError, .unsupportedOperator(name))
                XCTAssertEqual("\(error)", "unsupported TensorFlow Lite operator \(name)")
            }
        }
    }

    /// A hand-built graph: PAD (folded into the convolution) then CONV_2D 3x3 stride 2 SAME (asymmetric: nothing
    /// before, one after) with float16 weights behind DEQUANTIZE and a fused RELU, against a naive NHWC loop.
    func testConvolutionGraphMatchesNaiveNHWC() throws {
        let (height, width, inChannels, outChannels) = (5, 6, 2, 3)
        // Multiples of 1/8 in [-2, 2]: exact in float16.
        let weights: [Float] = (0..<(outChannels * 9 * inChannels)).map { Float(($0 * 7) % 33 - 16) / 8 }
        let bias: [Float] = [0.5, -1, 0.25]
        let paddings: [Int32] = [0, 0, 1, 0, 0, 1, 0, 0]  // NHWC: one row on top, one column on the right
        let bytes = TinyModel.bytes(
            operatorCodes: [(6, 6), (34, 34), (3, 3)],
            operators: [
                .init(opcode: 0, inputs: [1], outputs: [2]),
                .init(opcode: 1, inputs: [0, 4], outputs: [5]),
                .init(opcode: 2, inputs: [5, 2, 3], outputs: [6],
                      options: (1, [.int8(0), .int32(2), .int32(2), .int8(1)])),  // SAME, stride 2, RELU
            ],
            tensors: [
                .init(shape: [1, height, width, inChannels]),
                .init(shape: [outChannels, 3, 3, inChannels], type: 1, data: weights.flatMap { halfBytes($0) }),
                .init(shape: [outChannels, 3, 3, inChannels]),
                .init(shape: [outChannels], type: 0, data: bias.flatMap { littleEndian($0.bitPattern) }),
                .init(shape: [4, 2], type: 2, data: paddings.flatMap { littleEndian(UInt32(bitPattern: $0)) }),
                .init(shape: [1, height + 1, width + 1, inChannels]),
                .init(shape: [1, 3, 4, outChannels]),
            ],
            inputs: [0], outputs: [6])
        let interpreter = try TFLiteInterpreter(model: TFLiteModel(bytes: bytes))
        XCTAssertEqual(interpreter.stepNames, ["CONV_2D"], "PAD folds into the convolution, DEQUANTIZE into its weights")
        XCTAssertEqual(interpreter.outputShapes, [[1, outChannels, 3, 4]])

        var generator = RandomGenerator(seed: 2)
        let nhwc = Tensor(normal: [1, height, width, inChannels], standardDeviation: 1, generator: &generator)
        var nchw = Tensor(zeros: [1, inChannels, height, width])
        for y in 0..<height {
            for x in 0..<width {
                for c in 0..<inChannels { nchw.storage[(c * height + y) * width + x] = nhwc.storage[(y * width + x) * inChannels + c] }
            }
        }
        let output = interpreter.run(nchw)[0]
        // The padded input is 6 x 7. TFLite's SAME rule, total = max((out - 1) * stride + kernel - in, 0) with
        // before = total / 2: rows 0 before and 1 after (asymmetric), columns 1 and 1; output 3 x 4.
        func padded(_ y: Int, _ x: Int, _ c: Int) -> Float {
            let (sy, sx) = (y - 1, x)  // PAD: one row on top
            guard sy >= 0, sy < height, sx >= 0, sx < width else { return 0 }
            return nhwc.storage[(sy * width + sx) * inChannels + c]
        }
        let (paddedHeight, paddedWidth) = (height + 1, width + 1)
        let totalY = max((3 - 1) * 2 + 3 - paddedHeight, 0), totalX = max((4 - 1) * 2 + 3 - paddedWidth, 0)
        for o in 0..<outChannels {
            for oy in 0..<3 {
                for ox in 0..<4 {
                    var sum = bias[o]
                    for ky in 0..<3 {
                        for kx in 0..<3 {
                            let y = oy * 2 + ky - totalY / 2, x = ox * 2 + kx - totalX / 2
                            guard y >= 0, y < paddedHeight, x >= 0, x < paddedWidth else { continue }
                            for c in 0..<inChannels { sum += padded(y, x, c) * weights[((o * 3 + ky) * 3 + kx) * inChannels + c] }
                        }
                    }
                    XCTAssertEqual(output.storage[(o * 3 + oy) * 4 + ox], max(sum, 0), accuracy: 1e-5, "o \(o) y \(oy) x \(ox)")
                }
            }
        }
    }

    /// Layout handling and the copying paths: X read by two operators (so RELU and ADD cannot work in place),
    /// graph outputs of rank 4 (returned NCHW) and rank 3 (RESHAPE reads the NCHW storage in NHWC order),
    /// CONCATENATION on the NHWC channel axis.
    func testElementwiseReshapeAndConcatenationFollowTFLiteLayout() throws {
        let bytes = TinyModel.bytes(
            operatorCodes: [(19, 19), (0, 0), (22, 22), (2, 2)],
            operators: [
                .init(opcode: 0, inputs: [0], outputs: [1]),                                   // R = RELU(X)
                .init(opcode: 1, inputs: [1, 0], outputs: [2], options: (11, [.int8(0)])),      // A = R + X
                .init(opcode: 2, inputs: [0], outputs: [3], options: (17, [.int32s([1, 6, 4])])),  // RESHAPE(X)
                .init(opcode: 3, inputs: [0, 1], outputs: [4], options: (10, [.int32(-1), .int8(0)])),  // [X, R] on C
            ],
            tensors: [.init(shape: [1, 2, 3, 4]), .init(shape: [1, 2, 3, 4]), .init(shape: [1, 2, 3, 4]),
                      .init(shape: [1, 6, 4]), .init(shape: [1, 2, 3, 8])],
            inputs: [0], outputs: [2, 1, 3, 4])
        let interpreter = try TFLiteInterpreter(model: TFLiteModel(bytes: bytes))
        XCTAssertEqual(interpreter.outputShapes, [[1, 4, 2, 3], [1, 4, 2, 3], [1, 6, 4], [1, 8, 2, 3]])
        // NHWC value at (y, x, c) is 100 y + 10 x + c - 5 (negative for some, so RELU matters).
        func nhwc(_ y: Int, _ x: Int, _ c: Int) -> Float { Float(100 * y + 10 * x + c) - 5 }
        var input = Tensor(zeros: [1, 4, 2, 3])
        for c in 0..<4 { for y in 0..<2 { for x in 0..<3 { input.storage[(c * 2 + y) * 3 + x] = nhwc(y, x, c) } } }
        for _ in 0..<2 {  // twice: the second run reuses every buffer
            let outputs = interpreter.run(input)
            for c in 0..<4 {
                for y in 0..<2 {
                    for x in 0..<3 {
                        let at = (c * 2 + y) * 3 + x, value = nhwc(y, x, c)
                        XCTAssertEqual(outputs[1].storage[at], max(value, 0))
                        XCTAssertEqual(outputs[0].storage[at], max(value, 0) + value)
                        XCTAssertEqual(outputs[2].storage[(y * 3 + x) * 4 + c], value)
                        XCTAssertEqual(outputs[3].storage[at], value)
                        XCTAssertEqual(outputs[3].storage[((c + 4) * 2 + y) * 3 + x], max(value, 0))
                    }
                }
            }
        }
    }
}

private func littleEndian(_ value: UInt32) -> [UInt8] { (0..<4).map { UInt8(truncatingIfNeeded: value >> (8 * $0)) } }

/// Float16 bits of a value that float16 holds exactly (normal numbers and zero), little-endian.
private func halfBytes(_ value: Float) -> [UInt8] {
    let bits = value.bitPattern
    var half: UInt16 = UInt16((bits >> 16) & 0x8000)
    if value != 0 {
        let exponent = Int((bits >> 23) & 0xFF) - 127 + 15
        half |= UInt16(exponent) << 10 | UInt16((bits >> 13) & 0x3FF)
    }
    return [UInt8(half & 0xFF), UInt8(half >> 8)]
}

/// Writes small TFLite FlatBuffers for tests, front to back: each table's vtable, then the table (one 4-byte
/// slot per field), then what its offset fields point to, patched in once written.
enum TinyModel {
    struct TensorSpec {
        var shape: [Int]
        var type: Int8 = 0
        var data: [UInt8] = []
    }
    struct OperatorSpec {
        var opcode: Int
        var inputs: [Int]
        var outputs: [Int]
        /// Builtin options union tag and the option table's fields in schema order.
        var options: (UInt8, [Field])? = nil
    }
    indirect enum Field {
        case int8(Int8), uint8(UInt8), int32(Int32), uint32(UInt32), absent
        case table([Field]), tables([[Field]]), int32s([Int32]), bytes([UInt8]), string(String)
    }

    static func bytes(operatorCode: (Int8, Int32), operators: [OperatorSpec], tensors: [TensorSpec],
                      inputs: [Int32], outputs: [Int32]) -> [UInt8] {
        bytes(operatorCodes: [operatorCode], operators: operators, tensors: tensors, inputs: inputs, outputs: outputs)
    }

    static func bytes(operatorCodes: [(Int8, Int32)], operators: [OperatorSpec], tensors: [TensorSpec],
                      inputs: [Int32], outputs: [Int32]) -> [UInt8] {
        // Buffer 0 is the empty sentinel; each tensor with data gets its own buffer.
        var buffers: [[Field]] = [[]]
        var tensorTables: [[Field]] = []
        for (index, tensor) in tensors.enumerated() {
            var buffer: UInt32 = 0
            if !tensor.data.isEmpty {
                buffers.append([.bytes(tensor.data)])
                buffer = UInt32(buffers.count - 1)
            }
            tensorTables.append([.int32s(tensor.shape.map { Int32($0) }), .int8(tensor.type), .uint32(buffer),
                                 .string("t\(index)")])
        }
        let operatorTables: [[Field]] = operators.map { op in
            var fields: [Field] = [.uint32(UInt32(op.opcode)), .int32s(op.inputs.map { Int32($0) }),
                                   .int32s(op.outputs.map { Int32($0) })]
            if let (type, table) = op.options { fields += [.uint8(type), .table(table)] }
            return fields
        }
        let root: [Field] = [
            .uint32(3),
            .tables(operatorCodes.map { [.int8($0.0), .absent, .int32(1), .int32($0.1)] }),
            .tables([[.tables(tensorTables), .int32s(inputs), .int32s(outputs), .tables(operatorTables)]]),
            .string("tiny"),
            .tables(buffers),
        ]
        var writer = Writer()
        writer.bytes = [0, 0, 0, 0] + Array("TFL3".utf8)
        writer.patch(at: 0, to: writer.table(root))
        return writer.bytes
    }

    struct Writer {
        var bytes: [UInt8] = []

        mutating func align() { while bytes.count % 4 != 0 { bytes.append(0) } }

        mutating func put(_ value: UInt32) { bytes += (0..<4).map { UInt8(truncatingIfNeeded: value >> (8 * $0)) } }

        /// Stores (target - slot) at `slot`.
        mutating func patch(at slot: Int, to target: Int) {
            let value = UInt32(target - slot)
            for k in 0..<4 { bytes[slot + k] = UInt8(truncatingIfNeeded: value >> (8 * k)) }
        }

        /// Writes a table and everything below it; returns the table's position.
        mutating func table(_ fields: [Field]) -> Int {
            align()
            let vtable = bytes.count
            let vtableSize = 4 + 2 * fields.count
            let tableSize = 4 + 4 * fields.count
            bytes += [UInt8(vtableSize & 0xFF), UInt8(vtableSize >> 8), UInt8(tableSize & 0xFF), UInt8(tableSize >> 8)]
            for (index, field) in fields.enumerated() {
                let offset = { if case .absent = field { return 0 } else { return 4 + 4 * index } }()
                bytes += [UInt8(offset & 0xFF), UInt8(offset >> 8)]
            }
            align()
            let table = bytes.count
            put(UInt32(table - vtable))  // soffset: vtable = table - soffset
            var pending: [(slot: Int, field: Field)] = []
            for field in fields {
                let slot = bytes.count
                switch field {
                case .int8(let v): put(UInt32(UInt8(bitPattern: v)))
                case .uint8(let v): put(UInt32(v))
                case .int32(let v): put(UInt32(bitPattern: v))
                case .uint32(let v): put(v)
                case .absent: put(0)
                default:
                    put(0)
                    pending.append((slot, field))
                }
            }
            for (slot, field) in pending { patch(at: slot, to: child(field)) }
            return table
        }

        private mutating func child(_ field: Field) -> Int {
            align()
            let start = bytes.count
            switch field {
            case .int32s(let values):
                put(UInt32(values.count))
                for value in values { put(UInt32(bitPattern: value)) }
            case .bytes(let values):
                put(UInt32(values.count))
                bytes += values
            case .string(let text):
                put(UInt32(text.utf8.count))
                bytes += Array(text.utf8) + [0]
            case .table(let fields):
                return table(fields)
            case .tables(let tables):
                put(UInt32(tables.count))
                let slots = (0..<tables.count).map { start + 4 + 4 * $0 }
                for _ in tables { put(0) }
                for (slot, fields) in zip(slots, tables) { patch(at: slot, to: table(fields)) }
            default:
                preconditionFailure("not a reference field")
            }
            return start
        }
    }
}
