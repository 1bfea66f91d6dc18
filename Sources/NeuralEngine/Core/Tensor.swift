/// A dense float32 tensor in row-major order (NCHW for images), with copy-on-write storage.
public struct Tensor: Sendable, Equatable {
    public private(set) var shape: [Int]
    public var storage: [Float]

    public init(shape: [Int], storage: [Float]) {
        precondition(shape.allSatisfy { $0 >= 0 }, "negative dimension in \(shape)")
        precondition(shape.reduce(1, *) == storage.count,
                     "storage of \(storage.count) elements does not fit shape \(shape)")
        self.shape = shape
        self.storage = storage
    }

    public init(zeros shape: [Int]) {
        self.init(shape: shape, storage: [Float](repeating: 0, count: shape.reduce(1, *)))
    }

    /// A tensor for a kernel that writes every value: storage without the zero fill first (on P-Net's large
    /// activations, filling them was 5% of MTCNN's time).
    public init(uninitialized shape: [Int], writingEveryValue write: (UnsafeMutableBufferPointer<Float>) -> Void) {
        let count = shape.reduce(1, *)
        self.init(shape: shape, storage: [Float](unsafeUninitializedCapacity: count) { buffer, initialized in
            write(buffer)
            initialized = count
        })
    }

    public init(repeating value: Float, shape: [Int]) {
        self.init(shape: shape, storage: [Float](repeating: value, count: shape.reduce(1, *)))
    }

    /// Samples from N(0, standardDeviation^2).
    public init(normal shape: [Int], standardDeviation: Float, generator: inout RandomGenerator) {
        var values = [Float](repeating: 0, count: shape.reduce(1, *))
        for index in values.indices { values[index] = generator.nextNormal() * standardDeviation }
        self.init(shape: shape, storage: values)
    }

    /// Samples from U(-bound, bound).
    public init(uniform shape: [Int], bound: Float, generator: inout RandomGenerator) {
        var values = [Float](repeating: 0, count: shape.reduce(1, *))
        for index in values.indices { values[index] = (generator.nextUnitFloat() * 2 - 1) * bound }
        self.init(shape: shape, storage: values)
    }

    public var count: Int { storage.count }
    public var rank: Int { shape.count }

    /// Same elements, new shape (one dimension may be -1 and is inferred).
    public func reshaped(_ newShape: [Int]) -> Tensor {
        var resolved = newShape
        if let inferred = newShape.firstIndex(of: -1) {
            let known = newShape.filter { $0 != -1 }.reduce(1, *)
            precondition(known > 0 && count % known == 0, "cannot reshape \(shape) to \(newShape)")
            resolved[inferred] = count / known
        }
        return Tensor(shape: resolved, storage: storage)
    }

    /// Rows `range` of the leading (batch) dimension.
    public func slice(batch range: Range<Int>) -> Tensor {
        let stride = count / max(shape[0], 1)
        var newShape = shape
        newShape[0] = range.count
        return Tensor(shape: newShape, storage: Array(storage[(range.lowerBound * stride)..<(range.upperBound * stride)]))
    }

    public subscript(flat index: Int) -> Float {
        get { storage[index] }
        set { storage[index] = newValue }
    }

    /// Element-wise sum; shapes must match.
    public static func + (lhs: Tensor, rhs: Tensor) -> Tensor {
        precondition(lhs.shape == rhs.shape, "shape mismatch \(lhs.shape) vs \(rhs.shape)")
        var result = lhs
        result.add(rhs)
        return result
    }

    /// In-place element-wise accumulation: self += other.
    public mutating func add(_ other: Tensor) {
        precondition(shape == other.shape, "shape mismatch \(shape) vs \(other.shape)")
        storage.withUnsafeMutableBufferPointer { target in
            other.storage.withUnsafeBufferPointer { source in
                for index in 0..<target.count { target[index] += source[index] }
            }
        }
    }

    public mutating func fill(_ value: Float) {
        storage.withUnsafeMutableBufferPointer { target in
            for index in 0..<target.count { target[index] = value }
        }
    }

    /// Largest absolute element-wise difference, for tests and checks.
    public func maxAbsoluteDifference(_ other: Tensor) -> Float {
        precondition(shape == other.shape, "shape mismatch \(shape) vs \(other.shape)")
        var result: Float = 0
        for index in storage.indices { result = max(result, abs(storage[index] - other.storage[index])) }
        return result
    }
}
