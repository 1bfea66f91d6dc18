/// What happens to a grayscale crop before the network, identically in training, evaluation and video:
/// an optional Gaussian low-pass (to match the sharpness of the training images), then
/// x = (pixel / 255 - mean) / standardDeviation.
public struct InputPreprocessing: Codable, Sendable, Equatable {
    public var mean: Float
    public var standardDeviation: Float
    /// Standard deviation in pixels of the Gaussian applied to inputs; 0 = none. Training images are used as
    /// they are: this brings sharper inputs (real FER2013 test faces, video) to the training images' sharpness.
    public var blurSigma: Float

    public init(mean: Float, standardDeviation: Float, blurSigma: Float = 0) {
        self.mean = mean
        self.standardDeviation = standardDeviation
        self.blurSigma = blurSigma
    }

    /// Multiplier and offset to apply to raw 0...255 values.
    public var affine: (scale: Float, offset: Float) {
        (1 / (255 * standardDeviation), -mean / standardDeviation)
    }

    private enum CodingKeys: String, CodingKey { case mean, standardDeviation, blurSigma }

    public init(from decoder: Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        mean = try container.decode(Float.self, forKey: .mean)
        standardDeviation = try container.decode(Float.self, forKey: .standardDeviation)
        blurSigma = try container.decodeIfPresent(Float.self, forKey: .blurSigma) ?? 0
    }
}
