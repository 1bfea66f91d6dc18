import VisionCore

/// An sRGB colour.
public struct Color: Sendable, Equatable {
    public var red: UInt8, green: UInt8, blue: UInt8

    public init(red: UInt8, green: UInt8, blue: UInt8) {
        self.red = red; self.green = green; self.blue = blue
    }

    public init(hex: UInt32) {
        self.init(red: UInt8(hex >> 16 & 0xFF), green: UInt8(hex >> 8 & 0xFF), blue: UInt8(hex & 0xFF))
    }

    public static let white = Color(hex: 0xFFFFFF)
    public static let black = Color(hex: 0x000000)

    /// Faces found and tracked without an emotion (--faces-only): cyan, unlike every emotion's colour.
    public static let untracked = Color(hex: 0x00E5FF)

    /// One colour per emotion, distinct and readable on video (angry red, disgust green, fear purple,
    /// happy yellow, sad blue, surprise orange, neutral grey).
    public static func of(_ emotion: Emotion) -> Color {
        switch emotion {
        case .angry: return Color(hex: 0xE53935)
        case .disgust: return Color(hex: 0x43A047)
        case .fear: return Color(hex: 0x8E24AA)
        case .happy: return Color(hex: 0xFDD835)
        case .sad: return Color(hex: 0x1E88E5)
        case .surprise: return Color(hex: 0xFB8C00)
        case .neutral: return Color(hex: 0x9E9E9E)
        }
    }

    /// Black or white, whichever reads better on this colour.
    public var contrasting: Color {
        (0.299 * Float(red) + 0.587 * Float(green) + 0.114 * Float(blue)) > 150 ? .black : .white
    }

    public var hexString: String {
        "#" + [red, green, blue].map { String($0, radix: 16).count == 1 ? "0" + String($0, radix: 16) : String($0, radix: 16) }.joined()
    }
}

/// Drawing on an rgb24 image: filled and outlined rectangles with opacity, antialiased text.
public struct Canvas {
    public private(set) var image: Image
    private let rasterizer: GlyphRasterizer

    init(image: Image, rasterizer: GlyphRasterizer) {
        precondition(image.format == .rgb24, "Canvas draws on rgb24 images")
        self.image = image
        self.rasterizer = rasterizer
    }

    /// Blends `color` over the pixels of a rectangle (clipped to the image) with `opacity` 0...1.
    public mutating func fill(x: Int, y: Int, width: Int, height: Int, color: Color, opacity: Float = 1) {
        let x0 = max(0, x), y0 = max(0, y)
        let x1 = min(image.width, x + width), y1 = min(image.height, y + height)
        guard x0 < x1, y0 < y1 else { return }
        let alpha = max(0, min(1, opacity))
        let channels: [Float] = [Float(color.red), Float(color.green), Float(color.blue)]
        let imageWidth = image.width
        image.pixels.withUnsafeMutableBufferPointer { pixels in
            for row in y0..<y1 {
                for column in x0..<x1 {
                    let offset = (row * imageWidth + column) * 3
                    for channel in 0..<3 {
                        let blended = Float(pixels[offset + channel]) * (1 - alpha) + channels[channel] * alpha
                        pixels[offset + channel] = UInt8(blended + 0.5)
                    }
                }
            }
        }
    }

    /// A rectangle outline `thickness` pixels wide, drawn inside the box.
    public mutating func strokeRectangle(_ box: Box, color: Color, thickness: Int) {
        let x = Int(box.x.rounded()), y = Int(box.y.rounded())
        let width = Int(box.width.rounded()), height = Int(box.height.rounded())
        fill(x: x, y: y, width: width, height: thickness, color: color)
        fill(x: x, y: y + height - thickness, width: width, height: thickness, color: color)
        fill(x: x, y: y, width: thickness, height: height, color: color)
        fill(x: x + width - thickness, y: y, width: thickness, height: height, color: color)
    }

    /// Width and height (ascender + descender) of a line of text.
    public func measure(_ text: String, pixelSize: Int) -> (width: Int, height: Int) {
        let width = text.reduce(0) { $0 + rasterizer.glyph($1, pixelSize: pixelSize).advance }
        let metrics = rasterizer.lineMetrics(pixelSize: pixelSize)
        return (width, metrics.ascender + metrics.descender)
    }

    /// Draws text with its top-left corner at (x, y).
    public mutating func draw(_ text: String, x: Int, y: Int, pixelSize: Int, color: Color) {
        let baseline = y + rasterizer.lineMetrics(pixelSize: pixelSize).ascender
        var pen = x
        let (imageWidth, imageHeight) = (image.width, image.height)
        let channels: [Float] = [Float(color.red), Float(color.green), Float(color.blue)]
        for character in text {
            let glyph = rasterizer.glyph(character, pixelSize: pixelSize)
            image.pixels.withUnsafeMutableBufferPointer { pixels in
                for row in 0..<glyph.height {
                    let targetY = baseline - glyph.top + row
                    guard targetY >= 0 && targetY < imageHeight else { continue }
                    for column in 0..<glyph.width {
                        let targetX = pen + glyph.left + column
                        guard targetX >= 0 && targetX < imageWidth else { continue }
                        let alpha = Float(glyph.coverage[row * glyph.width + column]) / 255
                        guard alpha > 0 else { continue }
                        let offset = (targetY * imageWidth + targetX) * 3
                        for channel in 0..<3 {
                            pixels[offset + channel] = UInt8(Float(pixels[offset + channel]) * (1 - alpha) + channels[channel] * alpha + 0.5)
                        }
                    }
                }
            }
            pen += glyph.advance
        }
    }
}
