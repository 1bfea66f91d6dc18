import CFreeType
import Foundation

/// An antialiased glyph: coverage 0...255 per pixel, placed relative to the pen position on the baseline.
struct Glyph: Sendable {
    let width: Int
    let height: Int
    let left: Int      // from the pen to the bitmap's left edge
    let top: Int       // from the baseline up to the bitmap's top edge
    let advance: Int   // pen movement, pixels
    let coverage: [UInt8]
}

public struct FontError: Error, CustomStringConvertible {
    public let description: String
}

/// The only place that talks to FreeType: loads a font file and renders glyphs at pixel sizes, cached.
final class GlyphRasterizer {
    private var library: FT_Library?
    private var face: FT_Face?
    private var cache: [GlyphKey: Glyph] = [:]
    private var metricsCache: [Int: (ascender: Int, descender: Int)] = [:]

    private struct GlyphKey: Hashable { let character: UInt32; let pixelSize: Int }

    /// Debian's fonts-dejavu-core.
    static let defaultFontPath = "/usr/share/fonts/truetype/dejavu/DejaVuSans-Bold.ttf"

    init(fontPath: String = GlyphRasterizer.defaultFontPath) throws {
        guard FT_Init_FreeType(&library) == 0, let library else { throw FontError(description: "cannot start FreeType") }
        guard FT_New_Face(library, fontPath, 0, &face) == 0, face != nil else {
            FT_Done_FreeType(library)
            self.library = nil
            throw FontError(description: "cannot load font \(fontPath) (install fonts-dejavu-core)")
        }
    }

    deinit {
        if let face { FT_Done_Face(face) }
        if let library { FT_Done_FreeType(library) }
    }

    private func setSize(_ pixelSize: Int) {
        FT_Set_Pixel_Sizes(face, 0, FT_UInt(pixelSize))
    }

    /// Ascender and descender (positive down) in pixels at a size.
    func lineMetrics(pixelSize: Int) -> (ascender: Int, descender: Int) {
        if let cached = metricsCache[pixelSize] { return cached }
        setSize(pixelSize)
        let metrics = face!.pointee.size.pointee.metrics
        let result = (Int(metrics.ascender >> 6), Int(-metrics.descender >> 6))
        metricsCache[pixelSize] = result
        return result
    }

    func glyph(_ character: Character, pixelSize: Int) -> Glyph {
        let code = character.unicodeScalars.first?.value ?? 0x3F
        let key = GlyphKey(character: code, pixelSize: pixelSize)
        if let cached = cache[key] { return cached }
        setSize(pixelSize)
        var glyph = Glyph(width: 0, height: 0, left: 0, top: 0, advance: pixelSize / 3, coverage: [])
        if FT_Load_Char(face, FT_ULong(code), FT_Int32(FT_LOAD_RENDER)) == 0, let slot = face?.pointee.glyph {
            let bitmap = slot.pointee.bitmap
            let width = Int(bitmap.width), height = Int(bitmap.rows), pitch = Int(bitmap.pitch)
            var coverage = [UInt8](repeating: 0, count: width * height)
            if let buffer = bitmap.buffer {
                for y in 0..<height {
                    for x in 0..<width { coverage[y * width + x] = buffer[y * pitch + x] }
                }
            }
            glyph = Glyph(width: width, height: height, left: Int(slot.pointee.bitmap_left), top: Int(slot.pointee.bitmap_top),
                          advance: Int(slot.pointee.advance.x >> 6), coverage: coverage)
        }
        cache[key] = glyph
        return glyph
    }
}
