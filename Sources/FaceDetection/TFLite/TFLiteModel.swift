import Foundation

/// Everything that can go wrong loading or running a TensorFlow Lite model, one line each.
public enum TFLiteError: Error, Sendable, Equatable, CustomStringConvertible {
    /// The file cannot be read at all.
    case unreadable(path: String, reason: String)
    /// The bytes are not a TFLite FlatBuffer (no "TFL3" identifier): another kind of file.
    case notTFLite(reason: String)
    /// An offset or vector runs past the end of the file.
    case truncated(reason: String)
    /// The structure is readable but inconsistent (bad indices, shapes that do not fit).
    case malformed(String)
    /// An operator this interpreter does not implement, by its TFLite name.
    case unsupportedOperator(String)
    /// A supported operator used in a way this interpreter does not implement.
    case unsupported(String)

    public var description: String {
        switch self {
        case .unreadable(let path, let reason): return "cannot read \(path): \(reason)"
        case .notTFLite(let reason): return "not a TensorFlow Lite model: \(reason)"
        case .truncated(let reason): return "truncated TensorFlow Lite model: \(reason)"
        case .malformed(let reason): return "malformed TensorFlow Lite model: \(reason)"
        case .unsupportedOperator(let name): return "unsupported TensorFlow Lite operator \(name)"
        case .unsupported(let reason): return "unsupported TensorFlow Lite model: \(reason)"
        }
    }
}

/// A TensorFlow Lite model as stored in its FlatBuffer (tensorflow/lite/schema/schema.fbs), read without any
/// library: operator codes, subgraphs (tensors, operators, inputs, outputs) and the raw constant buffers.
public struct TFLiteModel: Sendable {
    public var version: UInt32
    public var description: String?
    public var operatorCodes: [OperatorCode]
    public var subgraphs: [SubGraph]
    /// The raw bytes of each buffer; buffer 0 is the empty sentinel by convention.
    public var buffers: [[UInt8]]

    public struct OperatorCode: Sendable, Equatable {
        /// The builtin operator number: the larger of deprecated_builtin_code (int8) and builtin_code (int32),
        /// as TFLite itself reads it (files before schema 3a write only the former, later ones both).
        public var builtinCode: Int32
        public var customCode: String?
        public var version: Int32
        public var name: String { customCode.map { "CUSTOM(\($0))" } ?? BuiltinOperator.name(of: builtinCode) }
    }

    public struct SubGraph: Sendable {
        public var name: String?
        public var tensors: [TensorInfo]
        public var inputs: [Int]
        public var outputs: [Int]
        public var operators: [Operator]
    }

    public struct TensorInfo: Sendable, Equatable {
        public var name: String
        /// TFLite's shape, NHWC for images.
        public var shape: [Int]
        public var type: TensorType
        /// Index into `buffers`; 0 (or an empty buffer) for a tensor computed at run time.
        public var buffer: Int
        public var quantization: Quantization?
    }

    /// Affine quantisation: real = scale * (stored - zeroPoint), per tensor or per slice of one axis.
    public struct Quantization: Sendable, Equatable {
        public var scale: [Float]
        public var zeroPoint: [Int64]
        public var quantizedDimension: Int
    }

    public struct Operator: Sendable {
        public var opcodeIndex: Int
        /// Tensor indices; -1 marks an optional input left out.
        public var inputs: [Int]
        public var outputs: [Int]
        public var options: BuiltinOptions
    }

    /// TFLite's TensorType enum.
    public struct TensorType: RawRepresentable, Sendable, Hashable, CustomStringConvertible {
        public var rawValue: Int8
        public init(rawValue: Int8) { self.rawValue = rawValue }
        public static let float32 = TensorType(rawValue: 0)
        public static let float16 = TensorType(rawValue: 1)
        public static let int32 = TensorType(rawValue: 2)
        public static let uint8 = TensorType(rawValue: 3)
        public static let int64 = TensorType(rawValue: 4)
        public static let int8 = TensorType(rawValue: 9)
        private static let names = ["FLOAT32", "FLOAT16", "INT32", "UINT8", "INT64", "STRING", "BOOL", "INT16",
                                    "COMPLEX64", "INT8", "FLOAT64", "COMPLEX128", "UINT64", "RESOURCE", "VARIANT",
                                    "UINT32", "UINT16", "INT4"]
        public var description: String {
            Int(rawValue) >= 0 && Int(rawValue) < Self.names.count ? Self.names[Int(rawValue)] : "TYPE_\(rawValue)"
        }
        /// Bytes per element, for the types that have a fixed size.
        var byteWidth: Int? {
            switch rawValue {
            case 0, 2: return 4
            case 1, 7, 16: return 2
            case 3, 6, 9: return 1
            case 4, 10, 12: return 8
            default: return nil
            }
        }
    }

    public enum Padding: Sendable, Equatable { case same, valid }

    /// Fused activation applied to an operator's output.
    public enum Activation: Sendable, Equatable {
        case none, relu, reluMinus1To1, relu6, tanh, signBit, other(Int8)
        init(_ raw: Int8) {
            switch raw {
            case 0: self = .none
            case 1: self = .relu
            case 2: self = .reluMinus1To1
            case 3: self = .relu6
            case 4: self = .tanh
            case 5: self = .signBit
            default: self = .other(raw)
            }
        }
    }

    /// The options of the operators the interpreter knows; anything else keeps only its union tag.
    public enum BuiltinOptions: Sendable, Equatable {
        case none
        case conv2D(padding: Padding, strideWidth: Int, strideHeight: Int, activation: Activation,
                    dilationWidth: Int, dilationHeight: Int)
        case depthwiseConv2D(padding: Padding, strideWidth: Int, strideHeight: Int, depthMultiplier: Int,
                             activation: Activation, dilationWidth: Int, dilationHeight: Int)
        case pool2D(padding: Padding, strideWidth: Int, strideHeight: Int, filterWidth: Int, filterHeight: Int,
                    activation: Activation)
        case concatenation(axis: Int, activation: Activation)
        case add(activation: Activation)
        case reshape(newShape: [Int])
        case resizeBilinear(alignCorners: Bool, halfPixelCenters: Bool)
        case other(type: UInt8)
    }

    // MARK: Reading

    public init(contentsOf url: URL) throws(TFLiteError) {
        let data: Data
        do {
            data = try Data(contentsOf: url, options: .mappedIfSafe)
        } catch {
            throw .unreadable(path: url.path, reason: error.localizedDescription)
        }
        try self.init(bytes: [UInt8](data))
    }

    public init(bytes: [UInt8]) throws(TFLiteError) {
        guard bytes.count >= 8 else {
            throw bytes.isEmpty ? .notTFLite(reason: "the file is empty")
                : .truncated(reason: "\(bytes.count) bytes is too short for a FlatBuffer header")
        }
        guard bytes[4..<8].elementsEqual("TFL3".utf8) else {
            let shown = bytes[4..<8].map { (32..<127).contains($0) ? String(UnicodeScalar($0)) : "." }.joined()
            throw .notTFLite(reason: "file identifier is \"\(shown)\", expected \"TFL3\"")
        }
        let buffer = FlatBuffer(bytes: bytes)
        let root = try buffer.table(referencedAt: 0)
        version = try root.uint32(0)
        description = try root.string(3)
        operatorCodes = try root.tables(1).map { (table: FlatTable) throws(TFLiteError) -> OperatorCode in
            let deprecated = Int32(try table.int8(0))
            let current = try table.int32(3)
            return OperatorCode(builtinCode: max(deprecated, current), customCode: try table.string(1),
                                version: try table.int32(2, default: 1))
        }
        buffers = try root.tables(4).map { (table: FlatTable) throws(TFLiteError) -> [UInt8] in
            if let range = try table.byteRange(0) { return Array(bytes[range]) }
            // Models over 2 GB keep data outside the FlatBuffer: offset (> 1) and size from the file start.
            let offset = try table.uint64(1), size = try table.uint64(2)
            guard offset > 1 else { return [] }
            guard offset <= UInt64(bytes.count), size <= UInt64(bytes.count) - offset else {
                throw .truncated(reason: "buffer of \(size) bytes at \(offset) lies past the end of the file")
            }
            return Array(bytes[Int(offset)..<Int(offset + size)])
        }
        subgraphs = try root.tables(2).map(Self.readSubGraph)
        guard !subgraphs.isEmpty else { throw .malformed("the model has no subgraph") }
        try validate()
    }

    private static func readSubGraph(_ table: FlatTable) throws(TFLiteError) -> SubGraph {
        let tensors = try table.tables(0).map { (tensor: FlatTable) throws(TFLiteError) -> TensorInfo in
            var quantization: Quantization?
            if let parameters = try tensor.table(4) {
                let scale = try parameters.floats(2)
                if !scale.isEmpty {
                    quantization = Quantization(scale: scale, zeroPoint: try parameters.int64s(3),
                                                quantizedDimension: Int(try parameters.int32(6)))
                }
            }
            return TensorInfo(name: try tensor.string(3) ?? "", shape: try tensor.int32s(0).map { Int($0) },
                              type: TensorType(rawValue: try tensor.int8(1)), buffer: Int(try tensor.uint32(2)),
                              quantization: quantization)
        }
        let operators = try table.tables(3).map { (op: FlatTable) throws(TFLiteError) -> Operator in
            Operator(opcodeIndex: Int(try op.uint32(0)), inputs: try op.int32s(1).map { Int($0) },
                     outputs: try op.int32s(2).map { Int($0) }, options: try readOptions(op))
        }
        return SubGraph(name: try table.string(4), tensors: tensors, inputs: try table.int32s(1).map { Int($0) },
                        outputs: try table.int32s(2).map { Int($0) }, operators: operators)
    }

    /// The builtin_options union: field 3 holds the type tag, field 4 the table.
    private static func readOptions(_ op: FlatTable) throws(TFLiteError) -> BuiltinOptions {
        let type = try op.uint8(3)
        guard type != 0 else { return .none }
        guard let o = try op.table(4) else { return .other(type: type) }
        func padding(_ field: Int) throws(TFLiteError) -> Padding { try o.int8(field) == 1 ? .valid : .same }
        func int(_ field: Int, _ value: Int32 = 0) throws(TFLiteError) -> Int { Int(try o.int32(field, default: value)) }
        func activation(_ field: Int) throws(TFLiteError) -> Activation { Activation(try o.int8(field)) }
        switch type {
        case 1:
            return .conv2D(padding: try padding(0), strideWidth: try int(1), strideHeight: try int(2),
                           activation: try activation(3), dilationWidth: try int(4, 1), dilationHeight: try int(5, 1))
        case 2:
            return .depthwiseConv2D(padding: try padding(0), strideWidth: try int(1), strideHeight: try int(2),
                                    depthMultiplier: try int(3), activation: try activation(4),
                                    dilationWidth: try int(5, 1), dilationHeight: try int(6, 1))
        case 5:
            return .pool2D(padding: try padding(0), strideWidth: try int(1), strideHeight: try int(2),
                           filterWidth: try int(3), filterHeight: try int(4), activation: try activation(5))
        case 10: return .concatenation(axis: try int(0), activation: try activation(1))
        case 11: return .add(activation: try activation(0))
        case 15: return .resizeBilinear(alignCorners: try o.bool(2), halfPixelCenters: try o.bool(3))
        case 17: return .reshape(newShape: try o.int32s(0).map { Int($0) })
        default: return .other(type: type)
        }
    }

    /// Index checks, so later stages can subscript freely.
    private func validate() throws(TFLiteError) {
        for (number, graph) in subgraphs.enumerated() {
            let tensorRange = 0..<graph.tensors.count
            for tensor in graph.tensors {
                guard tensor.buffer < buffers.count else {
                    throw .malformed("tensor \(tensor.name) refers to buffer \(tensor.buffer) of \(buffers.count)")
                }
                guard tensor.shape.allSatisfy({ $0 >= 0 }) else {
                    throw .unsupported("tensor \(tensor.name) has a dynamic shape \(tensor.shape)")
                }
            }
            for index in graph.inputs + graph.outputs where !tensorRange.contains(index) {
                throw .malformed("subgraph \(number) names tensor \(index) of \(graph.tensors.count)")
            }
            for op in graph.operators {
                guard op.opcodeIndex < operatorCodes.count else {
                    throw .malformed("operator uses opcode \(op.opcodeIndex) of \(operatorCodes.count)")
                }
                for index in op.inputs + op.outputs where index != -1 && !tensorRange.contains(index) {
                    throw .malformed("\(operatorCodes[op.opcodeIndex].name) names tensor \(index) of \(graph.tensors.count)")
                }
            }
        }
    }

    // MARK: Constants

    /// The constant contents of a tensor widened to Float (FLOAT32, FLOAT16; INT8/UINT8 dequantised), or nil
    /// for a tensor computed at run time.
    func constantFloats(_ tensor: TensorInfo) throws(TFLiteError) -> [Float]? {
        let bytes = buffers[tensor.buffer]
        guard !bytes.isEmpty else { return nil }
        let count = tensor.shape.reduce(1, *)
        guard let width = tensor.type.byteWidth, bytes.count == count * width else {
            throw .malformed("tensor \(tensor.name) (\(tensor.type), shape \(tensor.shape)) has \(bytes.count) bytes")
        }
        switch tensor.type {
        case .float32:
            return bytes.withUnsafeBytes { raw in
                (0..<count).map { Float(bitPattern: UInt32(littleEndian: raw.loadUnaligned(fromByteOffset: 4 * $0, as: UInt32.self))) }
            }
        case .float16:
            return bytes.withUnsafeBytes { raw in
                (0..<count).map { widenHalf(UInt16(littleEndian: raw.loadUnaligned(fromByteOffset: 2 * $0, as: UInt16.self))) }
            }
        case .int8, .uint8:
            guard let quantization = tensor.quantization else {
                throw .unsupported("\(tensor.type) constant \(tensor.name) has no quantisation parameters")
            }
            let axis = quantization.scale.count > 1 ? quantization.quantizedDimension : -1
            let inner = axis >= 0 ? tensor.shape[(axis + 1)...].reduce(1, *) : count
            let slices = axis >= 0 ? tensor.shape[axis] : 1
            guard quantization.scale.count == slices, quantization.zeroPoint.isEmpty || quantization.zeroPoint.count == slices else {
                throw .malformed("quantisation of \(tensor.name) does not fit its shape \(tensor.shape)")
            }
            return (0..<count).map { index in
                let slice = (index / inner) % slices
                let stored = tensor.type == .int8 ? Float(Int8(bitPattern: bytes[index])) : Float(bytes[index])
                let zero = quantization.zeroPoint.isEmpty ? 0 : Float(quantization.zeroPoint[slice])
                return quantization.scale[slice] * (stored - zero)
            }
        default:
            throw .unsupported("constant \(tensor.name) of type \(tensor.type)")
        }
    }

    /// The constant contents of an INT32 (or INT64) tensor: shapes, paddings, sizes.
    func constantInts(_ tensor: TensorInfo) throws(TFLiteError) -> [Int]? {
        let bytes = buffers[tensor.buffer]
        guard !bytes.isEmpty else { return nil }
        let count = tensor.shape.reduce(1, *)
        switch tensor.type {
        case .int32 where bytes.count == 4 * count:
            return bytes.withUnsafeBytes { raw in
                (0..<count).map { Int(Int32(littleEndian: raw.loadUnaligned(fromByteOffset: 4 * $0, as: Int32.self))) }
            }
        case .int64 where bytes.count == 8 * count:
            return bytes.withUnsafeBytes { raw in
                (0..<count).map { Int(Int64(littleEndian: raw.loadUnaligned(fromByteOffset: 8 * $0, as: Int64.self))) }
            }
        default:
            throw .malformed("integer constant \(tensor.name) is \(tensor.type) with \(bytes.count) bytes for \(count) values")
        }
    }
}

/// IEEE 754 half (binary16) bits to Float, subnormals, infinities and NaN included.
func widenHalf(_ bits: UInt16) -> Float {
    let sign = UInt32(bits & 0x8000) << 16
    let exponent = UInt32(bits >> 10) & 0x1F
    let mantissa = UInt32(bits & 0x3FF)
    if exponent == 0x1F { return Float(bitPattern: sign | 0x7F80_0000 | mantissa << 13) }
    if exponent == 0 {
        // Zero or subnormal: mantissa * 2^-24.
        let magnitude = Float(mantissa) * Float(sign: .plus, exponent: -24, significand: 1)
        return sign != 0 ? -magnitude : magnitude
    }
    return Float(bitPattern: sign | (exponent + 112) << 23 | mantissa << 13)
}

/// Names of TFLite's builtin operators (schema.fbs BuiltinOperator), for error messages.
enum BuiltinOperator {
    static let add: Int32 = 0, concatenation: Int32 = 2, conv2D: Int32 = 3, depthwiseConv2D: Int32 = 4
    static let dequantize: Int32 = 6, maxPool2D: Int32 = 17, relu: Int32 = 19, reshape: Int32 = 22
    static let resizeBilinear: Int32 = 23, pad: Int32 = 34

    static func name(of code: Int32) -> String {
        code >= 0 && Int(code) < names.count ? names[Int(code)] : "BUILTIN_\(code)"
    }

    private static let names = [
        "ADD", "AVERAGE_POOL_2D", "CONCATENATION", "CONV_2D", "DEPTHWISE_CONV_2D", "DEPTH_TO_SPACE", "DEQUANTIZE",
        "EMBEDDING_LOOKUP", "FLOOR", "FULLY_CONNECTED", "HASHTABLE_LOOKUP", "L2_NORMALIZATION", "L2_POOL_2D",
        "LOCAL_RESPONSE_NORMALIZATION", "LOGISTIC", "LSH_PROJECTION", "LSTM", "MAX_POOL_2D", "MUL", "RELU",
        "RELU_N1_TO_1", "RELU6", "RESHAPE", "RESIZE_BILINEAR", "RNN", "SOFTMAX", "SPACE_TO_DEPTH", "SVDF", "TANH",
        "CONCAT_EMBEDDINGS", "SKIP_GRAM", "CALL", "CUSTOM", "EMBEDDING_LOOKUP_SPARSE", "PAD",
        "UNIDIRECTIONAL_SEQUENCE_RNN", "GATHER", "BATCH_TO_SPACE_ND", "SPACE_TO_BATCH_ND", "TRANSPOSE", "MEAN", "SUB",
        "DIV", "SQUEEZE", "UNIDIRECTIONAL_SEQUENCE_LSTM", "STRIDED_SLICE", "BIDIRECTIONAL_SEQUENCE_RNN", "EXP",
        "TOPK_V2", "SPLIT", "LOG_SOFTMAX", "DELEGATE", "BIDIRECTIONAL_SEQUENCE_LSTM", "CAST", "PRELU", "MAXIMUM",
        "ARG_MAX", "MINIMUM", "LESS", "NEG", "PADV2", "GREATER", "GREATER_EQUAL", "LESS_EQUAL", "SELECT", "SLICE",
        "SIN", "TRANSPOSE_CONV", "SPARSE_TO_DENSE", "TILE", "EXPAND_DIMS", "EQUAL", "NOT_EQUAL", "LOG", "SUM", "SQRT",
        "RSQRT", "SHAPE", "POW", "ARG_MIN", "FAKE_QUANT", "REDUCE_PROD", "REDUCE_MAX", "PACK", "LOGICAL_OR",
        "ONE_HOT", "LOGICAL_AND", "LOGICAL_NOT", "UNPACK", "REDUCE_MIN", "FLOOR_DIV", "REDUCE_ANY", "SQUARE",
        "ZEROS_LIKE", "FILL", "FLOOR_MOD", "RANGE", "RESIZE_NEAREST_NEIGHBOR", "LEAKY_RELU", "SQUARED_DIFFERENCE",
        "MIRROR_PAD", "ABS", "SPLIT_V", "UNIQUE", "CEIL", "REVERSE_V2", "ADD_N", "GATHER_ND", "COS", "WHERE", "RANK",
        "ELU", "REVERSE_SEQUENCE", "MATRIX_DIAG", "QUANTIZE", "MATRIX_SET_DIAG", "ROUND", "HARD_SWISH", "IF", "WHILE",
        "NON_MAX_SUPPRESSION_V4", "NON_MAX_SUPPRESSION_V5", "SCATTER_ND", "SELECT_V2", "DENSIFY", "SEGMENT_SUM",
        "BATCH_MATMUL", "PLACEHOLDER_FOR_GREATER_OP_CODES", "CUMSUM", "CALL_ONCE", "BROADCAST_TO", "RFFT2D",
        "CONV_3D", "IMAG", "REAL", "COMPLEX_ABS", "HASHTABLE", "HASHTABLE_FIND", "HASHTABLE_IMPORT",
        "HASHTABLE_SIZE", "REDUCE_ALL", "CONV_3D_TRANSPOSE", "VAR_HANDLE", "READ_VARIABLE", "ASSIGN_VARIABLE",
        "BROADCAST_ARGS",
    ]
}
