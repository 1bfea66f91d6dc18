#if canImport(Glibc)
import Glibc
#else
import Darwin
#endif

/// Separable Gaussian low-pass of square images, edges repeated.
public struct GaussianBlur: Sendable {
    public let sigma: Float
    private let taps: [Float]

    public init(sigma: Float) {
        self.sigma = sigma
        let radius = max(1, Int((3 * sigma).rounded(.up)))
        var taps = (-radius...radius).map { offset in expf(-Float(offset * offset) / (2 * sigma * sigma)) }
        let total = taps.reduce(0, +)
        taps = taps.map { $0 / total }
        self.taps = taps
    }

    /// Blurs `count` images of side x side in place.
    func apply(to values: UnsafeMutableBufferPointer<Float>, side: Int, count: Int = 1) {
        guard sigma > 0 else { return }
        var line = [Float](repeating: 0, count: side)
        line.withUnsafeMutableBufferPointer { apply(to: values, side: side, count: count, line: $0) }
    }

    /// The same with a caller-owned line buffer of at least `side` values, allocating nothing.
    func apply(to values: UnsafeMutableBufferPointer<Float>, side: Int, count: Int, line: UnsafeMutableBufferPointer<Float>) {
        guard sigma > 0 else { return }
        precondition(line.count >= side, "the blur's line buffer is shorter than a row")
        let radius = taps.count / 2
        for image in 0..<count {
            let base = image * side * side
            // Rows, then columns.
            for pass in 0..<2 {
                let (step, stride) = pass == 0 ? (1, side) : (side, 1)
                for lineIndex in 0..<side {
                    let start = base + lineIndex * stride
                    for position in 0..<side {
                        var sum: Float = 0
                        for tap in 0..<taps.count {
                            let source = min(max(position + tap - radius, 0), side - 1)
                            sum += taps[tap] * values[start + source * step]
                        }
                        line[position] = sum
                    }
                    for position in 0..<side { values[start + position * step] = line[position] }
                }
            }
        }
    }

    /// A blurred copy of packed 8-bit images.
    public func applied(to pixels: [UInt8], side: Int) -> [UInt8] {
        guard sigma > 0 else { return pixels }
        var values = pixels.map(Float.init)
        values.withUnsafeMutableBufferPointer { apply(to: $0, side: side, count: pixels.count / (side * side)) }
        return values.map { UInt8(max(0, min(255, $0.rounded()))) }
    }
}
