/// Winograd F(2x2, 3x3) convolution (Lavin & Gray 2016, "Fast Algorithms for Convolutional Neural Networks") for
/// the inference path of 3x3, stride-1, ungrouped convolutions: a 2x2 output tile costs 16 multiplies per channel
/// pair instead of 36. Weights are transformed once per weight version, U = G g G^T laid out [16, out, in]; per
/// chunk of images the 4x4 input tiles (stride 2, zero padded) are transformed, V = B^T d B laid out
/// [16, in, tiles], multiplied in 16 sgemms, M_k = U_k V_k ([16, out, tiles]), and transformed back,
/// Y = A^T M A, with the bias added; partial tiles at the right and bottom edges write only their inside pixels.
/// A large image (P-Net's pyramid levels, the first classifier layers at batch 1) is cut into bands of tile rows,
/// each transformed, multiplied and transformed back before the next, so that V and M stay in the core's cache:
/// whole-image V and M of megabytes made the two transforms as slow as the products.
/// Training keeps im2col (`Conv2d.forward` / `backward`); `Conv2d.infer` dispatches here (`usesWinograd`).
///
/// Precision: the F(2x2, 3x3) transforms use only 1 and 1/2 (exact in float), but each output sums 16 products of
/// transformed values that are up to 4x (input) and 9/4x (weights) larger than the originals, so float rounding
/// grows by a small constant factor over the direct sum; WinogradConvolutionTests holds it within 1e-4 relative.
extension Conv2d {
    /// Whether `infer` of items height x width takes the Winograd path: 3x3 kernel, stride 1, one group, and
    /// enough channels and pixels for the transforms to pay off (measured per vgg layer on one core, batch 1).
    func usesWinograd(height: Int, width: Int) -> Bool {
        guard qualifiesForWinograd else { return false }
        let (outHeight, outWidth) = outputSize(height: height, width: width)
        return inChannels >= WinogradConvolution.minimumInChannels
            && outHeight * outWidth >= WinogradConvolution.minimumPixels
    }

    /// 3x3, stride 1, one group: the shapes F(2x2, 3x3) computes.
    public var qualifiesForWinograd: Bool {
        kernelHeight == 3 && kernelWidth == 3 && stride == 1 && groups == 1
    }

    /// Evaluation-mode forward through Winograd regardless of size (reference and tests; allocates its scratch).
    public func winogradForward(_ input: Tensor) -> Tensor {
        precondition(qualifiesForWinograd, "Winograd F(2x2, 3x3) needs a 3x3, stride-1, ungrouped convolution")
        let itemShape = Array(input.shape.dropFirst())
        let outputShape = inferenceOutputShape(for: itemShape)
        let batch = input.shape[0]
        let areas = (0..<Parallelism.workers).map { _ in ConvolutionScratch() }
        reserveWinogradScratch(height: itemShape[1], width: itemShape[2], batch: batch, in: areas)
        // Every output pixel is written (partial tiles write their inside pixels).
        return Tensor(uninitialized: [batch] + outputShape) { out in
            input.storage.withUnsafeBufferPointer { source in
                winogradConvolve(source.baseAddress!, batch: batch, height: itemShape[1], width: itemShape[2],
                                 into: out.baseAddress!, areas: areas)
            }
        }
    }

    /// Tile grid of items height x width and images per chunk (the same chunks as im2col).
    private func winogradGeometry(height: Int, width: Int, batch: Int) -> WinogradGeometry {
        let (outHeight, outWidth) = outputSize(height: height, width: width)
        let imagesPerChunk = max(1, min(batch, Conv2d.columnsPerChunk / max(outHeight * outWidth, 1)))
        let (tilesY, tilesX) = ((outHeight + 1) / 2, (outWidth + 1) / 2)
        var bandRows = tilesY
        if imagesPerChunk == 1 {
            let bandTiles = max(WinogradConvolution.minimumBandTiles,
                                WinogradConvolution.cachedFloats / (16 * (inChannels + outChannels)))
            bandRows = max(1, min(tilesY, bandTiles / max(tilesX, 1)))
        }
        return WinogradGeometry(inChannels: inChannels, outChannels: outChannels, height: height, width: width,
                                top: padding.top, left: padding.left, outHeight: outHeight, outWidth: outWidth,
                                imagesPerChunk: imagesPerChunk, bandRows: bandRows)
    }

    /// Grows every area to what a batch of up to `batch` items needs, and transforms the weights.
    func reserveWinogradScratch(height: Int, width: Int, batch: Int, in areas: [ConvolutionScratch]) {
        let g = winogradGeometry(height: height, width: width, batch: batch)
        for area in areas {
            _ = area.columns(g.transformedInputCount(images: g.imagesPerChunk) + g.stagingCount)
            _ = area.product(g.productCount(images: g.imagesPerChunk))
        }
        _ = winogradWeights.transformed(weight, outChannels: outChannels, inChannels: inChannels)
    }

    /// `convolve` through Winograd: chunks of whole images go to the workers, worker w using `areas[w]` (columns:
    /// the transformed input, then the staging rows; product: the 16 products). With fewer chunks than workers
    /// (batch-1 inference) the workers share each chunk instead, by channels. Allocates nothing once reserved.
    func winogradConvolve(_ source: UnsafePointer<Float>, batch: Int, height: Int, width: Int,
                          into out: UnsafeMutablePointer<Float>, areas: [ConvolutionScratch],
                          activation: OutputActivation = .identity) {
        let g = winogradGeometry(height: height, width: width, batch: batch)
        let units = (batch + g.imagesPerChunk - 1) / g.imagesPerChunk * g.bandsPerImage
        let workers = min(Parallelism.workers, areas.count)
        precondition(workers > 0, "Conv2d needs a scratch area")
        // Checked here, before the workers start: they only read the transformed weights.
        let transformed = winogradWeights.transformed(weight, outChannels: outChannels, inChannels: inChannels)

        func run(_ biases: UnsafePointer<Float>?) {
            let pass = WinogradPass(geometry: g, source: source, weights: transformed, biases: biases,
                                    activation: activation, out: out, batch: batch)
            guard units < workers else {
                return Parallelism.forEach(units, workers: workers,
                                           WinogradUnitTask(pass: pass, areas: areas, workers: workers))
            }
            for unit in 0..<units {
                let (images, tileRows) = pass.unit(unit)
                // Two rounds, because every product needs every input channel's transform.
                Parallelism.forEach(workers, WinogradSharedInputTask(pass: pass, images: images, tileRows: tileRows,
                                                                     areas: areas, workers: workers))
                Parallelism.forEach(workers, WinogradSharedProductTask(pass: pass, images: images, tileRows: tileRows,
                                                                       areas: areas, workers: workers))
            }
        }
        if let bias { bias.value.storage.withUnsafeBufferPointer { run($0.baseAddress!) } } else { run(nil) }
    }
}

/// One Winograd convolution of a batch: where its input, transformed weights and output live, and the two halves
/// of the work on a chunk of images, each restricted to a range of channels so that workers can share a chunk.
private struct WinogradPass {
    let geometry: WinogradGeometry
    let source: UnsafePointer<Float>
    let weights: UnsafePointer<Float>
    let biases: UnsafePointer<Float>?
    let activation: OutputActivation
    let out: UnsafeMutablePointer<Float>
    let batch: Int

    /// Unit of work `index`: a chunk of whole images, or one band of tile rows of a single image.
    func unit(_ index: Int) -> (images: Range<Int>, tileRows: Range<Int>) {
        let (chunk, band) = index.quotientAndRemainder(dividingBy: geometry.bandsPerImage)
        let first = chunk * geometry.imagesPerChunk
        return (first..<min(batch, first + geometry.imagesPerChunk), geometry.tileRows(ofBand: band))
    }

    /// V of input `channels` of the tiles in `tileRows` of `images` into `area`'s columns, with `staging`'s
    /// staging rows.
    func transformInput(images: Range<Int>, tileRows: Range<Int>, channels: Range<Int>, area: ConvolutionScratch,
                        staging: ConvolutionScratch) {
        let g = geometry
        let inputCount = g.transformedInputCount(images: g.imagesPerChunk)
        let columns = area.columns(inputCount + g.stagingCount)
        let rows = staging.columns(inputCount + g.stagingCount) + inputCount
        if g.interleavesImages(images.count) {
            return g.transformInputInterleaved(source + images.lowerBound * g.inChannels * g.height * g.width,
                                               images: images.count, channels: channels, into: columns, staging: rows)
        }
        let tilesPerImage = tileRows.count * g.tilesX
        for (n, image) in images.enumerated() {
            g.transformInput(source + image * g.inChannels * g.height * g.width, channels: channels, tileRows: tileRows,
                             tileOffset: n * tilesPerImage, tiles: images.count * tilesPerImage, into: columns,
                             staging: rows)
        }
    }

    /// The 16 products for `outputChannels` from the transformed input in `area`, and their output transform.
    func multiplyAndTransformOutput(images: Range<Int>, tileRows: Range<Int>, outputChannels: Range<Int>,
                                    area: ConvolutionScratch, staging: ConvolutionScratch) {
        guard !outputChannels.isEmpty else { return }
        let g = geometry
        let inputCount = g.transformedInputCount(images: g.imagesPerChunk)
        let columns = area.columns(inputCount + g.stagingCount)
        let product = area.product(g.productCount(images: g.imagesPerChunk))
        let tilesPerImage = tileRows.count * g.tilesX
        let tiles = images.count * tilesPerImage
        let firstRow = outputChannels.lowerBound
        for k in 0..<16 {
            BLAS.gemm(transposeA: false, transposeB: false, m: outputChannels.count, n: tiles, k: g.inChannels,
                      a: weights + (k * g.outChannels + firstRow) * g.inChannels, lda: g.inChannels,
                      b: columns + k * g.inChannels * tiles, ldb: tiles,
                      beta: 0, c: product + (k * g.outChannels + firstRow) * tiles, ldc: tiles)
        }
        func transformOutput<Rectifier: ChannelRectifier>(_ rectifier: (Int) -> Rectifier) {
            if g.interleavesImages(images.count) {
                return g.transformOutputInterleaved(
                    product, images: images.count, channels: outputChannels, biases: biases, rectifier: rectifier,
                    into: out + images.lowerBound * g.outChannels * g.outHeight * g.outWidth,
                    staging: staging.columns(inputCount + g.stagingCount) + inputCount)
            }
            for (n, image) in images.enumerated() {
                g.transformOutput(product, channels: outputChannels, tileRows: tileRows, tileOffset: n * tilesPerImage,
                                  tiles: tiles, biases: biases, rectifier: rectifier,
                                  into: out + image * g.outChannels * g.outHeight * g.outWidth)
            }
        }
        activation.dispatch(identity: transformOutput, relu: transformOutput, prelu: transformOutput)
    }
}

/// Whole units per worker: unit u on worker u % workers, in `areas[u % workers]`.
private struct WinogradUnitTask: ParallelTask {
    let pass: WinogradPass
    let areas: [ConvolutionScratch]
    let workers: Int

    func run(_ unit: Int) {
        let area = areas[unit % workers]
        let (images, tileRows) = pass.unit(unit)
        pass.transformInput(images: images, tileRows: tileRows, channels: 0..<pass.geometry.inChannels, area: area,
                            staging: area)
        pass.multiplyAndTransformOutput(images: images, tileRows: tileRows,
                                        outputChannels: 0..<pass.geometry.outChannels, area: area, staging: area)
    }
}

/// One unit's input transform shared by input channels; the transformed input lands in `areas[0]`.
private struct WinogradSharedInputTask: ParallelTask {
    let pass: WinogradPass
    let images: Range<Int>
    let tileRows: Range<Int>
    let areas: [ConvolutionScratch]
    let workers: Int

    func run(_ worker: Int) {
        pass.transformInput(images: images, tileRows: tileRows,
                            channels: share(of: pass.geometry.inChannels, worker, of: workers),
                            area: areas[0], staging: areas[worker])
    }
}

/// One unit's products and output transform shared by output channels, from the transformed input in `areas[0]`
/// (each worker stages its outputs in its own area).
private struct WinogradSharedProductTask: ParallelTask {
    let pass: WinogradPass
    let images: Range<Int>
    let tileRows: Range<Int>
    let areas: [ConvolutionScratch]
    let workers: Int

    func run(_ worker: Int) {
        pass.multiplyAndTransformOutput(images: images, tileRows: tileRows,
                                        outputChannels: share(of: pass.geometry.outChannels, worker, of: workers),
                                        area: areas[0], staging: areas[worker])
    }
}

/// Worker `worker`'s contiguous part of 0..<total.
private func share(of total: Int, _ worker: Int, of workers: Int) -> Range<Int> {
    (total * worker / workers)..<(total * (worker + 1) / workers)
}

/// Tunables of the Winograd dispatch (see `Conv2d.usesWinograd`).
enum WinogradConvolution {
    /// A single input channel (the first vgg layer): im2col 0.028 ms against Winograd 0.096 at 48x48 -> 32.
    static let minimumInChannels = 4
    /// Even the 6x6 maps of the last vgg stage gain (256 -> 256: 0.60 ms im2col, 0.36 Winograd); smaller ones
    /// are untested.
    static let minimumPixels = 36
    /// Floats of V and M one band of a single image may take (512 KB, half of a core's L2 here).
    static let cachedFloats = 64 * 1024
    /// Fewer tiles per band make the 16 products too thin for sgemm.
    static let minimumBandTiles = 64
}

/// A convolution's weights transformed for Winograd, U = G g G^T laid out [16, out, in], rebuilt whenever the weight
/// parameter's `version` moved (an optimiser step, a load): an `InferencePlan` always runs the current weights.
final class WinogradWeights {
    private var storage = UnsafeMutableBufferPointer<Float>(start: nil, count: 0)
    private var builtVersion: Int?

    deinit { storage.deallocate() }

    /// The transformed weights of `weight` [out, in, 3, 3]; allocates only the first time.
    func transformed(_ weight: Parameter, outChannels: Int, inChannels: Int) -> UnsafePointer<Float> {
        let count = 16 * outChannels * inChannels
        if storage.count != count {
            storage.deallocate()
            storage = .allocate(capacity: count)
            builtVersion = nil
        }
        if builtVersion != weight.version {
            let u = storage.baseAddress!
            let pairs = outChannels * inChannels
            weight.value.storage.withUnsafeBufferPointer { weights in
                for pair in 0..<pairs {
                    let g = weights.baseAddress! + pair * 9
                    // G g: rows g0, (g0 + g1 + g2) / 2, (g0 - g1 + g2) / 2, g2 (each 3 wide) ...
                    let g0 = SIMD3(g[0], g[1], g[2]), g1 = SIMD3(g[3], g[4], g[5]), g2 = SIMD3(g[6], g[7], g[8])
                    for i in 0..<4 {
                        let row = i == 0 ? g0 : i == 1 ? 0.5 * (g0 + g1 + g2) : i == 2 ? 0.5 * (g0 - g1 + g2) : g2
                        // ... times G^T: each row (a0, a1, a2) -> (a0, (a0 + a1 + a2) / 2, (a0 - a1 + a2) / 2, a2).
                        u[(i * 4 + 0) * pairs + pair] = row.x
                        u[(i * 4 + 1) * pairs + pair] = 0.5 * (row.x + row.y + row.z)
                        u[(i * 4 + 2) * pairs + pair] = 0.5 * (row.x - row.y + row.z)
                        u[(i * 4 + 3) * pairs + pair] = row.z
                    }
                }
            }
            builtVersion = weight.version
        }
        return UnsafePointer(storage.baseAddress!)
    }
}

/// Index arithmetic of the tile transforms. Tile (ty, tx) of an image covers output pixels (2ty..2ty+1,
/// 2tx..2tx+1) and input pixels (2ty - top .. 2ty - top + 3, 2tx - left .. 2tx - left + 3), zero outside.
/// Transformed input of a unit (a chunk of images, or a band of tile rows of one): [16, inChannels, tiles];
/// products: [16, outChannels, tiles]; tiles run (image, ty, tx), or (ty, tx, image) in a unit of eight or more
/// images (WinogradInterleaved.swift).
struct WinogradGeometry {
    let inChannels: Int, outChannels: Int, height: Int, width: Int
    let top: Int, left: Int
    let outHeight: Int, outWidth: Int
    let imagesPerChunk: Int
    /// Tile rows per unit: all of them unless a chunk is one large image.
    let bandRows: Int

    var tilesY: Int { (outHeight + 1) / 2 }
    var tilesX: Int { (outWidth + 1) / 2 }
    var bandsPerImage: Int { (tilesY + bandRows - 1) / bandRows }
    func tileRows(ofBand band: Int) -> Range<Int> { (band * bandRows)..<min(tilesY, (band + 1) * bandRows) }
    /// Input columns a tile row needs, deinterleaved: even columns 2k - left and odd ones 2k + 1 - left.
    var stagingColumns: Int { tilesX + 1 }
    /// Four input rows, each [even | odd], or a staged channel of an interleaved chunk (WinogradInterleaved.swift).
    var stagingCount: Int { max(8 * stagingColumns, interleavedStagingCount) }

    func transformedInputCount(images: Int) -> Int { 16 * inChannels * images * bandRows * tilesX }
    func productCount(images: Int) -> Int { 16 * outChannels * images * bandRows * tilesX }

    /// V = B^T d B of `channels` of the tiles in `tileRows` of one image into `v` [16, inChannels, tiles] from
    /// column `tileOffset`.
    /// B^T = [1 0 -1 0; 0 1 1 0; 0 -1 1 0; 0 1 0 -1]. Per tile row, the four input rows are copied (zero padded,
    /// split into even and odd columns) to `staging`, transformed down the columns, then across, all contiguous.
    func transformInput(_ image: UnsafePointer<Float>, channels: Range<Int>, tileRows: Range<Int>, tileOffset: Int,
                        tiles: Int,
                        into v: UnsafeMutablePointer<Float>, staging: UnsafeMutablePointer<Float>) {
        let columns = stagingColumns
        let matrixStride = inChannels * tiles
        // Inside columns: even k with 0 <= 2k - left < width, odd k with 0 <= 2k + 1 - left < width.
        let evenStart = min(columns, (left + 1) / 2), evenEnd = max(evenStart, min(columns, (width + left + 1) / 2))
        let oddStart = min(columns, left / 2), oddEnd = max(oddStart, min(columns, (width + left) / 2))
        for c in channels {
            let plane = image + c * height * width
            for ty in tileRows {
                for r in 0..<4 {
                    let even = staging + r * 2 * columns, odd = even + columns
                    let y = 2 * ty - top + r
                    guard y >= 0 && y < height else {
                        even.update(repeating: 0, count: 2 * columns)
                        continue
                    }
                    let line = plane + y * width - left
                    for k in 0..<evenStart { even[k] = 0 }
                    for k in evenStart..<evenEnd { even[k] = line[2 * k] }
                    for k in evenEnd..<columns { even[k] = 0 }
                    for k in 0..<oddStart { odd[k] = 0 }
                    for k in oddStart..<oddEnd { odd[k] = line[2 * k + 1] }
                    for k in oddEnd..<columns { odd[k] = 0 }
                }
                // Down the columns: (d0 - d2, d1 + d2, d2 - d1, d1 - d3).
                let r0 = staging, r1 = staging + 2 * columns, r2 = r1 + 2 * columns, r3 = r2 + 2 * columns
                var k = 0
                while k + 8 <= 2 * columns {
                    let d0 = load8(r0 + k), d1 = load8(r1 + k), d2 = load8(r2 + k), d3 = load8(r3 + k)
                    store(d0 - d2, r0 + k)
                    store(d1 + d2, r1 + k)
                    store(d2 - d1, r2 + k)
                    store(d1 - d3, r3 + k)
                    k += 8
                }
                for k in k..<(2 * columns) {
                    let d0 = r0[k], d1 = r1[k], d2 = r2[k], d3 = r3[k]
                    r0[k] = d0 - d2
                    r1[k] = d1 + d2
                    r2[k] = d2 - d1
                    r3[k] = d1 - d3
                }
                // Across: tile tx reads (a0, a1, a2, a3) = (even[tx], odd[tx], even[tx + 1], odd[tx + 1]).
                let target = v + c * tiles + tileOffset + (ty - tileRows.lowerBound) * tilesX
                for i in 0..<4 {
                    let even = staging + i * 2 * columns, odd = even + columns
                    let t0 = target + (4 * i) * matrixStride, t1 = t0 + matrixStride
                    let t2 = t1 + matrixStride, t3 = t2 + matrixStride
                    var tx = 0
                    while tx + 8 <= tilesX {
                        let a0 = load8(even + tx), a1 = load8(odd + tx), a2 = load8(even + tx + 1), a3 = load8(odd + tx + 1)
                        store(a0 - a2, t0 + tx)
                        store(a1 + a2, t1 + tx)
                        store(a2 - a1, t2 + tx)
                        store(a1 - a3, t3 + tx)
                        tx += 8
                    }
                    for tx in tx..<tilesX {
                        let a0 = even[tx], a1 = odd[tx], a2 = even[tx + 1], a3 = odd[tx + 1]
                        t0[tx] = a0 - a2
                        t1[tx] = a1 + a2
                        t2[tx] = a2 - a1
                        t3[tx] = a1 - a3
                    }
                }
            }
        }
    }

    /// Y = A^T M A + bias of `channels` of the tiles in `tileRows` of one image from `m` [16, outChannels, tiles]
    /// from column `tileOffset` into `out` [outChannels, outHeight, outWidth], each value through channel o's
    /// `rectifier(o)`. A^T = [1 1 1 0; 0 1 -1 -1].
    func transformOutput<Rectifier: ChannelRectifier>(
        _ m: UnsafePointer<Float>, channels: Range<Int>, tileRows: Range<Int>, tileOffset: Int, tiles: Int,
        biases: UnsafePointer<Float>?, rectifier: (Int) -> Rectifier, into out: UnsafeMutablePointer<Float>
    ) {
        let matrixStride = outChannels * tiles
        let fullX = outWidth / 2
        for o in channels {
            let shift = biases?[o] ?? 0
            let rectify = rectifier(o)
            let plane = out + o * outHeight * outWidth
            for ty in tileRows {
                let base = m + o * tiles + tileOffset + (ty - tileRows.lowerBound) * tilesX
                let row0 = plane + 2 * ty * outWidth
                let hasSecondRow = 2 * ty + 1 < outHeight
                let row1 = hasSecondRow ? row0 + outWidth : row0  // written only with a second row
                // Each tile's 16 values sit at the same column of 16 matrices: plain scalar loops over tx that the
                // compiler vectorizes (contiguous loads, interleaved stores).
                let m0 = base, m1 = base + matrixStride, m2 = m1 + matrixStride, m3 = m2 + matrixStride
                let m4 = m3 + matrixStride, m5 = m4 + matrixStride, m6 = m5 + matrixStride, m7 = m6 + matrixStride
                let m8 = m7 + matrixStride, m9 = m8 + matrixStride, m10 = m9 + matrixStride, m11 = m10 + matrixStride
                let m12 = m11 + matrixStride, m13 = m12 + matrixStride, m14 = m13 + matrixStride
                let m15 = m14 + matrixStride
                @inline(__always) func tile(_ tx: Int) -> (Float, Float, Float, Float) {
                    // Down: s0 = row0 + row1 + row2, s1 = row1 - row2 - row3 of the 4x4 tile, for each column.
                    let s00 = m0[tx] + m4[tx] + m8[tx], s01 = m1[tx] + m5[tx] + m9[tx]
                    let s02 = m2[tx] + m6[tx] + m10[tx], s03 = m3[tx] + m7[tx] + m11[tx]
                    let s10 = m4[tx] - m8[tx] - m12[tx], s11 = m5[tx] - m9[tx] - m13[tx]
                    let s12 = m6[tx] - m10[tx] - m14[tx], s13 = m7[tx] - m11[tx] - m15[tx]
                    // Across, with the bias.
                    return (rectify(s00 + s01 + s02 + shift), rectify(s01 - s02 - s03 + shift),
                            rectify(s10 + s11 + s12 + shift), rectify(s11 - s12 - s13 + shift))
                }
                // Eight tiles at a time in SIMD registers (the compiler does not vectorize 16 streams by itself).
                var tx = 0
                while tx + 8 <= fullX {
                    let s00 = load8(m0 + tx) + load8(m4 + tx) + load8(m8 + tx)
                    let s01 = load8(m1 + tx) + load8(m5 + tx) + load8(m9 + tx)
                    let s02 = load8(m2 + tx) + load8(m6 + tx) + load8(m10 + tx)
                    let s03 = load8(m3 + tx) + load8(m7 + tx) + load8(m11 + tx)
                    store(interleave(rectify(s00 + s01 + s02 + shift), rectify(s01 - s02 - s03 + shift)),
                          row0 + 2 * tx)
                    if hasSecondRow {
                        let s10 = load8(m4 + tx) - load8(m8 + tx) - load8(m12 + tx)
                        let s11 = load8(m5 + tx) - load8(m9 + tx) - load8(m13 + tx)
                        let s12 = load8(m6 + tx) - load8(m10 + tx) - load8(m14 + tx)
                        let s13 = load8(m7 + tx) - load8(m11 + tx) - load8(m15 + tx)
                        store(interleave(rectify(s10 + s11 + s12 + shift), rectify(s11 - s12 - s13 + shift)),
                              row1 + 2 * tx)
                    }
                    tx += 8
                }
                if hasSecondRow {
                    for tx in tx..<fullX {
                        let (y00, y01, y10, y11) = tile(tx)
                        row0[2 * tx] = y00; row0[2 * tx + 1] = y01
                        row1[2 * tx] = y10; row1[2 * tx + 1] = y11
                    }
                } else {
                    for tx in tx..<fullX {
                        let (y00, y01, _, _) = tile(tx)
                        row0[2 * tx] = y00; row0[2 * tx + 1] = y01
                    }
                }
                if fullX < tilesX {  // odd width: the last tile's left column only
                    let (y00, _, y10, _) = tile(fullX)
                    row0[2 * fullX] = y00
                    if hasSecondRow { row1[2 * fullX] = y10 }
                }
            }
        }
    }
}

@inline(__always) func load8(_ pointer: UnsafePointer<Float>) -> SIMD8<Float> {
    UnsafeRawPointer(pointer).loadUnaligned(as: SIMD8<Float>.self)
}

@inline(__always) func load8(_ pointer: UnsafeMutablePointer<Float>) -> SIMD8<Float> {
    UnsafeRawPointer(pointer).loadUnaligned(as: SIMD8<Float>.self)
}

@inline(__always) func store<Vector: SIMD>(_ vector: Vector, _ pointer: UnsafeMutablePointer<Float>)
    where Vector.Scalar == Float {
    UnsafeMutableRawPointer(pointer).storeBytes(of: vector, as: Vector.self)
}

/// (a0, b0, a1, b1, ...): two output columns of eight tiles, in pixel order.
@inline(__always) private func interleave(_ a: SIMD8<Float>, _ b: SIMD8<Float>) -> SIMD16<Float> {
    SIMD16(a[0], b[0], a[1], b[1], a[2], b[2], a[3], b[3], a[4], b[4], a[5], b[5], a[6], b[6], a[7], b[7])
}
