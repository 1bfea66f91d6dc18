import Dispatch
import Foundation
import MediaIO
import NeuralEngine
import VisionCore

/// Loads FER2013 as users have it: a folder tree `<root>/<split>/<class>/*.jpg|png` (Kaggle layout; class folder
/// names in any order and case) or the original `fer2013.csv` (`emotion,pixels,Usage`). Decoded images are cached
/// as a uint8 safetensors file next to the data (or in ~/.cache when that folder is read-only), so the
/// second run starts in seconds.
public enum FER2013 {
    public static let side = 48

    /// Split names as users type them, mapped to the CSV's Usage column.
    static func csvUsage(forSplit split: String) -> String? {
        switch split.lowercased() {
        case "train", "training": return "Training"
        case "val", "validation", "publictest", "public": return "PublicTest"
        case "test", "privatetest", "private": return "PrivateTest"
        default: return nil
        }
    }

    /// Loads one split. `progress` receives (done, total) while images are decoded the first time.
    public static func load(from path: String, split: String,
                            progress: (@Sendable (Int, Int) -> Void)? = nil) throws(EmotionModelError) -> FaceDataset {
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) else {
            throw .dataNotFound("data not found: \(path) (expected a folder <split>/<class>/*.jpg or fer2013.csv)")
        }
        if isDirectory.boolValue {
            let folder = try splitFolder(root: path, split: split)
            return try cached(source: folder, key: split) { () throws(EmotionModelError) in
                try loadFolder(folder, progress: progress)
            }
        }
        guard let usage = csvUsage(forSplit: split) else {
            throw .badOption("unknown split '\(split)' for a CSV; use train, val (PublicTest) or test (PrivateTest)")
        }
        return try cached(source: path, key: usage) { () throws(EmotionModelError) in try loadCSV(path, usage: usage) }
    }

    /// `<root>/<split>`, also looking one level down (`<root>/fer2013/<split>`, as the archive unpacks).
    static func splitFolder(root: String, split: String) throws(EmotionModelError) -> String {
        let candidates = [root + "/" + split, root + "/fer2013/" + split]
        for candidate in candidates {
            var isDirectory: ObjCBool = false
            if FileManager.default.fileExists(atPath: candidate, isDirectory: &isDirectory), isDirectory.boolValue {
                return candidate
            }
        }
        let present = (try? FileManager.default.contentsOfDirectory(atPath: root))?.sorted().joined(separator: ", ") ?? ""
        throw .dataNotFound("no split '\(split)' under \(root) (found: \(present))")
    }

    // MARK: Folder layout

    static func imageFiles(in folder: String) throws(EmotionModelError) -> [(path: String, label: Int)] {
        let manager = FileManager.default
        guard let classFolders = try? manager.contentsOfDirectory(atPath: folder) else {
            throw .dataNotFound("cannot list \(folder)")
        }
        var files: [(path: String, label: Int)] = []
        var unknown: [String] = []
        for name in classFolders.sorted() where !name.hasPrefix(".") {
            let classPath = folder + "/" + name
            var isDirectory: ObjCBool = false
            guard manager.fileExists(atPath: classPath, isDirectory: &isDirectory), isDirectory.boolValue else { continue }
            guard let emotion = Emotion(name: name) else { unknown.append(name); continue }
            let entries = ((try? manager.contentsOfDirectory(atPath: classPath)) ?? []).sorted()
            for entry in entries where ["jpg", "jpeg", "png", "bmp"].contains((entry as NSString).pathExtension.lowercased()) {
                files.append((classPath + "/" + entry, emotion.rawValue))
            }
        }
        if !unknown.isEmpty {
            throw .badDataSet("\(folder): class folders \(unknown) are not FER2013 classes (\(Emotion.names.joined(separator: ", ")))")
        }
        if files.isEmpty { throw .badDataSet("\(folder): no JPEG or PNG images in class folders") }
        return files
    }

    static func loadFolder(_ folder: String, progress: (@Sendable (Int, Int) -> Void)?) throws(EmotionModelError) -> FaceDataset {
        let files = try imageFiles(in: folder)
        let pixelsPerImage = side * side
        let decoded = DecodedImages(count: files.count, pixelsPerImage: pixelsPerImage)
        let chunk = 256
        let chunks = (files.count + chunk - 1) / chunk
        DispatchQueue.concurrentPerform(iterations: chunks) { chunkIndex in
            for index in (chunkIndex * chunk)..<min(files.count, (chunkIndex + 1) * chunk) {
                do {
                    let image = try decodeImage(at: files[index].path, as: .gray8)
                    decoded.store(resizeGray(image, side: side), at: index)
                } catch {
                    decoded.fail("\(files[index].path): \(error)")
                }
            }
            progress?(decoded.completed(chunk: min(chunk, files.count - chunkIndex * chunk)), files.count)
        }
        if let failure = decoded.firstFailure { throw .badDataSet("cannot decode \(failure)") }
        return FaceDataset(side: side, pixels: decoded.pixels, labels: files.map(\.label))
    }

    // MARK: CSV

    static func loadCSV(_ path: String, usage: String) throws(EmotionModelError) -> FaceDataset {
        guard let text = try? String(contentsOfFile: path, encoding: .utf8) else {
            throw .dataNotFound("cannot read \(path)")
        }
        var lines = text.split(whereSeparator: \.isNewline).makeIterator()
        guard let header = lines.next()?.split(separator: ",").map({ $0.trimmingCharacters(in: .whitespaces).lowercased() }),
              let emotionColumn = header.firstIndex(of: "emotion"), let pixelColumn = header.firstIndex(of: "pixels") else {
            throw .badDataSet("\(path): expected a header with emotion,pixels[,Usage]")
        }
        let usageColumn = header.firstIndex(of: "usage")
        var pixels: [UInt8] = []
        var labels: [Int] = []
        var lineNumber = 1
        while let line = lines.next() {
            lineNumber += 1
            let fields = line.split(separator: ",", omittingEmptySubsequences: false)
            guard fields.count == header.count else {
                throw .badDataSet("\(path):\(lineNumber): expected \(header.count) fields, found \(fields.count)")
            }
            if let usageColumn, fields[usageColumn].trimmingCharacters(in: .whitespaces) != usage { continue }
            guard let label = Int(fields[emotionColumn]), (0..<Emotion.allCases.count).contains(label) else {
                throw .badDataSet("\(path):\(lineNumber): emotion must be 0 to 6")
            }
            let values = fields[pixelColumn].split(separator: " ").compactMap { UInt8($0) }
            guard values.count == side * side else {
                throw .badDataSet("\(path):\(lineNumber): expected \(side * side) pixel values, found \(values.count)")
            }
            pixels.append(contentsOf: values)
            labels.append(label)
        }
        if labels.isEmpty { throw .badDataSet("\(path): no rows with Usage \(usage)") }
        return FaceDataset(side: side, pixels: pixels, labels: labels)
    }

    // MARK: Cache

    /// The source's content: an FNV-1a hash over every image file's path (relative to the split), size and bytes,
    /// or over the CSV's bytes. Hashing reads the files once (about 0.2 s for FER2013's 47 MB of JPEGs), far less
    /// than decoding them, and a cache can then never serve other images: a file changed in place, one replaced by
    /// another of the same size (the blurred and the restored Training splits have equal file counts), a renamed
    /// class folder.
    static func fingerprint(of source: String) -> String {
        let manager = FileManager.default
        var hash = ContentHash()
        var count = 0
        var bytes = 0
        var isDirectory: ObjCBool = false
        if manager.fileExists(atPath: source, isDirectory: &isDirectory), isDirectory.boolValue {
            let files = (manager.enumerator(atPath: source)?.allObjects as? [String] ?? []).sorted()
            for relative in files {
                guard let data = manager.contents(atPath: source + "/" + relative) else { continue }
                hash.add(relative)
                hash.add(String(data.count))
                hash.add(data)
                count += 1
                bytes += data.count
            }
        } else if let data = manager.contents(atPath: source) {
            hash.add(data)
            count = 1
            bytes = data.count
        }
        return "fnv1a64 \(String(hash.value, radix: 16)), \(count) files, \(bytes) bytes"
    }

    static func cacheLocations(source: String, key: String) -> [URL] {
        let sourceURL = URL(fileURLWithPath: source).standardizedFileURL
        let name = ".fer-annotate-cache-\(sourceURL.lastPathComponent)-\(key).safetensors"
        let beside = sourceURL.deletingLastPathComponent().appendingPathComponent(name)
        var pathHash = ContentHash()
        pathHash.add(sourceURL.path)
        let home = URL(fileURLWithPath: NSHomeDirectory()).appendingPathComponent(".cache/fer-annotate")
            .appendingPathComponent(String(pathHash.value, radix: 16) + "-" + key + ".safetensors")
        return [beside, home]
    }

    static func cached(source: String, key: String,
                       build: () throws(EmotionModelError) -> FaceDataset) throws(EmotionModelError) -> FaceDataset {
        let print = fingerprint(of: source)
        let locations = cacheLocations(source: source, key: key)
        for location in locations {
            if let file = try? SafeTensorsFile(contentsOf: location), file.metadata["fingerprint"] == print,
               let images = file.byteTensors["images"], let labels = file.byteTensors["labels"],
               images.shape.count == 3, images.shape[1] == side, images.bytes.count == labels.bytes.count * side * side {
                return FaceDataset(side: side, pixels: images.bytes, labels: labels.bytes.map(Int.init))
            }
        }
        let dataset = try build()
        let file = SafeTensorsFile(
            metadata: ["fingerprint": print, "source": source, "split": key, "classes": Emotion.names.joined(separator: ",")],
            byteTensors: ["images": (shape: [dataset.count, side, side], bytes: dataset.pixels),
                          "labels": (shape: [dataset.count], bytes: dataset.labels.map { UInt8($0) })])
        for location in locations where (try? file.write(to: location)) != nil { break }
        return dataset
    }
}

/// 64-bit FNV-1a, fed strings (with a separator, so "ab"+"c" differs from "a"+"bc") and bytes.
struct ContentHash {
    private(set) var value: UInt64 = 0xcbf2_9ce4_8422_2325

    mutating func add(_ data: Data) {
        data.withUnsafeBytes { raw in
            var hash = value
            for byte in raw { hash = (hash ^ UInt64(byte)) &* 0x100_0000_01b3 }
            value = hash
        }
    }

    mutating func add(_ text: String) {
        add(Data(text.utf8))
        add(Data([0]))
    }
}

/// Results of parallel decoding; each index is written by exactly one worker, into a buffer that is never
/// reallocated (an Array would see overlapping exclusive accesses).
private final class DecodedImages: @unchecked Sendable {
    private let buffer: UnsafeMutableBufferPointer<UInt8>
    private let pixelsPerImage: Int
    private let lock = NSLock()
    private var done = 0
    private(set) var firstFailure: String?

    init(count: Int, pixelsPerImage: Int) {
        buffer = .allocate(capacity: count * pixelsPerImage)
        buffer.initialize(repeating: 0)
        self.pixelsPerImage = pixelsPerImage
    }

    deinit { buffer.deallocate() }

    var pixels: [UInt8] { Array(buffer) }

    func store(_ image: [UInt8], at index: Int) {
        for offset in 0..<pixelsPerImage { buffer[index * pixelsPerImage + offset] = image[offset] }
    }

    func fail(_ message: String) {
        lock.lock(); defer { lock.unlock() }
        if firstFailure == nil { firstFailure = message }
    }

    func completed(chunk: Int) -> Int {
        lock.lock(); defer { lock.unlock() }
        done += chunk
        return done
    }
}
