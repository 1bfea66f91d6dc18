/// Y = W X for the thin matrices of MobileNet-style layers: W [outputs, inner] row-major with inner at most 64,
/// X [inner, columns] and Y [outputs, columns] whose rows are `rowStride` floats apart (a tensor's planes).
/// OpenBLAS spends much of such a call zeroing C and packing; here the columns are packed once per L1-sized block
/// and four output rows by sixteen columns are summed in registers over the whole inner dimension.
enum ThinProduct {
    /// Where this beats sgemm, measured on BlazeFace's layers (runs interleaved, fastest passes): its 1x1
    /// convolutions took the full-range network from 4.2-4.5 to 3.9-4.0 ms and the back-camera one from 6.6-6.9 to
    /// 6.1-6.3 ms. Layers with fewer outputs (32 -> 8 at 96x96) were slower: too few output rows share the packing.
    static func suits(inner: Int, outputs: Int) -> Bool { inner <= 64 && outputs >= 16 }

    /// Y[o, c] (+= when `accumulating`) sum over k of W[o, k] X[k, c], for the columns c in `columns`.
    static func multiply(_ w: UnsafePointer<Float>, _ x: UnsafePointer<Float>, into y: UnsafeMutablePointer<Float>,
                         rowStride: Int, inner: Int, outputs: Int, columns: Range<Int>, accumulating: Bool) {
        typealias V = SIMD8<Float>
        @inline(__always) func load(_ pointer: UnsafePointer<Float>) -> V {
            UnsafeRawPointer(pointer).loadUnaligned(as: V.self)
        }
        @inline(__always) func store(_ value: V, _ pointer: UnsafeMutablePointer<Float>) {
            UnsafeMutableRawPointer(pointer).storeBytes(of: accumulating ? value + load(pointer) : value, as: V.self)
        }
        // Column blocks of X packed contiguously (16 columns of each row in turn, 16 KB at most), then read from L1
        // for every output row. Reading X in place strides by its row, which for 32x32 to 128x128 planes (a
        // multiple of 4 KB) sends every row to the same cache set.
        let block = max(16, 4096 / inner / 16 * 16)
        withUnsafeTemporaryAllocation(of: Float.self, capacity: block * inner) { packed in
            let packed = packed.baseAddress!
            for blockStart in stride(from: columns.lowerBound, to: columns.upperBound, by: block) {
                let blockEnd = min(blockStart + block, columns.upperBound)
                let groups = (blockEnd - blockStart) / 16
                for group in 0..<groups {
                    let to = packed + group * inner * 16
                    for k in 0..<inner { (to + k * 16).update(from: x + k * rowStride + blockStart + group * 16, count: 16) }
                }
                var o = 0
                while o + 4 <= outputs {
                    let w0 = w + o * inner, w1 = w0 + inner, w2 = w1 + inner, w3 = w2 + inner
                    let y0 = y + o * rowStride, y1 = y0 + rowStride, y2 = y1 + rowStride, y3 = y2 + rowStride
                    for group in 0..<groups {
                        var a0 = V(), b0 = V(), a1 = V(), b1 = V(), a2 = V(), b2 = V(), a3 = V(), b3 = V()
                        var source = UnsafePointer(packed + group * inner * 16)
                        for k in 0..<inner {
                            let first = load(source), second = load(source + 8)
                            let c0 = V(repeating: w0[k]), c1 = V(repeating: w1[k])
                            let c2 = V(repeating: w2[k]), c3 = V(repeating: w3[k])
                            a0 = multiplyAdd(a0, c0, first); b0 = multiplyAdd(b0, c0, second)
                            a1 = multiplyAdd(a1, c1, first); b1 = multiplyAdd(b1, c1, second)
                            a2 = multiplyAdd(a2, c2, first); b2 = multiplyAdd(b2, c2, second)
                            a3 = multiplyAdd(a3, c3, first); b3 = multiplyAdd(b3, c3, second)
                            source += 16
                        }
                        let c = blockStart + group * 16
                        store(a0, y0 + c); store(b0, y0 + c + 8)
                        store(a1, y1 + c); store(b1, y1 + c + 8)
                        store(a2, y2 + c); store(b2, y2 + c + 8)
                        store(a3, y3 + c); store(b3, y3 + c + 8)
                    }
                    o += 4
                }
                // Output rows past a multiple of four, one at a time.
                for o in o..<outputs {
                    let row = w + o * inner, out = y + o * rowStride
                    for group in 0..<groups {
                        var a = V(), b = V()
                        var source = UnsafePointer(packed + group * inner * 16)
                        for k in 0..<inner {
                            let weight = V(repeating: row[k])
                            a = multiplyAdd(a, weight, load(source)); b = multiplyAdd(b, weight, load(source + 8))
                            source += 16
                        }
                        let c = blockStart + group * 16
                        store(a, out + c); store(b, out + c + 8)
                    }
                }
                // The columns past a multiple of 16, one by one.
                for o in 0..<outputs {
                    for c in (blockStart + groups * 16)..<blockEnd {
                        var sum: Float = 0
                        for k in 0..<inner { sum += w[o * inner + k] * x[k * rowStride + c] }
                        y[o * rowStride + c] = accumulating ? y[o * rowStride + c] + sum : sum
                    }
                }
            }
        }
    }
}
