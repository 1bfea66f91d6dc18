import Foundation

/// The emotion model that ships with fer-annotate (trained by our own fer-train; see Resources/MODEL_CARD.md).
public enum ShippedModel {
    public static let fileName = "fer-vgg.safetensors"

    /// Its location in the built package's resource bundle.
    public static var url: URL? {
        Bundle.module.url(forResource: "fer-vgg", withExtension: "safetensors")
    }

    public static func load() throws(EmotionModelError) -> EmotionClassifier {
        guard let url else { throw .dataNotFound("the shipped model \(fileName) is missing from the build; pass --model") }
        return try EmotionClassifier(contentsOf: url)
    }
}
