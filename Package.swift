// swift-tools-version:6.0
import Foundation
import PackageDescription

// Dependencies point one way, top to bottom:
//   C libraries -> NeuralEngine / MediaIO -> VisionCore -> EmotionModel -> executables.
// Only MediaIO imports CFFmpeg; only NeuralEngine imports COpenBLAS.

// Our own hot loops (depthwise convolutions, Winograd transforms, resampling, drawing) are plain Swift that the
// compiler vectorises: for baseline x86-64 that means 4-wide SSE2; with AVX2 (8-wide) BlazeFace runs about 12%
// faster. Release builds therefore target Haswell-level CPUs (AVX2, FMA, BMI2, F16C, MOVBE) when the building
// machine has them; OpenBLAS picks its kernels at run time either way. FER_ANNOTATE_PORTABLE=1 builds for
// baseline x86-64, for binaries that will run on other machines.
let targetCPU: [String] = {
    #if arch(x86_64) && os(Linux)
    guard ProcessInfo.processInfo.environment["FER_ANNOTATE_PORTABLE"] == nil,
          let cpuinfo = try? String(contentsOfFile: "/proc/cpuinfo", encoding: .utf8),
          let flagsLine = cpuinfo.split(separator: "\n").first(where: { $0.hasPrefix("flags") }) else { return [] }
    let flags = Set(flagsLine.split(separator: " ").map(String.init))
    return ["avx2", "fma", "bmi2", "f16c", "movbe"].allSatisfy(flags.contains) ? ["-target-cpu", "haswell"] : []
    #else
    return []
    #endif
}()
// With the Haswell target, FUSED_MULTIPLY_ADD lets hot loops ask for FMA instructions (NeuralEngine's multiplyAdd).
let fusedMultiplyAdd: [String] = targetCPU.isEmpty ? [] : ["-DFUSED_MULTIPLY_ADD"]
let optimised: [SwiftSetting] = [.unsafeFlags(["-Ounchecked", "-wmo"] + targetCPU + fusedMultiplyAdd,
                                              .when(configuration: .release))]

let package = Package(
    name: "fer-annotate",
    platforms: [.macOS(.v14)],
    products: [
        .executable(name: "fer-annotate", targets: ["fer-annotate"]),
        .executable(name: "fer-train", targets: ["fer-train"]),
        .executable(name: "fer-eval", targets: ["fer-eval"]),
        .executable(name: "fer-bench", targets: ["fer-bench"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
        .package(url: "https://github.com/hummingbird-project/hummingbird", from: "2.28.0"),
        .package(url: "https://github.com/hummingbird-project/hummingbird-websocket", from: "2.8.0"),
        .package(url: "https://github.com/groue/GRDB.swift", from: "7.10.0"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle", from: "2.0.0"),
    ],
    targets: [
        // Thin system-library targets: headers and link flags only.
        .systemLibrary(name: "CFFmpeg", pkgConfig: "libavformat libavcodec libswscale libavutil libavdevice",
                       providers: [.apt(["libavformat-dev", "libavcodec-dev", "libswscale-dev", "libavutil-dev", "libavdevice-dev"])]),
        .systemLibrary(name: "COpenBLAS", pkgConfig: "openblas", providers: [.apt(["libopenblas-dev"])]),
        .systemLibrary(name: "CFreeType", pkgConfig: "freetype2", providers: [.apt(["libfreetype-dev"])]),

        // Tensor engine: knows nothing about faces or video.
        .target(name: "NeuralEngine", dependencies: ["COpenBLAS"], swiftSettings: optimised),
        // FFmpeg behind Swift value types.
        .target(name: "MediaIO", dependencies: ["CFFmpeg", "VisionCore"], swiftSettings: optimised),
        // Value types shared by the stages: images, boxes, emotion scores.
        .target(name: "VisionCore", swiftSettings: optimised),
        // Emotion networks, FER2013 data, augmentation.
        .target(name: "EmotionModel", dependencies: ["NeuralEngine", "VisionCore", "MediaIO"],
                // The model card, its evaluation reports and the training log document the weights; only the
                // weights ship in the bundle.
                exclude: ["Resources/MODEL_CARD.md", "Resources/fer-vgg.log.csv", "Resources/report", "Resources/report-tta",
                          "Resources/class-weighting.json"],
                resources: [.copy("Resources/fer-vgg.safetensors")], swiftSettings: optimised),
        // Face detectors on our engine: BlazeFace from TFLite files (and later MTCNN).
        .target(name: "FaceDetection", dependencies: ["NeuralEngine", "VisionCore"], swiftSettings: optimised),
        // Multi-face tracking with stable IDs: Kalman box filter, Hungarian assignment, ByteTrack-style passes.
        .target(name: "FaceTracking", dependencies: ["VisionCore"], swiftSettings: optimised),
        // The runner: bounded stages from decoder to encoder, drawing (FreeType), CSV/JSON/plot writers.
        .target(name: "AnnotationPipeline", dependencies: [
            "MediaIO", "VisionCore", "EmotionModel", "FaceDetection", "FaceTracking", "CFreeType",
        ], swiftSettings: optimised),
        // Classifier metrics (confusion, PRF, ROC/AUC) and the self-contained HTML/SVG report.
        .target(name: "ModelEvaluation", swiftSettings: optimised),

        // The web app (`fer-annotate serve`): HTTP API, uploads run as jobs, the webcam over a WebSocket, a job table
        // in SQLite; the page (HTML, CSS, JavaScript) ships in its resources.
        .target(name: "AnnotationServer", dependencies: [
            "AnnotationPipeline", "MediaIO", "VisionCore", "EmotionModel", "FaceDetection", "FaceTracking",
            .product(name: "Hummingbird", package: "hummingbird"),
            .product(name: "HummingbirdWebSocket", package: "hummingbird-websocket"),
            .product(name: "GRDB", package: "GRDB.swift"),
            .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
        ], resources: [.copy("Resources/page"), .copy("Resources/openapi.json")], swiftSettings: optimised),

        .executableTarget(name: "fer-annotate", dependencies: [
            "MediaIO", "VisionCore", "EmotionModel", "FaceDetection", "FaceTracking", "AnnotationPipeline", "NeuralEngine",
            "AnnotationServer",
            .product(name: "ArgumentParser", package: "swift-argument-parser"),
        ], swiftSettings: optimised),
        .executableTarget(name: "fer-train", dependencies: [
            "EmotionModel", "NeuralEngine", "MediaIO",
            .product(name: "ArgumentParser", package: "swift-argument-parser"),
        ], swiftSettings: optimised),
        .executableTarget(name: "fer-eval", dependencies: [
            "EmotionModel", "NeuralEngine", "ModelEvaluation", "MediaIO",
            .product(name: "ArgumentParser", package: "swift-argument-parser"),
        ], swiftSettings: optimised),

        .executableTarget(name: "fer-bench", dependencies: [
            "EmotionModel", "NeuralEngine", "FaceDetection", "FaceTracking", "MediaIO", "VisionCore",
            .product(name: "ArgumentParser", package: "swift-argument-parser"),
        ], swiftSettings: optimised),

        // Fuzz harnesses of the file readers (Scripts/fuzz.sh builds them with libFuzzer; built normally, a replayer).
        .executableTarget(name: "fer-fuzz", dependencies: ["EmotionModel", "NeuralEngine", "FaceDetection"]),

        // Test support: counts malloc calls (steady-state inference must make none).
        .target(name: "CMallocCounter", path: "Tests/CMallocCounter"),
        .testTarget(name: "NeuralEngineTests", dependencies: ["NeuralEngine", "CMallocCounter"]),
        .testTarget(name: "MediaIOTests", dependencies: ["MediaIO", "VisionCore"]),
        .testTarget(name: "EmotionModelTests", dependencies: ["EmotionModel", "NeuralEngine", "MediaIO", "CMallocCounter"]),
        .testTarget(name: "ModelEvaluationTests", dependencies: ["ModelEvaluation"]),
        .testTarget(name: "FaceDetectionTests", dependencies: ["FaceDetection", "FaceTracking", "NeuralEngine", "VisionCore", "MediaIO"],
                    exclude: ["Fixtures"]),
        .testTarget(name: "FaceTrackingTests", dependencies: ["FaceTracking", "VisionCore"]),
        .testTarget(name: "LiveStreamTests", dependencies: ["AnnotationPipeline", "MediaIO", "VisionCore"]),
        .testTarget(name: "AnnotationServerTests", dependencies: ["AnnotationServer", "MediaIO", "VisionCore"]),
        .testTarget(name: "AnnotationPipelineTests", dependencies: ["AnnotationPipeline", "EmotionModel", "VisionCore", "MediaIO"]),
    ]
)
