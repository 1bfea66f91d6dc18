import NeuralEngine

/// Random, seeded geometric and photometric jitter for training crops. Geometric jitter is sized like the
/// misalignment of a face detector's crop, so the model tolerates it in video.
public struct AugmentationPolicy: Codable, Sendable, Equatable {
    /// Maximum rotation either way, in degrees.
    public var rotationDegrees: Float
    /// Scale drawn from [1 - zoom, 1 + zoom].
    public var zoom: Float
    /// Maximum translation either way, as a fraction of the side.
    public var shift: Float
    public var horizontalFlip: Bool
    /// Maximum additive brightness change, as a fraction of full scale.
    public var brightness: Float
    /// Contrast factor drawn from [1 - contrast, 1 + contrast].
    public var contrast: Float
    /// Probability of erasing one random rectangle (2% to 20% of the area) with noise.
    public var erasingProbability: Float

    public static let none = AugmentationPolicy(rotationDegrees: 0, zoom: 0, shift: 0, horizontalFlip: false,
                                                brightness: 0, contrast: 0, erasingProbability: 0)
    public static let standard = AugmentationPolicy(rotationDegrees: 15, zoom: 0.15, shift: 0.1, horizontalFlip: true,
                                                    brightness: 0.2, contrast: 0.2, erasingProbability: 0.25)

    /// The standard policy with every magnitude multiplied by `strength` (0 = none).
    public static func standard(strength: Float) -> AugmentationPolicy {
        let base = AugmentationPolicy.standard
        return AugmentationPolicy(rotationDegrees: base.rotationDegrees * strength, zoom: base.zoom * strength,
                                  shift: base.shift * strength, horizontalFlip: strength > 0,
                                  brightness: base.brightness * strength, contrast: base.contrast * strength,
                                  erasingProbability: min(1, base.erasingProbability * strength))
    }

    /// One augmented, normalised crop of `side` x `side` pixels.
    public func applied(to pixels: [UInt8], side: Int, normalization: InputPreprocessing,
                        generator: inout RandomGenerator) -> [Float] {
        precondition(pixels.count == side * side, "expected one \(side)x\(side) crop")
        var output = [Float](repeating: 0, count: side * side)
        pixels.withUnsafeBufferPointer { source in
            output.withUnsafeMutableBufferPointer { target in
                apply(to: source, side: side, normalization: normalization, generator: &generator, into: target)
            }
        }
        return output
    }

    /// Writes one augmented, normalised crop of `side` x `side` into `output` (the training loop's allocation-free path).
    func apply(to source: UnsafeBufferPointer<UInt8>, side: Int, normalization: InputPreprocessing,
                      generator: inout RandomGenerator, into output: UnsafeMutableBufferPointer<Float>) {
        let center = Float(side) / 2
        let angle = generator.nextFloat(in: -rotationDegrees...rotationDegrees) * Float.pi / 180
        let scale = 1 + generator.nextFloat(in: -zoom...zoom)
        let dx = generator.nextFloat(in: -shift...shift) * Float(side)
        let dy = generator.nextFloat(in: -shift...shift) * Float(side)
        let mirrored = horizontalFlip && generator.nextUnitFloat() < 0.5
        let map = AffineMap.square(side: side, sourceCenterX: center + dx, sourceCenterY: center + dy,
                                   sourceSide: Float(side) / scale, angle: angle, mirrored: mirrored)
        warpGray(source, width: side, height: side, map: map, outputSide: side, into: output)

        let gain = 1 + generator.nextFloat(in: -contrast...contrast)
        let lift = generator.nextFloat(in: -brightness...brightness) * 255
        let (normScale, normOffset) = normalization.affine
        var mean: Float = 0
        for index in 0..<(side * side) { mean += output[index] }
        mean /= Float(side * side)
        for index in 0..<(side * side) {
            let adjusted = min(255, max(0, (output[index] - mean) * gain + mean + lift))
            output[index] = adjusted * normScale + normOffset
        }

        if generator.nextUnitFloat() < erasingProbability {
            let area = Float(side * side) * generator.nextFloat(in: 0.02...0.2)
            let aspect = generator.nextFloat(in: 0.3...3.3)
            let height = min(side, max(1, Int((area * aspect).squareRoot())))
            let width = min(side, max(1, Int((area / aspect).squareRoot())))
            let top = Int(generator.next() % UInt64(side - height + 1))
            let left = Int(generator.next() % UInt64(side - width + 1))
            for y in top..<(top + height) {
                for x in left..<(left + width) { output[y * side + x] = generator.nextNormal() }
            }
        }
    }
}
