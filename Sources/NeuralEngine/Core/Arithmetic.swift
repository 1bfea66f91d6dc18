/// Arithmetic the compiler only turns into the fast instructions when it is spelled out this way.

/// `accumulator + a * b` as one fused instruction where the build targets a CPU with FMA (Package.swift defines
/// FUSED_MULTIPLY_ADD when it targets Haswell-level x86-64), else as a multiply and an add. Swift never contracts
/// `a * b + c` by itself, and `addingProduct` on a CPU without FMA becomes a library call per lane, so the choice
/// is made at build time. Fused results differ from the unfused ones by at most one rounding. Inlinable, so
/// that other modules' loops get the instruction, not a call.
@inlinable @inline(__always)
public func multiplyAdd(_ accumulator: SIMD8<Float>, _ a: SIMD8<Float>, _ b: SIMD8<Float>) -> SIMD8<Float> {
    #if FUSED_MULTIPLY_ADD
    return accumulator.addingProduct(a, b)
    #else
    return accumulator + a * b
    #endif
}

/// The larger of two floats as a plain comparison, which the compiler vectorises in loops (`Swift.max` orders
/// NaNs, and the standard library's pointwise max on SIMD vectors goes lane by lane).
@inlinable @inline(__always)
public func larger(_ a: Float, _ b: Float) -> Float { b > a ? b : a }
