import Foundation
import NeuralEngine
import VisionCore

/// The on-disk model: safetensors whose metadata names the architecture and its configuration, the class names in
/// order, the input size and the input preprocessing (low-pass and normalisation), so that the file alone rebuilds the network.
public struct EmotionModelFile {
    public static let formatTag = "fer-annotate.emotion-model.v1"

    public var architecture: ArchitectureConfig
    public var classNames: [String]
    public var preprocessing: InputPreprocessing
    public var weights: [String: Tensor]
    /// Free-form provenance (trained by, epoch, validation accuracy, options).
    public var provenance: [String: String]

    public init(architecture: ArchitectureConfig, classNames: [String], preprocessing: InputPreprocessing,
                weights: [String: Tensor], provenance: [String: String] = [:]) {
        self.architecture = architecture
        self.classNames = classNames
        self.preprocessing = preprocessing
        self.weights = weights
        self.provenance = provenance
    }

    public var metadata: [String: String] {
        var metadata = provenance
        metadata["format"] = Self.formatTag
        metadata["architecture"] = String(decoding: try! JSONEncoder().encode(architecture), as: UTF8.self)
        metadata["classes"] = classNames.joined(separator: ",")
        metadata["input_size"] = String(architecture.inputSize)
        metadata["preprocessing"] = String(decoding: try! JSONEncoder().encode(preprocessing), as: UTF8.self)
        return metadata
    }

    public init(file: SafeTensorsFile, source: String) throws(EmotionModelError) {
        let metadata = file.metadata
        guard metadata["format"] == Self.formatTag else {
            throw .badModelFile("\(source) is not a fer-annotate emotion model (format tag '\(metadata["format"] ?? "none")')")
        }
        guard let architectureJSON = metadata["architecture"],
              let architecture = try? JSONDecoder().decode(ArchitectureConfig.self, from: Data(architectureJSON.utf8)),
              let preprocessingJSON = metadata["preprocessing"],
              let preprocessing = try? JSONDecoder().decode(InputPreprocessing.self, from: Data(preprocessingJSON.utf8)),
              let classes = metadata["classes"]?.split(separator: ",").map(String.init),
              classes.count == architecture.classes else {
            throw .badModelFile("\(source): metadata lacks a valid architecture, preprocessing or class list")
        }
        let known: Set<String> = ["format", "architecture", "classes", "input_size", "preprocessing"]
        self.init(architecture: architecture, classNames: classes, preprocessing: preprocessing,
                  weights: file.tensors, provenance: metadata.filter { !known.contains($0.key) })
    }

    public init(contentsOf url: URL) throws(EmotionModelError) {
        let file: SafeTensorsFile
        do { file = try SafeTensorsFile(contentsOf: url) } catch { throw .badModelFile("\(error)") }
        try self.init(file: file, source: url.path)
    }

    /// Builds the network and loads the weights; a file whose tensors do not fit its declared architecture fails.
    public func makeNetwork(source: String = "model") throws(EmotionModelError) -> Sequential {
        let network = architecture.makeNetwork(seed: 0)
        do {
            try network.load(stateDictionary: weights, prefix: "network.", source: source)
        } catch {
            throw .badModelFile("\(error) (architecture '\(architecture.name)')")
        }
        return network
    }

    public func write(to url: URL, extraTensors: [String: Tensor] = [:], extraMetadata: [String: String] = [:]) throws(EmotionModelError) {
        var tensors = weights
        tensors.merge(extraTensors) { current, _ in current }
        let file = SafeTensorsFile(metadata: metadata.merging(extraMetadata) { _, new in new }, tensors: tensors)
        do { try file.write(to: url) } catch { throw .io("\(error)") }
    }
}
