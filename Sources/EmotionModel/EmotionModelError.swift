/// Everything that can go wrong between a data set or model file on disk and a trained network.
public enum EmotionModelError: Error, CustomStringConvertible, Equatable {
    case dataNotFound(String)
    case badDataSet(String)
    case badModelFile(String)
    case badOption(String)
    case io(String)

    public var description: String {
        switch self {
        case .dataNotFound(let message), .badDataSet(let message), .badModelFile(let message),
             .badOption(let message), .io(let message):
            return message
        }
    }
}
