import Foundation
import NeuralEngine

/// The MTCNN state dicts in one safetensors file, as Scripts/convert_mtcnn_weights.py writes them from
/// facenet-pytorch's pnet.pt, rnet.pt and onet.pt: the original names under the prefixes `pnet.`, `rnet.`,
/// `onet.` (`pnet.conv1.weight`, `rnet.dense4.bias`, ...), float32.
public struct MTCNNWeights: Sendable {
    /// The file name Scripts/setup.sh gives the converted weights in Samples/thirdparty/models.
    public static let fileName = "mtcnn.safetensors"

    public let tensors: [String: Tensor]
    /// Where the tensors came from, for messages.
    public let source: String

    public init(tensors: [String: Tensor], source: String = "weights") {
        self.tensors = tensors
        self.source = source
    }

    /// Reads and checks the file: a missing file, another kind of file and a truncated one each give their
    /// own error before any tensor is looked at.
    public init(contentsOf url: URL) throws(MTCNNError) {
        let path = url.path
        var isFolder: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isFolder) else {
            throw .unreadable(path: path, reason: "no such file (run Scripts/setup.sh)")
        }
        guard !isFolder.boolValue else { throw .unreadable(path: path, reason: "is a folder") }
        let data: Data
        do { data = try Data(contentsOf: url, options: .mappedIfSafe) } catch {
            throw .unreadable(path: path, reason: error.localizedDescription)
        }
        try Self.checkLayout(data, path: path)
        let file: SafeTensorsFile
        do { file = try SafeTensorsFile(data: data, name: url.lastPathComponent) } catch {
            throw .malformed(path: path, reason: "\(error)")
        }
        self.init(tensors: file.tensors, source: url.lastPathComponent)
    }

    /// Tells a foreign file from a truncated one: the 8-byte header length must be plausible and the JSON
    /// header readable (else not safetensors), and the file must hold every byte the header describes.
    private static func checkLayout(_ data: Data, path: String) throws(MTCNNError) {
        guard data.count >= 8 else { throw .notSafeTensors(path: path, reason: "only \(data.count) bytes") }
        let headerLength = data.prefix(8).enumerated().reduce(UInt64(0)) { $0 | UInt64($1.element) << (8 * UInt64($1.offset)) }
        guard headerLength >= 2, headerLength < 100_000_000 else {
            throw .notSafeTensors(path: path, reason: "implausible header length \(headerLength)")
        }
        let headerEnd = 8 + Int(headerLength)
        guard data.count > 8, data[data.startIndex + 8] == UInt8(ascii: "{") else {
            throw .notSafeTensors(path: path, reason: "no JSON header")
        }
        guard headerEnd <= data.count else {
            throw .truncated(path: path, expectedBytes: headerEnd, actualBytes: data.count)
        }
        let headerBytes = data.subdata(in: (data.startIndex + 8)..<(data.startIndex + headerEnd))
        guard let header = (try? JSONSerialization.jsonObject(with: headerBytes)) as? [String: Any] else {
            throw .notSafeTensors(path: path, reason: "the header is not a JSON object")
        }
        var payload = 0
        for (name, entry) in header where name != "__metadata__" {
            guard let offsets = (entry as? [String: Any])?["data_offsets"] as? [Int], offsets.count == 2 else {
                throw .malformed(path: path, reason: "tensor '\(name)' has no data offsets")
            }
            payload = max(payload, offsets[1])
        }
        guard headerEnd + payload <= data.count else {
            throw .truncated(path: path, expectedBytes: headerEnd + payload, actualBytes: data.count)
        }
    }

    /// The tensor `name` with exactly `shape`.
    func tensor(_ name: String, _ shape: [Int]) throws(MTCNNError) -> Tensor {
        guard let tensor = tensors[name] else { throw .missingTensor(name: name, source: source) }
        guard tensor.shape == shape else { throw .shapeMismatch(name: name, expected: shape, found: tensor.shape) }
        return tensor
    }

    /// A stride-1, unpadded convolution `prefix`.weight / `prefix`.bias.
    func convolution(_ prefix: String, in inChannels: Int, out outChannels: Int, kernel: Int) throws(MTCNNError) -> Conv2d {
        Conv2d(weight: try tensor(prefix + ".weight", [outChannels, inChannels, kernel, kernel]),
               bias: try tensor(prefix + ".bias", [outChannels]), stride: 1, padding: .uniform(0), groups: 1)
    }

    func prelu(_ prefix: String, channels: Int) throws(MTCNNError) -> PReLU {
        PReLU(slope: try tensor(prefix + ".weight", [channels]))
    }

    func dense(_ prefix: String, in inFeatures: Int, out outFeatures: Int) throws(MTCNNError) -> Linear {
        Linear(weight: try tensor(prefix + ".weight", [outFeatures, inFeatures]),
               bias: try tensor(prefix + ".bias", [outFeatures]))
    }

    /// The first dense layer after facenet-pytorch's `x.permute(0, 3, 2, 1).contiguous().view(N, -1)`: its input
    /// columns follow (width, height, channel) order. Reordering the columns once to (channel, height, width)
    /// lets the layer read our NCHW activations flattened as they are.
    func denseAfterPermute(_ prefix: String, channels: Int, height: Int, width: Int,
                           out outFeatures: Int) throws(MTCNNError) -> Linear {
        let inFeatures = channels * height * width
        let original = try tensor(prefix + ".weight", [outFeatures, inFeatures])
        var reordered = [Float](repeating: 0, count: original.count)
        for o in 0..<outFeatures {
            for c in 0..<channels {
                for h in 0..<height {
                    for w in 0..<width {
                        let ours = (c * height + h) * width + w
                        let theirs = (w * height + h) * channels + c
                        reordered[o * inFeatures + ours] = original.storage[o * inFeatures + theirs]
                    }
                }
            }
        }
        return Linear(weight: Tensor(shape: [outFeatures, inFeatures], storage: reordered),
                      bias: try tensor(prefix + ".bias", [outFeatures]))
    }
}
