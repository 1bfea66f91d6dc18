/// The seven FER2013 expressions, in FER2013's label order (ids 0 to 6). Every model, CSV and report uses this order.
public enum Emotion: Int, CaseIterable, Sendable, Codable, CustomStringConvertible {
    case angry, disgust, fear, happy, sad, surprise, neutral

    public var name: String {
        switch self {
        case .angry: return "angry"
        case .disgust: return "disgust"
        case .fear: return "fear"
        case .happy: return "happy"
        case .sad: return "sad"
        case .surprise: return "surprise"
        case .neutral: return "neutral"
        }
    }

    public var description: String { name }

    /// Accepts the names used by data sets on disk ("Angry", "surprised", "fearful", ...).
    public init?(name: String) {
        let lowered = name.lowercased()
        let aliases: [String: Emotion] = ["surprised": .surprise, "fearful": .fear, "disgusted": .disgust,
                                          "anger": .angry, "happiness": .happy, "sadness": .sad]
        if let match = Emotion.allCases.first(where: { $0.name == lowered }) {
            self = match
        } else if let alias = aliases[lowered] {
            self = alias
        } else {
            return nil
        }
    }

    public static var names: [String] { allCases.map(\.name) }
}
