/// How much fine detail face crops carry, to detect and undo a sharpness gap between training images and the
/// faces the model will see. (The FER2013 training images we were given are blurred about 10x more than the
/// PublicTest images by this measure; a model trained on them scores at chance on sharp faces.)
public enum Sharpness {
    /// Mean absolute 4-neighbour Laplacian over the image's standard deviation (so contrast does not count).
    public static func of(_ pixels: ArraySlice<UInt8>, side: Int) -> Float {
        let base = pixels.startIndex
        var sum: Float = 0, mean: Float = 0, squares: Float = 0
        for index in pixels.indices {
            let value = Float(pixels[index])
            mean += value
            squares += value * value
        }
        let count = Float(side * side)
        mean /= count
        let deviation = max((squares / count - mean * mean).squareRoot(), 1e-3)
        for y in 1..<(side - 1) {
            for x in 1..<(side - 1) {
                let center = base + y * side + x
                let laplacian = 4 * Float(pixels[center]) - Float(pixels[center - 1]) - Float(pixels[center + 1])
                    - Float(pixels[center - side]) - Float(pixels[center + side])
                sum += abs(laplacian)
            }
        }
        return sum / Float((side - 2) * (side - 2)) / deviation
    }

    /// Median sharpness of (at most `limit` evenly spread) images of a data set.
    public static func median(of dataset: FaceDataset, limit: Int = 600) -> Float {
        guard dataset.count > 0 else { return 0 }
        let step = max(1, dataset.count / limit)
        let values = stride(from: 0, to: dataset.count, by: step).map { index in
            of(dataset.pixels[(index * dataset.pixelsPerImage)..<((index + 1) * dataset.pixelsPerImage)], side: dataset.side)
        }.sorted()
        return values[values.count / 2]
    }

    /// The Gaussian sigma (0 to 4 px, steps of 0.1) that brings `sharper` images to the median sharpness of
    /// `reference`; 0 when `sharper` is not clearly (1.5x) sharper.
    public static func matchingBlurSigma(reference: FaceDataset, sharper: FaceDataset) -> Float {
        let target = median(of: reference)
        let sample = sharper.subset(Array(stride(from: 0, to: sharper.count, by: max(1, sharper.count / 600))))
        guard median(of: sample) > 1.5 * target else { return 0 }
        var best: (sigma: Float, gap: Float) = (0, .infinity)
        for step in 1...40 {
            let sigma = Float(step) / 10
            let blurred = FaceDataset(side: sample.side, pixels: GaussianBlur(sigma: sigma).applied(to: sample.pixels, side: sample.side),
                                      labels: sample.labels)
            let gap = abs(median(of: blurred) - target)
            if gap < best.gap { best = (sigma, gap) }
        }
        return best.sigma
    }
}
