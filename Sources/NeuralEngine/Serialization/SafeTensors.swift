import Foundation

public struct SafeTensorsError: Error, CustomStringConvertible, Equatable {
    public let description: String
    public init(_ description: String) { self.description = description }
}

/// A safetensors file: 8-byte little-endian header length, a JSON header naming each tensor's dtype, shape
/// and byte range, then the raw little-endian data. Float tensors are F32 (F16 and BF16 are widened on read);
/// byte tensors (U8) hold image caches.
public struct SafeTensorsFile: Sendable {
    public var metadata: [String: String]
    public var tensors: [String: Tensor]
    public var byteTensors: [String: (shape: [Int], bytes: [UInt8])]

    public init(metadata: [String: String] = [:], tensors: [String: Tensor] = [:],
                byteTensors: [String: (shape: [Int], bytes: [UInt8])] = [:]) {
        self.metadata = metadata
        self.tensors = tensors
        self.byteTensors = byteTensors
    }

    // MARK: Writing

    /// Writes to a temporary file beside `url` and renames it, so a reader never sees half a file.
    public func write(to url: URL) throws {
        var header: [String: Any] = [:]
        if !metadata.isEmpty { header["__metadata__"] = metadata }
        var offset = 0
        let floatNames = tensors.keys.sorted()
        let byteNames = byteTensors.keys.sorted()
        for name in floatNames {
            let tensor = tensors[name]!
            header[name] = ["dtype": "F32", "shape": tensor.shape, "data_offsets": [offset, offset + tensor.count * 4]]
            offset += tensor.count * 4
        }
        for name in byteNames {
            let entry = byteTensors[name]!
            header[name] = ["dtype": "U8", "shape": entry.shape, "data_offsets": [offset, offset + entry.bytes.count]]
            offset += entry.bytes.count
        }
        var headerBytes = try JSONSerialization.data(withJSONObject: header, options: [.sortedKeys])
        // The format recommends padding the header with spaces to a multiple of 8 bytes.
        while headerBytes.count % 8 != 0 { headerBytes.append(0x20) }

        var data = Data(capacity: 8 + headerBytes.count + offset)
        withUnsafeBytes(of: UInt64(headerBytes.count).littleEndian) { data.append(contentsOf: $0) }
        data.append(headerBytes)
        for name in floatNames {
            tensors[name]!.storage.withUnsafeBytes { data.append(contentsOf: $0) }
        }
        for name in byteNames { data.append(contentsOf: byteTensors[name]!.bytes) }

        let directory = url.deletingLastPathComponent()
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        let temporary = directory.appendingPathComponent(".\(url.lastPathComponent).\(getpid()).partial")
        do {
            try data.write(to: temporary)
            guard rename(temporary.path, url.path) == 0 else {
                throw SafeTensorsError(String(cString: strerror(errno)))
            }
        } catch {
            try? FileManager.default.removeItem(at: temporary)
            throw SafeTensorsError("cannot write \(url.path): \(error.localizedDescription)")
        }
    }

    // MARK: Reading

    public init(contentsOf url: URL) throws {
        let data: Data
        do { data = try Data(contentsOf: url, options: .mappedIfSafe) } catch {
            throw SafeTensorsError("cannot read \(url.path): no such file or not readable")
        }
        try self.init(data: data, name: url.lastPathComponent)
    }

    public init(data: Data, name: String = "data") throws {
        guard data.count >= 8 else { throw SafeTensorsError("\(name) is not a safetensors file (too short)") }
        let headerLength = data.prefix(8).enumerated().reduce(UInt64(0)) { $0 | UInt64($1.element) << (8 * UInt64($1.offset)) }
        guard headerLength > 1, headerLength <= UInt64(data.count - 8), headerLength < 100_000_000 else {
            throw SafeTensorsError("\(name) is not a safetensors file (bad header length \(headerLength))")
        }
        let headerEnd = 8 + Int(headerLength)
        guard let header = (try? JSONSerialization.jsonObject(with: data.subdata(in: 8..<headerEnd))) as? [String: Any] else {
            throw SafeTensorsError("\(name) is not a safetensors file (header is not a JSON object)")
        }
        let payloadSize = data.count - headerEnd
        var metadata: [String: String] = [:]
        var tensors: [String: Tensor] = [:]
        var byteTensors: [String: (shape: [Int], bytes: [UInt8])] = [:]
        for (key, value) in header {
            if key == "__metadata__" {
                metadata = (value as? [String: String]) ?? [:]
                continue
            }
            guard let entry = value as? [String: Any], let dtype = entry["dtype"] as? String,
                  let shape = entry["shape"] as? [Int], let offsets = entry["data_offsets"] as? [Int], offsets.count == 2,
                  offsets[0] >= 0, offsets[0] <= offsets[1], offsets[1] <= payloadSize else {
                throw SafeTensorsError("\(name): malformed entry for tensor '\(key)'")
            }
            let elements = shape.reduce(1, *)
            let range = (headerEnd + offsets[0])..<(headerEnd + offsets[1])
            let elementSize: Int
            switch dtype {
            case "F32": elementSize = 4
            case "F16", "BF16": elementSize = 2
            case "U8": elementSize = 1
            default: throw SafeTensorsError("\(name): tensor '\(key)' has unsupported dtype \(dtype)")
            }
            guard range.count == elements * elementSize else {
                throw SafeTensorsError("\(name): tensor '\(key)' has \(range.count) bytes, shape \(shape) needs \(elements * elementSize)")
            }
            let bytes = [UInt8](data.subdata(in: range))
            switch dtype {
            case "U8":
                byteTensors[key] = (shape, bytes)
            case "F32":
                var values = [Float](repeating: 0, count: elements)
                values.withUnsafeMutableBytes { $0.copyBytes(from: bytes) }
                tensors[key] = Tensor(shape: shape, storage: values)
            default:
                let halves = (0..<elements).map { UInt16(bytes[2 * $0]) | UInt16(bytes[2 * $0 + 1]) << 8 }
                let values = dtype == "BF16"
                    ? halves.map { Float(bitPattern: UInt32($0) << 16) }
                    : halves.map { Float(Float16(bitPattern: $0)) }
                tensors[key] = Tensor(shape: shape, storage: values)
            }
        }
        self.init(metadata: metadata, tensors: tensors, byteTensors: byteTensors)
    }
}

extension Layer {
    /// Every named parameter's value, for saving.
    public func stateDictionary(prefix: String = "") -> [String: Tensor] {
        Dictionary(uniqueKeysWithValues: namedParameters.map { (prefix + $0.name, $0.parameter.value) })
    }

    /// Loads values by name; every parameter must be present with its exact shape.
    public func load(stateDictionary: [String: Tensor], prefix: String = "", source: String = "weights") throws {
        for (name, parameter) in namedParameters {
            guard let value = stateDictionary[prefix + name] else {
                throw SafeTensorsError("\(source) lacks tensor '\(prefix + name)' that the architecture needs")
            }
            guard value.shape == parameter.value.shape else {
                throw SafeTensorsError("\(source): tensor '\(prefix + name)' has shape \(value.shape), the architecture needs \(parameter.value.shape)")
            }
            parameter.value = value
        }
    }
}
