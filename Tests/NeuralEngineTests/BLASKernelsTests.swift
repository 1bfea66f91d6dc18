import Foundation
import NeuralEngine
import XCTest

final class BLASKernelsTests: XCTestCase {
    func testPreferredKernelsFollowTheCPUFlags() {
        let avx512: Set<String> = ["sse4_2", "avx", "avx2", "fma", "avx512f", "avx512bw", "avx512vl", "avx512dq", "avx512cd"]
        XCTAssertEqual(BLASKernels.preferredName(flags: avx512), "SkylakeX")
        XCTAssertEqual(BLASKernels.preferredName(flags: avx512.subtracting(["avx512bw"])), "Haswell")
        XCTAssertEqual(BLASKernels.preferredName(flags: ["sse4_2", "avx", "avx2", "fma"]), "Haswell")
        XCTAssertNil(BLASKernels.preferredName(flags: ["sse4_2", "avx"]))
    }

    /// On a CPU with AVX2 and FMA the engine never runs OpenBLAS's pre-AVX2 fallback kernels (Debian 12's OpenBLAS
    /// picks its SSE3 "Prescott" set on Sapphire/Emerald Rapids: 3-5x slower sgemm), and the kernels in use
    /// multiply exactly.
    func testEngineRunsVectorKernelsTheCPUSupports() throws {
        let cpuinfo = try String(contentsOfFile: "/proc/cpuinfo", encoding: .utf8)
        let flags = Set(cpuinfo.split(separator: "\n").first { $0.hasPrefix("flags") }?
            .split(whereSeparator: { $0 == " " || $0 == "\t" || $0 == ":" }).map(String.init) ?? [])
        let name = BLASKernels.name
        print("OpenBLAS kernels: \(name)" + (BLASKernels.switched.map { " (switched from \($0.from))" } ?? ""))
        XCTAssertTrue(BLASKernels.productIsExact())
        if ProcessInfo.processInfo.environment["OPENBLAS_CORETYPE"] != nil {
            throw XCTSkip("OPENBLAS_CORETYPE is set by the environment; the engine leaves the kernel choice to it")
        }
        guard BLASKernels.preferredName(flags: flags) != nil else {
            throw XCTSkip("this CPU has no AVX2+FMA: OpenBLAS's own choice is the best there is")
        }
        XCTAssertFalse(BLASKernels.fallbackNames.contains(name.lowercased()),
                       "OpenBLAS runs its \(name) kernels on a CPU with AVX2/AVX-512")
    }
}
