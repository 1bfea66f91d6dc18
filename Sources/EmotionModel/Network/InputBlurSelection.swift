/// Choosing a model's input low-pass on a validation split: a grid of sigmas, and the pick by the best
/// three-point average accuracy (single accuracies on a few thousand faces jump by a point between neighbouring
/// sigmas, so the peak of the raw curve is partly noise).
public struct InputBlurSelection: Sendable, Equatable {
    /// The sigmas tried, in pixels, ascending.
    public let sigmas: [Float]
    /// "START...END step STEP", as given.
    public let description: String

    /// Parses START:END:STEP (0 <= START <= END, STEP > 0, at most 100 steps); nil for anything else.
    public init?(grid text: String) {
        let parts = text.split(separator: ":", omittingEmptySubsequences: false).map { Float($0) }
        guard parts.count == 3, let start = parts[0], let end = parts[1], let step = parts[2],
              start >= 0, end >= start, step > 0, (end - start) / step <= 100 else { return nil }
        // The small slack keeps END itself when (END - START) / STEP lands just under a whole number in floats;
        // sigmas are rounded to 1/1000 px so that 2.5 + 4 * 0.2 is stored as 3.3, not 3.3000002.
        sigmas = (0...Int(((end - start) / step + 1e-3).rounded(.down))).map {
            ((start + Float($0) * step) * 1000).rounded() / 1000
        }
        description = "\(start)...\(end) step \(step)"
    }

    /// Each accuracy averaged with its neighbours (one neighbour at the ends of the grid).
    public static func smoothed(_ accuracies: [Double]) -> [Double] {
        accuracies.indices.map { index in
            let window = accuracies[max(0, index - 1)...min(accuracies.count - 1, index + 1)]
            return window.reduce(0, +) / Double(window.count)
        }
    }

    /// The index of the best smoothed accuracy (the first of equals); nil when there are no accuracies.
    public static func bestIndex(_ accuracies: [Double]) -> Int? {
        let averages = smoothed(accuracies)
        return averages.indices.max { averages[$0] < averages[$1] || (averages[$0] == averages[$1] && $0 > $1) }
    }
}
