/// Winograd's tile transforms for a unit of eight or more small images (R-Net's and O-Net's batches of crops, the
/// classifier on several faces), vectorised across the images instead of along a tile row.
///
/// Along a row, maps of 9 to 21 pixels have 5 to 11 tiles: the transforms ran mostly in their scalar tails, a
/// sixth of MTCNN's time on a group photo. Here the unit's tiles are ordered (tile row, tile column, image), so
/// the eight images' values of one tile sit side by side in V and in the products, and each transform handles
/// eight tiles with whole vectors. The input reaches that order through a staging copy of one channel at a time,
/// [padded row, padded column, image], zero outside the image; the outputs go back to each image's plane the same
/// way, a channel at a time. MTCNN on the 720p group photo went from 78-82 to 68-73 ms, the classifier at 16 faces
/// per call from 1.8 to 1.5 ms per face. Counts that are not a multiple of eight end with a block that overlaps
/// the previous one: its lanes compute the same values again and write them again.
extension WinogradGeometry {
    /// Whether a unit of `images` whole images takes this layout (the products do not care about the tile order).
    func interleavesImages(_ images: Int) -> Bool { images >= 8 && bandRows == tilesY }

    /// Rows and columns of a staged channel: every input pixel the tiles read, padding included.
    var paddedHeight: Int { 2 * tilesY + 2 }
    var paddedWidth: Int { 2 * tilesX + 2 }
    /// Floats of one staged channel of a whole chunk.
    var interleavedStagingCount: Int { imagesPerChunk >= 8 ? paddedHeight * paddedWidth * imagesPerChunk : 0 }

    /// `body(first)` for the eight-image blocks of 0..<images: whole blocks, then one ending at `images`.
    @inline(__always) private func forEachBlock(_ images: Int, _ body: (Int) -> Void) {
        var next = 0
        while next < images {
            body(min(next, images - 8))
            next += 8
        }
    }

    /// V = B^T d B of input `channels` of all tiles of `images` consecutive images from `chunk` into `v`
    /// [16, inChannels, tiles], tiles ordered (ty, tx, image); `staging` holds `interleavedStagingCount` floats.
    func transformInputInterleaved(_ chunk: UnsafePointer<Float>, images: Int, channels: Range<Int>,
                                   into v: UnsafeMutablePointer<Float>, staging: UnsafeMutablePointer<Float>) {
        let tiles = images * tilesY * tilesX
        let matrixStride = inChannels * tiles
        let imageSize = inChannels * height * width
        let rowLength = paddedWidth * images  // floats per staged row
        // Zeros where the tiles reach outside the images: every channel writes the same inside positions over them.
        staging.update(repeating: 0, count: paddedHeight * rowLength)
        for c in channels {
            // Stage channel c: [padded row, padded column, image].
            for n in 0..<images {
                let plane = chunk + n * imageSize + c * height * width
                for y in 0..<height {
                    let line = plane + y * width
                    let target = staging + (y + top) * rowLength + left * images + n
                    for x in 0..<width { target[x * images] = line[x] }
                }
            }
            for ty in 0..<tilesY {
                for tx in 0..<tilesX {
                    let patch = UnsafePointer(staging + (2 * ty) * rowLength + (2 * tx) * images)
                    let tile = (ty * tilesX + tx) * images
                    forEachBlock(images) { n in
                        // Down column s (B^T d): rows (d0 - d2, d1 + d2, d2 - d1, d1 - d3).
                        @inline(__always) func down(_ s: Int)
                            -> (SIMD8<Float>, SIMD8<Float>, SIMD8<Float>, SIMD8<Float>) {
                            let column = patch + s * images + n
                            let d0 = load8(column), d1 = load8(column + rowLength)
                            let d2 = load8(column + 2 * rowLength), d3 = load8(column + 3 * rowLength)
                            return (d0 - d2, d1 + d2, d2 - d1, d1 - d3)
                        }
                        let c0 = down(0), c1 = down(1), c2 = down(2), c3 = down(3)
                        // Across row i (times B): (a0 - a2, a1 + a2, a2 - a1, a1 - a3) are V's 4i ..< 4i + 4.
                        let target = v + c * tiles + tile + n
                        @inline(__always) func across(_ i: Int, _ a0: SIMD8<Float>, _ a1: SIMD8<Float>,
                                                      _ a2: SIMD8<Float>, _ a3: SIMD8<Float>) {
                            let row = target + 4 * i * matrixStride
                            store(a0 - a2, row)
                            store(a1 + a2, row + matrixStride)
                            store(a2 - a1, row + 2 * matrixStride)
                            store(a1 - a3, row + 3 * matrixStride)
                        }
                        across(0, c0.0, c1.0, c2.0, c3.0)
                        across(1, c0.1, c1.1, c2.1, c3.1)
                        across(2, c0.2, c1.2, c2.2, c3.2)
                        across(3, c0.3, c1.3, c2.3, c3.3)
                    }
                }
            }
        }
    }

    /// Y = A^T M A + bias of output `channels` of all tiles of `images` consecutive images from `m`
    /// [16, outChannels, tiles] (tiles ordered (ty, tx, image)) into `out`, the first image's
    /// [outChannels, outHeight, outWidth], each value through channel o's `rectifier(o)`. Per channel the tiles
    /// are written whole to `staging` ([row, column, image] over the tiles' 2 tilesY x 2 tilesX pixels, with
    /// `interleavedStagingCount` floats), and the pixels inside the map copied from there to each image's plane.
    func transformOutputInterleaved<Rectifier: ChannelRectifier>(
        _ m: UnsafePointer<Float>, images: Int, channels: Range<Int>, biases: UnsafePointer<Float>?,
        rectifier: (Int) -> Rectifier, into out: UnsafeMutablePointer<Float>, staging: UnsafeMutablePointer<Float>
    ) {
        let tiles = images * tilesY * tilesX
        let matrixStride = outChannels * tiles
        let imageSize = outChannels * outHeight * outWidth
        let rowLength = 2 * tilesX * images  // floats per staged row
        for o in channels {
            let shift = biases?[o] ?? 0
            let rectify = rectifier(o)
            for ty in 0..<tilesY {
                for tx in 0..<tilesX {
                    let target = staging + 2 * ty * rowLength + 2 * tx * images
                    forEachBlock(images) { n in
                        let base = m + o * tiles + (ty * tilesX + tx) * images + n
                        @inline(__always) func at(_ k: Int) -> SIMD8<Float> { load8(base + k * matrixStride) }
                        // Down: s0 = row0 + row1 + row2, s1 = row1 - row2 - row3 of the 4x4 tile, per column.
                        let s00 = at(0) + at(4) + at(8), s01 = at(1) + at(5) + at(9)
                        let s02 = at(2) + at(6) + at(10), s03 = at(3) + at(7) + at(11)
                        let s10 = at(4) - at(8) - at(12), s11 = at(5) - at(9) - at(13)
                        let s12 = at(6) - at(10) - at(14), s13 = at(7) - at(11) - at(15)
                        // Across, with the bias.
                        store(rectify(s00 + s01 + s02 + shift), target + n)
                        store(rectify(s01 - s02 - s03 + shift), target + images + n)
                        store(rectify(s10 + s11 + s12 + shift), target + rowLength + n)
                        store(rectify(s11 - s12 - s13 + shift), target + rowLength + images + n)
                    }
                }
            }
            for n in 0..<images {
                let plane = out + n * imageSize + o * outHeight * outWidth
                for y in 0..<outHeight {
                    let source = staging + y * rowLength + n, line = plane + y * outWidth
                    for x in 0..<outWidth { line[x] = source[x * images] }
                }
            }
        }
    }
}
