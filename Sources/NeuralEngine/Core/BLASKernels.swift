import COpenBLAS
#if canImport(Glibc)
import Glibc
#endif

/// OpenBLAS picks its kernels by CPU model at load time. Debian 12's 0.3.21 does not know recent Intel server
/// cores (Sapphire/Emerald Rapids) and falls back to its SSE3 "Prescott" kernels: measured on such a core,
/// sgemm runs at 20-44 GFLOPS instead of 108-234 with the AVX-512 ("SkylakeX") kernels the core supports, and
/// training ran at 40 images/s instead of about 130. When the library chose a pre-AVX2 kernel set on a CPU that
/// has AVX2/AVX-512, the engine switches to the best set the CPU's flags allow, before its first product, and
/// keeps it only if a small product checked against exact integer arithmetic agrees; otherwise it switches back.
/// `OPENBLAS_CORETYPE` set by the user always wins: the engine then leaves the choice alone.
public enum BLASKernels {
    /// The kernel set in use ("SkylakeX", "Haswell", ...).
    public static var name: String {
        _ = selection
        return currentName()
    }

    /// What happened at start-up: nil when OpenBLAS's own choice was kept.
    public static var switched: (from: String, to: String)? { selection }

    private static func currentName() -> String {
        guard let name = openblas_get_corename() else { return "unknown" }
        return String(cString: name)
    }

    /// Runs once, on the engine's first use of BLAS.
    static let selection: (from: String, to: String)? = select()

    /// Kernel sets without AVX2, which OpenBLAS falls back to for CPUs it does not recognise.
    public static let fallbackNames: Set<String> = ["prescott", "core2", "penryn", "dunnington", "nehalem", "atom", "katmai",
                                             "coppermine", "northwood", "banias", "sandybridge", "unknown"]

    /// The best kernel set for a CPU with these /proc/cpuinfo flags, or nil when it has no AVX2.
    public static func preferredName(flags: Set<String>) -> String? {
        if ["avx512f", "avx512bw", "avx512vl", "avx512dq", "avx512cd"].allSatisfy(flags.contains) { return "SkylakeX" }
        if ["avx2", "fma"].allSatisfy(flags.contains) { return "Haswell" }
        return nil
    }

    private static func select() -> (from: String, to: String)? {
        #if os(Linux) && arch(x86_64)
        guard getenv("OPENBLAS_CORETYPE") == nil else { return nil }
        let original = currentName()
        guard fallbackNames.contains(original.lowercased()), let preferred = preferredName(flags: cpuFlags()),
              let reselect = dynamicReselection() else { return nil }
        reselect(preferred)
        guard currentName().lowercased() == preferred.lowercased(), productIsExact() else {
            reselect(original)
            return nil
        }
        return (original, currentName())
        #else
        return nil
        #endif
    }

    /// DYNAMIC_ARCH builds (Debian's) export their start-up selection; a single-target build has nothing to switch.
    private static func dynamicReselection() -> ((String) -> Void)? {
        typealias Entry = @convention(c) () -> Void
        guard let quitSymbol = dlsym(UnsafeMutableRawPointer(bitPattern: 0), "gotoblas_dynamic_quit"),
              let initSymbol = dlsym(UnsafeMutableRawPointer(bitPattern: 0), "gotoblas_dynamic_init") else { return nil }
        let quit = unsafeBitCast(quitSymbol, to: Entry.self)
        let initialise = unsafeBitCast(initSymbol, to: Entry.self)
        return { name in
            setenv("OPENBLAS_CORETYPE", name, 1)
            quit()
            initialise()
            unsetenv("OPENBLAS_CORETYPE")
        }
    }

    private static func cpuFlags() -> Set<String> {
        guard let file = fopen("/proc/cpuinfo", "r") else { return [] }
        defer { fclose(file) }
        var line: UnsafeMutablePointer<CChar>?
        var capacity = 0
        defer { free(line) }
        while getline(&line, &capacity, file) > 0, let line {
            let text = String(cString: line)
            if text.hasPrefix("flags") {
                return Set(text.split(whereSeparator: { $0 == " " || $0 == "\t" || $0 == "\n" || $0 == ":" }).map(String.init))
            }
        }
        return []
    }

    /// A product with small integer entries is exact in Float, so any deviation means broken kernels. The shape
    /// is off every blocking size, and it runs both with and without transposes.
    public static func productIsExact() -> Bool {
        let m = 37, n = 53, k = 71
        let a = (0..<(m * k)).map { Float(($0 * 7 + 3) % 11) - 5 }
        let b = (0..<(k * n)).map { Float(($0 * 5 + 1) % 13) - 6 }
        var expected = [Float](repeating: 0, count: m * n)
        for row in 0..<m {
            for column in 0..<n {
                var sum = 0
                for inner in 0..<k { sum += Int(a[row * k + inner]) * Int(b[inner * n + column]) }
                expected[row * n + column] = Float(sum)
            }
        }
        var plain = [Float](repeating: 0, count: m * n)
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, Int32(m), Int32(n), Int32(k), 1,
                    a, Int32(k), b, Int32(n), 0, &plain, Int32(n))
        // (B^T)^T B-side: the same product through the transposed path, with B stored transposed.
        var bTransposed = [Float](repeating: 0, count: k * n)
        for inner in 0..<k { for column in 0..<n { bTransposed[column * k + inner] = b[inner * n + column] } }
        var transposed = [Float](repeating: 0, count: m * n)
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, Int32(m), Int32(n), Int32(k), 1,
                    a, Int32(k), bTransposed, Int32(k), 0, &transposed, Int32(n))
        return plain == expected && transposed == expected
    }
}
