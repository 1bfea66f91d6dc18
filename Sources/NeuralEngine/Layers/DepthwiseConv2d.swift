/// Depthwise 2-D convolution over NCHW tensors: output channel o filters input channel o / multiplier with its
/// own kernel. The same arithmetic as `Conv2d` with groups == inChannels, but as direct loops: im2col + sgemm
/// with one-row matrices spends its time copying. Inference runs each plane as one contiguous vector loop over
/// a phase-split, zero-padded copy (see `forward(_:into:)`); training's backward works on runs of valid
/// output pixels per tap.
public final class DepthwiseConv2d: Layer {
    public let inChannels: Int
    public let outChannels: Int
    public let kernelHeight: Int
    public let kernelWidth: Int
    public let stride: Int
    public let padding: Padding
    /// [outChannels, 1, kernelHeight, kernelWidth], the layout `Conv2d` uses for groups == inChannels.
    public let weight: Parameter
    public let bias: Parameter?

    private var input: Tensor?
    /// One zero-padded input plane (see forward), reused between calls.
    private var scratch: [Float] = []
    /// One output plane as computed, rows `phaseWidth` apart (see forward).
    private var run: [Float] = []
    private var scratchGeometry: [Int] = []
    /// The padding rows of the 3x3 SAME path.
    private var zeroRow: [Float] = []

    /// `weight` is [outChannels, 1, kh, kw]; `multiplier` output channels per input channel.
    public init(weight: Tensor, bias: Tensor?, stride: Int, padding: Padding, multiplier: Int = 1) {
        precondition(weight.rank == 4 && weight.shape[1] == 1, "depthwise weight must be [out, 1, kh, kw]")
        precondition(multiplier >= 1 && weight.shape[0] % multiplier == 0, "channels must divide by the multiplier")
        precondition(bias == nil || bias!.shape == [weight.shape[0]], "bias must be [outChannels]")
        self.outChannels = weight.shape[0]
        self.inChannels = weight.shape[0] / multiplier
        self.kernelHeight = weight.shape[2]
        self.kernelWidth = weight.shape[3]
        self.stride = stride
        self.padding = padding
        self.weight = Parameter(weight, decays: true)
        self.bias = bias.map { Parameter($0) }
    }

    public var namedParameters: [(name: String, parameter: Parameter)] { weightAndBias(weight, bias) }

    public func outputSize(height: Int, width: Int) -> (height: Int, width: Int) {
        padding.outputSize(height: height, width: width, kernelHeight: kernelHeight, kernelWidth: kernelWidth, stride: stride)
    }

    public func outputShape(for inputShape: [Int]) -> [Int] {
        let (height, width) = outputSize(height: inputShape[2], width: inputShape[3])
        return [inputShape[0], outChannels, height, width]
    }

    public func forward(_ input: Tensor, training: Bool) -> Tensor {
        var output = Tensor(zeros: outputShape(for: input.shape))
        forward(input, into: &output)
        self.input = training ? input : nil
        return output
    }

    /// Inference into a caller-owned tensor, reusing its storage when it already has the output's shape.
    ///
    /// Each input plane is copied once into a zero-padded scratch plane split into stride x stride phases
    /// (phase (py, px) holds the padded rows py, py + stride, ... and columns px, px + stride, ...), each
    /// `phaseHeight` x `phaseWidth`. Output (oy, ox) then reads tap (ky, kx) at position
    /// oy * phaseWidth + ox + (ky / stride) * phaseWidth + kx / stride of phase (ky % stride, kx % stride), so
    /// every tap is one contiguous run over the whole plane, q = oy * phaseWidth + ox: no bounds checks, no
    /// per-row loop overhead on the small planes deep in a network. Columns ox >= outWidth of the run are
    /// computed and dropped when the rows are copied out.
    public func forward(_ input: Tensor, into output: inout Tensor) {
        precondition(input.rank == 4 && input.shape[1] == inChannels,
                     "DepthwiseConv2d expects [N, \(inChannels), H, W], got \(input.shape)")
        let shape = outputShape(for: input.shape)
        precondition(shape[2] > 0 && shape[3] > 0, "input \(input.shape) too small for the kernel")
        if output.shape != shape { output = Tensor(zeros: shape) }
        let (height, width, outHeight, outWidth) = (input.shape[2], input.shape[3], shape[2], shape[3])
        let biases = bias?.value.storage ?? [Float](repeating: 0, count: outChannels)
        if stride == 1 && kernelHeight == 3 && kernelWidth == 3 && padding == .uniform(1) && width >= DepthwiseRun.lanes + 2 {
            forwardSame3x3(input, biases: biases, into: &output)
            return
        }
        let multiplier = outChannels / inChannels
        let taps = kernelHeight * kernelWidth
        let phaseHeight = (height + padding.top + padding.bottom + stride - 1) / stride
        let phaseWidth = (width + padding.left + padding.right + stride - 1) / stride
        let phaseSize = phaseHeight * phaseWidth
        let runLength = (outHeight - 1) * phaseWidth + outWidth
        // Only the image positions are ever written, so the padding stays zero while the geometry does. The
        // slack lets the last vector of a run read and write past its end.
        if scratchGeometry != [height, width] {
            scratch = [Float](repeating: 0, count: stride * stride * phaseSize + DepthwiseRun.lanes)
            run = [Float](repeating: 0, count: runLength + DepthwiseRun.lanes)
            scratchGeometry = [height, width]
        }
        // Tap t of the kernel reads phase plane offsets[t] onwards.
        var offsets: [Int] = []
        for ky in 0..<kernelHeight {
            for kx in 0..<kernelWidth {
                offsets.append(((ky % stride) * stride + kx % stride) * phaseSize + (ky / stride) * phaseWidth + kx / stride)
            }
        }
        input.storage.withUnsafeBufferPointer { x in
            weight.value.storage.withUnsafeBufferPointer { w in
                output.storage.withUnsafeMutableBufferPointer { y in
                    scratch.withUnsafeMutableBufferPointer { padded in
                        run.withUnsafeMutableBufferPointer { flat in
                            let phases = padded.baseAddress!
                            for n in 0..<input.shape[0] {
                                for c in 0..<inChannels {
                                    let source = x.baseAddress! + (n * inChannels + c) * height * width
                                    for row in 0..<height {
                                        let from = source + row * width
                                        let paddedRow = row + padding.top
                                        let to = phases + (paddedRow % stride) * stride * phaseSize
                                            + (paddedRow / stride) * phaseWidth
                                        if stride == 1 {
                                            DepthwiseRun.copy(from, to: to + padding.left, count: width)
                                            continue
                                        }
                                        if stride == 2 {
                                            // Even image columns land in phase left % 2, odd ones in the other.
                                            let even = to + (padding.left % 2) * phaseSize + padding.left / 2
                                            let odd = to + ((padding.left + 1) % 2) * phaseSize + (padding.left + 1) / 2
                                            DepthwiseRun.deinterleave(from, even: even, odd: odd, count: width)
                                            continue
                                        }
                                        for phase in 0..<stride {
                                            // Image columns landing in this phase: (column + left) % stride == phase.
                                            let first = ((phase - padding.left) % stride + stride) % stride
                                            let target = to + phase * phaseSize + (first + padding.left) / stride
                                            let source = from + first
                                            for j in 0..<((width - first + stride - 1) / stride) {
                                                target[j] = source[j * stride]
                                            }
                                        }
                                    }
                                    for m in 0..<multiplier {
                                        let o = c * multiplier + m
                                        let kernel = w.baseAddress! + o * taps
                                        let result = flat.baseAddress!
                                        let out = y.baseAddress! + (n * outChannels + o) * outHeight * outWidth
                                        guard taps != 9 else {
                                            // Rows straight into the output: a row's last vector may run into the
                                            // next row, which is written after it. The last row goes through the
                                            // run buffer, whose slack takes that overshoot.
                                            let last = outHeight - 1
                                            DepthwiseRun.filter9(phases, offsets: offsets, kernel: kernel, bias: biases[o],
                                                                 rows: last, length: outWidth, rowStride: phaseWidth,
                                                                 into: out, outputRowStride: outWidth)
                                            DepthwiseRun.filter9(phases + last * phaseWidth, offsets: offsets, kernel: kernel,
                                                                 bias: biases[o], rows: 1, length: outWidth,
                                                                 rowStride: phaseWidth, into: result, outputRowStride: 0)
                                            DepthwiseRun.copy(result, to: out + last * outWidth, count: outWidth)
                                            continue
                                        }
                                        DepthwiseRun.filter(phases, offsets: offsets, kernel: kernel, bias: biases[o],
                                                            into: result, count: runLength)
                                        if phaseWidth == outWidth {
                                            out.update(from: result, count: outHeight * outWidth)
                                        } else {
                                            for oy in 0..<outHeight {
                                                DepthwiseRun.copy(result + oy * phaseWidth, to: out + oy * outWidth,
                                                                  count: outWidth)
                                            }
                                        }
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
    }

    /// 3x3, stride 1, padding 1 (TFLite's SAME; most of BlazeFace's depthwise layers), read straight from the
    /// input planes: no padded copy (that copy was as costly as the filter itself). Rows above the first and
    /// below the last read a zero row; columns 1 ..< width - 1 run as vectors whose loads stay inside the row
    /// (the last vector is shifted back to end at width - 1, recomputing a few outputs), and columns 0 and
    /// width - 1 are finished with the zero padding in scalar code.
    private func forwardSame3x3(_ input: Tensor, biases: [Float], into output: inout Tensor) {
        let (height, width) = (input.shape[2], input.shape[3])
        let multiplier = outChannels / inChannels
        if zeroRow.count < width { zeroRow = [Float](repeating: 0, count: width) }
        input.storage.withUnsafeBufferPointer { x in
            weight.value.storage.withUnsafeBufferPointer { w in
                output.storage.withUnsafeMutableBufferPointer { y in
                    zeroRow.withUnsafeBufferPointer { zeroRow in
                        for n in 0..<input.shape[0] {
                            for o in 0..<outChannels {
                                let c = o / multiplier
                                let plane = x.baseAddress! + (n * inChannels + c) * height * width
                                let out = y.baseAddress! + (n * outChannels + o) * height * width
                                let kernel = w.baseAddress! + o * 9
                                for row in 0..<height {
                                    let above = row > 0 ? plane + (row - 1) * width : zeroRow.baseAddress!
                                    let below = row + 1 < height ? plane + (row + 1) * width : zeroRow.baseAddress!
                                    DepthwiseRun.filter9Row(above: above, middle: plane + row * width, below: below,
                                                            width: width, kernel: kernel, bias: biases[o],
                                                            into: out + row * width)
                                }
                            }
                        }
                    }
                }
            }
        }
    }

    /// Calls body(ky, kx, oy, output columns, input column offset) for every kernel tap and output row whose
    /// input row lies inside the image, with the run of output columns whose input column does too
    /// (input column = ox * stride + offset).
    @inline(__always)
    private func forEachTap(height: Int, width: Int, outHeight: Int, outWidth: Int,
                            _ body: (Int, Int, Int, Range<Int>, Int) -> Void) {
        for oy in 0..<outHeight {
            for ky in 0..<kernelHeight {
                let iy = oy * stride - padding.top + ky
                if iy < 0 || iy >= height { continue }
                for kx in 0..<kernelWidth {
                    let offset = kx - padding.left
                    // ox * stride + offset in [0, width)
                    let first = offset >= 0 ? 0 : (-offset + stride - 1) / stride
                    let last = min(outWidth, (width - 1 - offset) >= 0 ? (width - 1 - offset) / stride + 1 : 0)
                    if first < last { body(ky, kx, oy, first..<last, offset) }
                }
            }
        }
    }

    public func backward(_ dOutput: Tensor) -> Tensor {
        guard let input else { preconditionFailure("DepthwiseConv2d.backward needs a training-mode forward") }
        let shape = outputShape(for: input.shape)
        precondition(dOutput.shape == shape, "dOutput shape \(dOutput.shape), expected \(shape)")
        let (height, width, outHeight, outWidth) = (input.shape[2], input.shape[3], shape[2], shape[3])
        let multiplier = outChannels / inChannels
        let taps = kernelHeight * kernelWidth
        var dInput = Tensor(zeros: input.shape)
        input.storage.withUnsafeBufferPointer { x in
            weight.value.storage.withUnsafeBufferPointer { w in
                weight.gradient.storage.withUnsafeMutableBufferPointer { dW in
                    dOutput.storage.withUnsafeBufferPointer { dY in
                        dInput.storage.withUnsafeMutableBufferPointer { dX in
                            for n in 0..<input.shape[0] {
                                for o in 0..<outChannels {
                                    let planeOffset = (n * inChannels + o / multiplier) * height * width
                                    let plane = x.baseAddress! + planeOffset
                                    let dPlane = dX.baseAddress! + planeOffset
                                    let dOut = dY.baseAddress! + (n * outChannels + o) * outHeight * outWidth
                                    if let bias {
                                        var sum: Float = 0
                                        for index in 0..<(outHeight * outWidth) { sum += dOut[index] }
                                        bias.gradient.storage[o] += sum
                                    }
                                    forEachTap(height: height, width: width, outHeight: outHeight, outWidth: outWidth) {
                                        ky, kx, oy, outX, inX in
                                        let tap = o * taps + ky * kernelWidth + kx
                                        let row = (oy * stride - padding.top + ky) * width
                                        let gradient = dOut + oy * outWidth
                                        var dWeight: Float = 0
                                        for ox in outX {
                                            dWeight += gradient[ox] * plane[row + ox * stride + inX]
                                            dPlane[row + ox * stride + inX] += gradient[ox] * w[tap]
                                        }
                                        dW[tap] += dWeight
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
        return dInput
    }
}

/// The depthwise filter over one plane's phase-split scratch (see `DepthwiseConv2d.forward`):
/// result[q] = bias + sum over taps t of kernel[t] * phases[offsets[t] + q], for q in 0..<count.
/// Explicit vectors, since with ten pointers in the loop the compiler's alias checks give up on vectorising
/// it; the last vector reads and writes up to `lanes - 1` floats past the run (the buffers have that slack).
enum DepthwiseRun {
    typealias Vector = SIMD8<Float>
    static let lanes = Vector.scalarCount

    @inline(__always)
    static func load(_ pointer: UnsafePointer<Float>) -> Vector {
        UnsafeRawPointer(pointer).loadUnaligned(as: Vector.self)
    }

    @inline(__always)
    static func store(_ value: Vector, _ pointer: UnsafeMutablePointer<Float>) {
        UnsafeMutableRawPointer(pointer).storeBytes(of: value, as: Vector.self)
    }

    /// Copies a row: inline vectors rather than a memcpy call, whose overhead dominates on the short rows of
    /// small planes (a 6 x 6 plane is a dozen such copies).
    @inline(__always)
    static func copy(_ source: UnsafePointer<Float>, to target: UnsafeMutablePointer<Float>, count: Int) {
        var index = 0
        while index + lanes <= count {
            store(load(source + index), target + index)
            index += lanes
        }
        if index + 4 <= count {
            UnsafeMutableRawPointer(target + index)
                .storeBytes(of: UnsafeRawPointer(source + index).loadUnaligned(as: SIMD4<Float>.self), as: SIMD4<Float>.self)
            index += 4
        }
        if index < count { target[index] = source[index] }
        if index + 1 < count { target[index + 1] = source[index + 1] }
        if index + 2 < count { target[index + 2] = source[index + 2] }
    }

    /// even[j] = source[2j], odd[j] = source[2j + 1] for the `count` source floats.
    @inline(__always)
    static func deinterleave(_ source: UnsafePointer<Float>, even: UnsafeMutablePointer<Float>,
                             odd: UnsafeMutablePointer<Float>, count: Int) {
        var j = 0
        while 2 * j + 8 <= count {
            let pairs = load(source + 2 * j)
            UnsafeMutableRawPointer(even + j).storeBytes(of: pairs.evenHalf, as: SIMD4<Float>.self)
            UnsafeMutableRawPointer(odd + j).storeBytes(of: pairs.oddHalf, as: SIMD4<Float>.self)
            j += 4
        }
        while 2 * j < count {
            even[j] = source[2 * j]
            if 2 * j + 1 < count { odd[j] = source[2 * j + 1] }
            j += 1
        }
    }

    /// Nine taps (3x3) in one pass, the sum in registers, for `rows` output rows of `length` outputs: row r
    /// reads the phases from r * rowStride on and is written from output + r * outputRowStride; its last vector
    /// writes up to `lanes - 1` floats past `length`.
    static func filter9(_ phases: UnsafePointer<Float>, offsets: [Int], kernel: UnsafePointer<Float>, bias: Float,
                        rows: Int, length: Int, rowStride: Int,
                        into output: UnsafeMutablePointer<Float>, outputRowStride: Int) {
        let (a0, a1, a2) = (phases + offsets[0], phases + offsets[1], phases + offsets[2])
        let (b0, b1, b2) = (phases + offsets[3], phases + offsets[4], phases + offsets[5])
        let (c0, c1, c2) = (phases + offsets[6], phases + offsets[7], phases + offsets[8])
        let (k0, k1, k2) = (Vector(repeating: kernel[0]), Vector(repeating: kernel[1]), Vector(repeating: kernel[2]))
        let (k3, k4, k5) = (Vector(repeating: kernel[3]), Vector(repeating: kernel[4]), Vector(repeating: kernel[5]))
        let (k6, k7, k8) = (Vector(repeating: kernel[6]), Vector(repeating: kernel[7]), Vector(repeating: kernel[8]))
        let shift = Vector(repeating: bias)
        for row in 0..<rows {
            let source = row * rowStride
            let target = output + row * outputRowStride
            var q = 0
            while q < length {
                let p = source + q
                // Three independent chains, so the fused adds overlap.
                var upper = multiplyAdd(shift, k0, load(a0 + p))
                var middle = k3 * load(b0 + p)
                var lower = k6 * load(c0 + p)
                upper = multiplyAdd(upper, k1, load(a1 + p))
                middle = multiplyAdd(middle, k4, load(b1 + p))
                lower = multiplyAdd(lower, k7, load(c1 + p))
                upper = multiplyAdd(upper, k2, load(a2 + p))
                middle = multiplyAdd(middle, k5, load(b2 + p))
                lower = multiplyAdd(lower, k8, load(c2 + p))
                store(upper + middle + lower, target + q)
                q += lanes
            }
        }
    }

    /// One output row of a 3x3, stride-1, zero-padded filter from its three input rows (each `width` >= lanes + 2
    /// floats; a missing row is a row of zeros).
    @inline(__always)
    static func filter9Row(above: UnsafePointer<Float>, middle: UnsafePointer<Float>, below: UnsafePointer<Float>,
                           width: Int, kernel: UnsafePointer<Float>, bias: Float,
                           into output: UnsafeMutablePointer<Float>) {
        let (k0, k1, k2) = (Vector(repeating: kernel[0]), Vector(repeating: kernel[1]), Vector(repeating: kernel[2]))
        let (k3, k4, k5) = (Vector(repeating: kernel[3]), Vector(repeating: kernel[4]), Vector(repeating: kernel[5]))
        let (k6, k7, k8) = (Vector(repeating: kernel[6]), Vector(repeating: kernel[7]), Vector(repeating: kernel[8]))
        let shift = Vector(repeating: bias)
        @inline(__always) func vector(at x: Int) -> Vector {
            // Outputs x ..< x + lanes read columns x - 1 ..< x + lanes + 1.
            var upper = multiplyAdd(shift, k0, load(above + x - 1))
            var center = k3 * load(middle + x - 1)
            var lower = k6 * load(below + x - 1)
            upper = multiplyAdd(upper, k1, load(above + x))
            center = multiplyAdd(center, k4, load(middle + x))
            lower = multiplyAdd(lower, k7, load(below + x))
            upper = multiplyAdd(upper, k2, load(above + x + 1))
            center = multiplyAdd(center, k5, load(middle + x + 1))
            lower = multiplyAdd(lower, k8, load(below + x + 1))
            return upper + center + lower
        }
        let last = width - 1 - lanes  // the final vector covers last ..< width - 1
        var x = 1
        while x < last {
            store(vector(at: x), output + x)
            x += lanes
        }
        store(vector(at: last), output + last)
        // The edge columns, whose outer neighbours are padding.
        let end = width - 1
        output[0] = bias + kernel[1] * above[0] + kernel[2] * above[1] + kernel[4] * middle[0] + kernel[5] * middle[1]
            + kernel[7] * below[0] + kernel[8] * below[1]
        output[end] = bias + kernel[0] * above[end - 1] + kernel[1] * above[end] + kernel[3] * middle[end - 1]
            + kernel[4] * middle[end] + kernel[6] * below[end - 1] + kernel[7] * below[end]
    }

    /// Any kernel: up to eight taps per pass over the run, the partial sums kept in `result` between passes.
    static func filter(_ phases: UnsafePointer<Float>, offsets: [Int], kernel: UnsafePointer<Float>, bias: Float,
                       into result: UnsafeMutablePointer<Float>, count: Int) {
        result.update(repeating: bias, count: count)
        var first = 0
        while first < offsets.count {
            let taps = min(8, offsets.count - first)
            var q = 0
            while q < count {
                var sum = load(result + q)
                for t in first..<(first + taps) {
                    sum += Vector(repeating: kernel[t]) * load(phases + offsets[t] + q)
                }
                store(sum, result + q)
                q += lanes
            }
            first += taps
        }
    }
}
