import VisionCore

/// A constant-velocity Kalman filter on a box: state (cx, cy, w, h) and their velocities in pixels per
/// second, measurement (cx, cy, w, h).
///
/// This is the 8-state filter of SORT/DeepSORT with (cx, cy, w, h) in place of (cx, cy, area, aspect).
/// Its transition, process noise, measurement noise and initial covariance are all block-diagonal per
/// coordinate, so the 8x8 filter splits exactly into four independent (position, velocity) filters; we
/// run those four 2x2 filters instead of 8x8 matrix algebra.
///
/// Time is continuous: `predict(elapsed:)` takes the seconds since the last step, so the filter behaves the
/// same at any (or a variable) frame rate. Process noise is the continuous white-noise-acceleration model,
/// Q = q [dt^3/3, dt^2/2; dt^2/2, dt]. All noise scales with the box size s = (w + h) / 2, so a small face
/// far away and a large one close by are filtered alike (DeepSORT scales by height the same way).
public struct KalmanBoxFilter: Sendable {
    /// Noise levels, each a multiple of the box size s.
    public struct Noise: Sendable, Hashable {
        /// Standard deviation of a detector's box coordinates: 0.05 s (DeepSORT's 1/20 of the height).
        public var measurement: Double = 0.05
        /// Random acceleration of the centre: velocity drifts by about 1.5 s per second per sqrt(second).
        public var centerAcceleration: Double = 1.5
        /// Random acceleration of width and height; faces change scale slower than they move.
        public var sizeAcceleration: Double = 0.5
        /// Standard deviation of the unknown velocity of a new track: 2 s per second.
        public var initialVelocity: Double = 2.0

        public init() {}
    }

    /// One coordinate: position, velocity and their 2x2 covariance.
    struct Axis: Sendable {
        var position: Double
        var velocity = 0.0
        var positionVariance: Double
        var covariance = 0.0
        var velocityVariance: Double

        mutating func predict(elapsed dt: Double, spectralDensity q: Double) {
            position += velocity * dt
            positionVariance += 2 * dt * covariance + dt * dt * velocityVariance + q * dt * dt * dt / 3
            covariance += dt * velocityVariance + q * dt * dt / 2
            velocityVariance += q * dt
        }

        mutating func update(measurement z: Double, variance r: Double) {
            let innovationVariance = positionVariance + r
            let positionGain = positionVariance / innovationVariance
            let velocityGain = covariance / innovationVariance
            let innovation = z - position
            position += positionGain * innovation
            velocity += velocityGain * innovation
            velocityVariance -= velocityGain * covariance
            covariance *= 1 - positionGain
            positionVariance *= 1 - positionGain
        }
    }

    public let noise: Noise
    var axes: [Axis]  // cx, cy, w, h

    /// A filter at rest on `box`, with the velocity unknown.
    public init(box: Box, noise: Noise = Noise()) {
        self.noise = noise
        let size = Double(box.width + box.height) / 2
        let positionVariance = (noise.measurement * size) * (noise.measurement * size)
        let velocityVariance = (noise.initialVelocity * size) * (noise.initialVelocity * size)
        axes = [box.center.x, box.center.y, box.width, box.height].map {
            Axis(position: Double($0), positionVariance: positionVariance, velocityVariance: velocityVariance)
        }
    }

    var size: Double { max((axes[2].position + axes[3].position) / 2, 1) }

    /// Advances the state by `dt` seconds (0 or negative: no change).
    public mutating func predict(elapsed dt: Double) {
        guard dt > 0 else { return }
        let center = (noise.centerAcceleration * size) * (noise.centerAcceleration * size)
        let scale = (noise.sizeAcceleration * size) * (noise.sizeAcceleration * size)
        for index in axes.indices {
            axes[index].predict(elapsed: dt, spectralDensity: index < 2 ? center : scale)
        }
        // A shrinking box stops at one pixel instead of turning inside out (SORT zeroes the area rate too).
        for index in 2..<4 where axes[index].position < 1 {
            axes[index].position = 1
            axes[index].velocity = 0
        }
    }

    /// Corrects the state with a measured box.
    public mutating func update(with box: Box) {
        let variance = (noise.measurement * size) * (noise.measurement * size)
        let measurement = [box.center.x, box.center.y, box.width, box.height]
        for index in axes.indices {
            axes[index].update(measurement: Double(measurement[index]), variance: variance)
        }
    }

    /// The filtered box.
    public var box: Box {
        let (cx, cy) = (axes[0].position, axes[1].position)
        let (width, height) = (max(axes[2].position, 1), max(axes[3].position, 1))
        return Box(x: Float(cx - width / 2), y: Float(cy - height / 2), width: Float(width), height: Float(height))
    }

    /// Velocity of the centre and of the size, in pixels per second.
    public var velocity: (x: Double, y: Double, width: Double, height: Double) {
        (axes[0].velocity, axes[1].velocity, axes[2].velocity, axes[3].velocity)
    }
}
