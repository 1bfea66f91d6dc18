import VisionCore

/// Square grayscale face crops with emotion labels, packed in one byte buffer (row-major, N x side x side).
public struct FaceDataset: Sendable {
    public let side: Int
    public private(set) var pixels: [UInt8]
    public private(set) var labels: [Int]

    public init(side: Int, pixels: [UInt8], labels: [Int]) {
        precondition(pixels.count == labels.count * side * side, "pixels do not match \(labels.count) images of \(side)x\(side)")
        self.side = side
        self.pixels = pixels
        self.labels = labels
    }

    public var count: Int { labels.count }
    public var pixelsPerImage: Int { side * side }

    /// Images per class, in `Emotion` order.
    public var classCounts: [Int] {
        var counts = [Int](repeating: 0, count: Emotion.allCases.count)
        for label in labels { counts[label] += 1 }
        return counts
    }

    public func image(at index: Int) -> Image {
        let start = index * pixelsPerImage
        return Image(width: side, height: side, format: .gray8, pixels: Array(pixels[start..<(start + pixelsPerImage)]))
    }

    public func subset(_ indices: [Int]) -> FaceDataset {
        var selected = [UInt8]()
        selected.reserveCapacity(indices.count * pixelsPerImage)
        for index in indices {
            selected.append(contentsOf: pixels[(index * pixelsPerImage)..<((index + 1) * pixelsPerImage)])
        }
        return FaceDataset(side: side, pixels: selected, labels: indices.map { labels[$0] })
    }

    /// The first `perClass` images of every class, for quick experiments and tests.
    public func balancedSample(perClass: Int) -> FaceDataset {
        var taken = [Int](repeating: 0, count: Emotion.allCases.count)
        var indices: [Int] = []
        for (index, label) in labels.enumerated() where taken[label] < perClass {
            taken[label] += 1
            indices.append(index)
        }
        return subset(indices)
    }

    /// Mean and standard deviation of all pixels scaled to [0, 1].
    public var pixelStatistics: (mean: Float, standardDeviation: Float) {
        var sum: Double = 0, squares: Double = 0
        for value in pixels {
            let x = Double(value) / 255
            sum += x
            squares += x * x
        }
        let n = Double(max(pixels.count, 1))
        let mean = sum / n
        return (Float(mean), Float((squares / n - mean * mean).squareRoot()))
    }
}
