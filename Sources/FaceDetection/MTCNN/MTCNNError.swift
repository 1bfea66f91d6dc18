/// Why the MTCNN weights could not be loaded.
public enum MTCNNError: Error, Sendable, Equatable, CustomStringConvertible {
    /// The file cannot be read at all (missing, a folder, no permission).
    case unreadable(path: String, reason: String)
    /// The bytes are not a safetensors file: another kind of file.
    case notSafeTensors(path: String, reason: String)
    /// The header promises more bytes than the file holds (an interrupted download or copy).
    case truncated(path: String, expectedBytes: Int, actualBytes: Int)
    /// A readable safetensors file whose entries are inconsistent (bad dtype, offsets, sizes).
    case malformed(path: String, reason: String)
    /// A tensor the networks need is absent: the file holds another model's weights.
    case missingTensor(name: String, source: String)
    /// A tensor is present with another shape than the network needs.
    case shapeMismatch(name: String, expected: [Int], found: [Int])

    public var description: String {
        switch self {
        case .unreadable(let path, let reason): return "cannot read MTCNN weights \(path): \(reason)"
        case .notSafeTensors(let path, let reason): return "\(path) is not a safetensors file: \(reason)"
        case .truncated(let path, let expected, let actual):
            return "\(path) is truncated: the header describes \(expected) bytes, the file has \(actual) "
                + "(run Scripts/setup.sh again)"
        case .malformed(let path, let reason): return "malformed safetensors file \(path): \(reason)"
        case .missingTensor(let name, let source):
            return "\(source) lacks tensor '\(name)': not MTCNN weights (Scripts/convert_mtcnn_weights.py writes them)"
        case .shapeMismatch(let name, let expected, let found):
            return "MTCNN tensor '\(name)' has shape \(found), the network needs \(expected)"
        }
    }
}
