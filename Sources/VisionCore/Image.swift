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

    /// The pixels inside `x, y, width, height`, clipped to the image; nil when nothing of it is inside.
    public func cropped(x: Int, y: Int, width cropWidth: Int, height cropHeight: Int) -> Image? {
        let left = max(0, x), top = max(0, y)
        let right = min(width, x + cropWidth), bottom = min(height, y + cropHeight)
        guard right > left, bottom > top else { return nil }
        let channels = format.channels
        let rowBytes = (right - left) * channels
        var cropped = [UInt8](repeating: 0, count: rowBytes * (bottom - top))
        pixels.withUnsafeBufferPointer { source in
            cropped.withUnsafeMutableBufferPointer { target in
                for row in top..<bottom {
                    let from = source.baseAddress! + row * bytesPerRow + left * channels
                    (target.baseAddress! + (row - top) * rowBytes).update(from: from, count: rowBytes)
                }
            }
        }
        return Image(width: right - left, height: bottom - top, format: format, pixels: cropped)
    }
}
