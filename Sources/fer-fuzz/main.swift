import EmotionModel
import FaceDetection
import Foundation
import NeuralEngine

// The readers of files users hand us, each fed arbitrary bytes: a reader may throw, but never crash, hang or read
// out of bounds. Scripts/fuzz.sh builds this with -D FUZZING, AddressSanitizer and coverage instrumentation, and
// libFuzzer drives it:
//
//     fer-fuzz TARGET [libFuzzer options] [CORPUS...]       TARGET: safetensors, tflite, model-metadata
//
// Built normally, it replays files through a target instead (fer-fuzz TARGET FILE...), to reproduce a crash.

enum FuzzTarget: String, CaseIterable {
    /// SafeTensorsFile: the header length, the JSON header, tensor offsets and dtypes.
    case safetensors
    /// TFLiteModel: our FlatBuffer reader over a .tflite file (the BlazeFace models).
    case tflite
    /// EmotionModelFile: the metadata of a `--model` file (architecture, classes, preprocessing) and the check of
    /// its tensors against the architecture. The input is the metadata as JSON (an object of strings).
    case modelMetadata = "model-metadata"

    func run(_ bytes: [UInt8]) {
        switch self {
        case .safetensors:
            _ = try? SafeTensorsFile(data: Data(bytes), name: "fuzz")
        case .tflite:
            _ = try? TFLiteModel(bytes: bytes)
        case .modelMetadata:
            guard let metadata = try? JSONDecoder().decode([String: String].self, from: Data(bytes)) else { return }
            _ = try? EmotionModelFile(file: SafeTensorsFile(metadata: metadata), source: "fuzz")
        }
    }
}

let arguments = CommandLine.arguments
guard arguments.count >= 2, let target = FuzzTarget(rawValue: arguments[1]) else {
    let names = FuzzTarget.allCases.map(\.rawValue).joined(separator: ", ")
    FileHandle.standardError.write(Data("usage: fer-fuzz TARGET [libFuzzer options | FILE...]; TARGET: \(names)\n".utf8))
    exit(64)
}

#if FUZZING
nonisolated(unsafe) var selectedTarget = target

@_silgen_name("LLVMFuzzerRunDriver")
func LLVMFuzzerRunDriver(_ argc: UnsafeMutablePointer<Int32>,
                         _ argv: UnsafeMutablePointer<UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?>,
                         _ callback: @convention(c) (UnsafePointer<UInt8>?, Int) -> Int32) -> Int32

/// libFuzzer's entry point; its driver refers to it even when it is started through LLVMFuzzerRunDriver.
@_cdecl("LLVMFuzzerTestOneInput")
func fuzzOneInput(_ data: UnsafePointer<UInt8>?, _ size: Int) -> Int32 {
    selectedTarget.run(size == 0 ? [] : Array(UnsafeBufferPointer(start: data, count: size)))
    return 0
}

// libFuzzer sees the program name and the options after TARGET.
var driverArguments = [arguments[0]] + arguments.dropFirst(2)
var cArguments: [UnsafeMutablePointer<CChar>?] = driverArguments.map { strdup($0) } + [nil]
var count = Int32(driverArguments.count)
let status = cArguments.withUnsafeMutableBufferPointer { buffer -> Int32 in
    var pointer: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>? = buffer.baseAddress
    return LLVMFuzzerRunDriver(&count, &pointer) { data, size in fuzzOneInput(data, size) }
}
exit(status)
#else
for path in arguments.dropFirst(2) {
    guard let data = FileManager.default.contents(atPath: path) else {
        FileHandle.standardError.write(Data("error: cannot read \(path)\n".utf8))
        exit(66)
    }
    target.run(Array(data))
    print("\(path): handled (\(data.count) bytes)")
}
#endif
