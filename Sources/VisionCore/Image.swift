/// Layout of the bytes in an `Image`.
public enum PixelFormat: String, Sendable, CaseIterable {
    /// One byte per pixel, luma.
    case gray8
    /// Three bytes per pixel, R, G, B.
    case rgb24

    public var channels: Int {
        switch self {
        case .gray8: return 1
        case .rgb24: return 3
        }
    }
}

/// A tightly packed 8-bit image (row stride = width * channels), the currency between stages.
public struct Image: Sendable, Equatable {
    public let width: Int
    public let height: Int
    public let format: PixelFormat
    public var pixels: [UInt8]

    public init(width: Int, height: Int, format: PixelFormat, pixels: [UInt8]) {
        precondition(width > 0 && height > 0, "image must not be empty")
        precondition(pixels.count == width * height * format.channels, "pixel buffer does not match size")
        self.width = width
        self.height = height
        self.format = format
        self.pixels = pixels
    }

    /// A black image.
    public init(width: Int, height: Int, format: PixelFormat) {
        self.init(width: width, height: height, format: format,
                  pixels: [UInt8](repeating: 0, count: width * height * format.channels))
    }

    public var bytesPerRow: Int { width * format.channels }
}
