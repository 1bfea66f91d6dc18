import NeuralEngine

/// A network's shape, stored as JSON in every model file so the file alone rebuilds the model.
public struct ArchitectureConfig: Codable, Sendable, Equatable {
    /// "mini" or "vgg".
    public var name: String
    /// Channels of each stage; every stage ends with a 2x2 max-pool.
    public var widths: [Int]
    public var convolutionsPerStage: Int
    /// Units of the hidden fully connected layer.
    public var hidden: Int
    public var dropout: Float
    public var inputSize: Int
    public var classes: Int

    public static let names = ["mini", "vgg", "vgg-wide"]

    public static func named(_ name: String) throws(EmotionModelError) -> ArchitectureConfig {
        switch name {
        case "mini":
            // Small and fast: 4 stages of one convolution; for tests, quick experiments and slow machines.
            return ArchitectureConfig(name: name, widths: [16, 32, 64, 128], convolutionsPerStage: 1, hidden: 128,
                                      dropout: 0.3, inputSize: 48, classes: 7)
        case "vgg":
            // VGG-style at half the classic width: 4 stages of two 3x3 convolutions with batch norm.
            return ArchitectureConfig(name: name, widths: [32, 64, 128, 256], convolutionsPerStage: 2, hidden: 256,
                                      dropout: 0.4, inputSize: 48, classes: 7)
        case "vgg-wide":
            // The same layout at 1.5x the width (2.25x the multiply-adds): the candidate measured against "vgg".
            return ArchitectureConfig(name: name, widths: [48, 96, 192, 384], convolutionsPerStage: 2, hidden: 256,
                                      dropout: 0.4, inputSize: 48, classes: 7)
        default:
            throw .badOption("unknown architecture '\(name)'; choose one of: \(names.joined(separator: ", "))")
        }
    }

    /// Spatial side after the stages' max-pools.
    public var finalSide: Int { inputSize >> widths.count }

    /// Multiply-accumulates of one forward pass of one image.
    public var multiplyAccumulates: Int {
        var total = 0, channels = 1, side = inputSize
        for width in widths {
            for convolution in 0..<convolutionsPerStage {
                total += side * side * width * (convolution == 0 ? channels : width) * 9
            }
            channels = width
            side /= 2
        }
        return total + channels * side * side * hidden + hidden * classes
    }

    /// Builds the network with fresh He-initialised weights.
    public func makeNetwork(seed: UInt64) -> Sequential {
        var generator = RandomGenerator(seed: seed)
        var layers: [Layer] = []
        var channels = 1
        for width in widths {
            for _ in 0..<convolutionsPerStage {
                layers.append(Conv2d(inChannels: channels, outChannels: width, kernelSize: 3, padding: .uniform(1),
                                     bias: false, generator: &generator))
                layers.append(BatchNorm(channels: width))
                layers.append(ReLU())
                channels = width
            }
            layers.append(MaxPool2d(kernelSize: 2))
        }
        layers.append(Flatten())
        layers.append(Dropout(probability: dropout, seed: seed &+ 1))
        layers.append(Linear(inFeatures: channels * finalSide * finalSide, outFeatures: hidden, generator: &generator))
        layers.append(ReLU())
        layers.append(Dropout(probability: dropout, seed: seed &+ 2))
        layers.append(Linear(inFeatures: hidden, outFeatures: classes, generator: &generator))
        return Sequential(layers)
    }
}
