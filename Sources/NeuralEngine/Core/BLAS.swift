import COpenBLAS

/// The one door to OpenBLAS. Matrices are row-major.
public enum BLAS {
    /// Threads OpenBLAS may use for one call.
    public static var threadCount: Int {
        get { _ = BLASKernels.selection; return Int(openblas_get_num_threads()) }
        set { _ = BLASKernels.selection; openblas_set_num_threads(Int32(max(1, newValue))) }
    }

    /// C[m x n] = alpha * op(A) * op(B) + beta * C, where op(A) is m x k and op(B) is k x n.
    @inline(__always)
    static func gemm(
        transposeA: Bool, transposeB: Bool, m: Int, n: Int, k: Int,
        alpha: Float = 1, a: UnsafePointer<Float>, lda: Int,
        b: UnsafePointer<Float>, ldb: Int,
        beta: Float, c: UnsafeMutablePointer<Float>, ldc: Int
    ) {
        _ = BLASKernels.selection
        cblas_sgemm(CblasRowMajor,
                    transposeA ? CblasTrans : CblasNoTrans,
                    transposeB ? CblasTrans : CblasNoTrans,
                    Int32(m), Int32(n), Int32(k), alpha, a, Int32(lda), b, Int32(ldb), beta, c, Int32(ldc))
    }
}
