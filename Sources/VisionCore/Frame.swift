/// An exact fraction, used for time bases and frame rates (FFmpeg's `AVRational`, without FFmpeg).
public struct Rational: Sendable, Hashable, CustomStringConvertible {
    public var numerator: Int
    public var denominator: Int

    public init(_ numerator: Int, _ denominator: Int) {
        self.numerator = numerator
        self.denominator = denominator
    }

    /// `numerator / denominator`, or nil when the denominator is zero.
    public var value: Double? {
        denominator == 0 ? nil : Double(numerator) / Double(denominator)
    }

    public var description: String { "\(numerator)/\(denominator)" }
}

/// A presentation time: an integer tick count in a time base, exactly as the demuxer gave it.
///
/// Keeping the ticks (not only seconds) lets the encoder write the very same timestamps back,
/// so variable frame rate survives a round trip. Rescale only at codec and muxer boundaries.
/// Equality is of the representation (ticks and time base); compare `seconds` to order instants.
public struct Timestamp: Sendable, Hashable, CustomStringConvertible {
    /// Ticks of `timeBase`.
    public var ticks: Int64
    /// Seconds per tick.
    public var timeBase: Rational

    public init(ticks: Int64, timeBase: Rational) {
        precondition(timeBase.numerator > 0 && timeBase.denominator > 0, "time base must be positive")
        self.ticks = ticks
        self.timeBase = timeBase
    }

    /// The nearest timestamp to `seconds` in `timeBase`.
    public init(seconds: Double, timeBase: Rational) {
        let ticks = (seconds * Double(timeBase.denominator) / Double(timeBase.numerator)).rounded()
        self.init(ticks: Int64(ticks), timeBase: timeBase)
    }

    public var seconds: Double {
        Double(ticks) * Double(timeBase.numerator) / Double(timeBase.denominator)
    }

    /// The same instant in another time base, rounded to the nearest tick.
    public func rescaled(to other: Rational) -> Timestamp {
        if other == timeBase { return self }
        // ticks * tb.num * other.den / (tb.den * other.num), in 128-bit-safe Double for the sizes we see.
        let scaled = Double(ticks) * Double(timeBase.numerator) * Double(other.denominator)
            / (Double(timeBase.denominator) * Double(other.numerator))
        return Timestamp(ticks: Int64(scaled.rounded()), timeBase: other)
    }

    public var description: String { "\(seconds)s" }
}

/// One decoded video frame: pixels plus when to show them and for how long.
public struct Frame: Sendable {
    public var image: Image
    /// Presentation time, in the source stream's time base.
    public var timestamp: Timestamp
    /// How long the frame is shown, in ticks of `timestamp.timeBase`; 0 when unknown.
    public var duration: Int64
    /// Position in presentation order, counting from 0 (for display and logs, not for time).
    public var index: Int

    public init(image: Image, timestamp: Timestamp, duration: Int64 = 0, index: Int) {
        self.image = image
        self.timestamp = timestamp
        self.duration = duration
        self.index = index
    }

    /// Presentation time in seconds.
    public var seconds: Double { timestamp.seconds }
}
