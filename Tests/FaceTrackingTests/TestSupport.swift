import VisionCore

/// A square face box around a centre.
func faceBox(x: Double, y: Double, size: Double = 80) -> Box {
    Box(x: Float(x - size / 2), y: Float(y - size / 2), width: Float(size), height: Float(size))
}

func face(x: Double, y: Double, size: Double = 80, score: Float = 0.9) -> Detection {
    Detection(box: faceBox(x: x, y: y, size: size), score: score)
}

/// Frame times of a stream at `fps` from `start` up to (not including) `end` seconds.
func frameTimes(fps: Double, from start: Double = 0, to end: Double) -> [Double] {
    (0..<Int(((end - start) * fps).rounded(.up))).map { start + Double($0) / fps }
}

/// Frame times of a variable-rate stream from 0 past `end` seconds: intervals anywhere between 1/60 and
/// 1/15 s, as from a webcam under changing light.
func variableFrameTimes(seed: UInt64, to end: Double) -> [Double] {
    var generator = SplitMix64(state: seed)
    var times = [0.0]
    while times.last! < end { times.append(times.last! + Double.random(in: 1.0 / 60...1.0 / 15, using: &generator)) }
    return times
}

/// Deterministic random numbers for reproducible tests (SplitMix64).
struct SplitMix64: RandomNumberGenerator {
    var state: UInt64
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}
