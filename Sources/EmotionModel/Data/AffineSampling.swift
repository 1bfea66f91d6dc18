import VisionCore

/// A 2-D affine map from output pixel centres to source coordinates: (x', y') = (a x + b y + c, d x + e y + f).
public struct AffineMap: Sendable, Equatable {
    public var a: Float, b: Float, c: Float
    public var d: Float, e: Float, f: Float

    public init(a: Float, b: Float, c: Float, d: Float, e: Float, f: Float) {
        self.a = a; self.b = b; self.c = c; self.d = d; self.e = e; self.f = f
    }

    public static let identity = AffineMap(a: 1, b: 0, c: 0, d: 0, e: 1, f: 0)

    /// Maps the output square [0, side) onto a source square of `sourceSide` pixels centred at (centerX, centerY),
    /// rotated by `angle` radians (counter-clockwise as seen on screen) and mirrored when `mirrored`.
    public static func square(side: Int, sourceCenterX: Float, sourceCenterY: Float, sourceSide: Float,
                              angle: Float = 0, mirrored: Bool = false) -> AffineMap {
        let scale = sourceSide / Float(side)
        let cosine = cosf(angle) * scale, sine = sinf(angle) * scale
        let flip: Float = mirrored ? -1 : 1
        let half = Float(side) / 2
        // Output pixel centre (x + 0.5) relative to the output centre, mirrored, rotated, scaled, then moved to the
        // source centre (in pixel-centre coordinates, hence the final -0.5).
        let a = cosine * flip, b = -sine
        let d = sine * flip, e = cosine
        let c = sourceCenterX - 0.5 + (a * (0.5 - half) + b * (0.5 - half))
        let f = sourceCenterY - 0.5 + (d * (0.5 - half) + e * (0.5 - half))
        return AffineMap(a: a, b: b, c: c, d: d, e: e, f: f)
    }
}

/// Bilinear sampling of `value(x, y)` through `map`; outside the source the nearest edge pixel is repeated
/// (so rotations and shifts never paint black corners the network could learn from).
@inline(__always)
private func warp(width: Int, height: Int, map: AffineMap, outputSide: Int, into output: UnsafeMutableBufferPointer<Float>,
                  value: (_ x: Int, _ y: Int) -> Float) {
    precondition(output.count >= outputSide * outputSide, "output too small")
    let maxX = Float(width - 1), maxY = Float(height - 1)
    for y in 0..<outputSide {
        for x in 0..<outputSide {
            let fx = Float(x), fy = Float(y)
            let sx = min(max(map.a * fx + map.b * fy + map.c, 0), maxX)
            let sy = min(max(map.d * fx + map.e * fy + map.f, 0), maxY)
            let x0 = Int(sx), y0 = Int(sy)
            let x1 = min(x0 + 1, width - 1), y1 = min(y0 + 1, height - 1)
            let wx = sx - Float(x0), wy = sy - Float(y0)
            let top = value(x0, y0) * (1 - wx) + value(x1, y0) * wx
            let bottom = value(x0, y1) * (1 - wx) + value(x1, y1) * wx
            output[y * outputSide + x] = top * (1 - wy) + bottom * wy
        }
    }
}

/// Samples a gray image through `map` with bilinear interpolation, edges repeated.
func warpGray(_ source: UnsafeBufferPointer<UInt8>, width: Int, height: Int, map: AffineMap,
                     outputSide: Int, into output: UnsafeMutableBufferPointer<Float>) {
    warp(width: width, height: height, map: map, outputSide: outputSide, into: output) { x, y in
        Float(source[y * width + x])
    }
}

/// Like `warpGray`, from an rgb24 source, converting to luma (BT.601: 0.299 R + 0.587 G + 0.114 B, as FFmpeg's
/// gray conversion) on the way, so only the pixels the crop needs are converted.
func warpLuma(_ source: UnsafeBufferPointer<UInt8>, width: Int, height: Int, map: AffineMap,
                     outputSide: Int, into output: UnsafeMutableBufferPointer<Float>) {
    warp(width: width, height: height, map: map, outputSide: outputSide, into: output) { x, y in
        let offset = (y * width + x) * 3
        return 0.299 * Float(source[offset]) + 0.587 * Float(source[offset + 1]) + 0.114 * Float(source[offset + 2])
    }
}

/// Bilinear resize of a gray image to side x side (area-correct pixel centres).
public func resizeGray(_ image: Image, side: Int) -> [UInt8] {
    precondition(image.format == .gray8, "resizeGray takes gray8 images")
    if image.width == side && image.height == side { return image.pixels }
    var values = [Float](repeating: 0, count: side * side)
    let map = AffineMap(a: Float(image.width) / Float(side), b: 0,
                        c: 0.5 * Float(image.width) / Float(side) - 0.5,
                        d: 0, e: Float(image.height) / Float(side),
                        f: 0.5 * Float(image.height) / Float(side) - 0.5)
    image.pixels.withUnsafeBufferPointer { source in
        values.withUnsafeMutableBufferPointer { target in
            warpGray(source, width: image.width, height: image.height, map: map, outputSide: side, into: target)
        }
    }
    return values.map { UInt8(max(0, min(255, $0.rounded()))) }
}

#if canImport(Glibc)
import Glibc
#else
import Darwin
#endif
