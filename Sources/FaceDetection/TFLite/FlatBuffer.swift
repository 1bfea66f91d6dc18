/// Bounds-checked reading of a FlatBuffer (https://flatbuffers.dev/internals): everything little-endian;
/// the file starts with a uoffset (u32) to the root table, optionally followed by a 4-byte identifier.
/// A table starts with an soffset (i32) back to its vtable; the vtable holds u16 sizes (its own, the table's)
/// then one u16 offset per field, 0 for a field left at its default. Offsets to tables, vectors and strings
/// are u32s relative to where they are stored; a vector is a u32 count followed by its elements.
/// Every read checks its range, so a truncated or corrupt file throws instead of trapping.
struct FlatBuffer {
    let bytes: [UInt8]

    func require(_ range: Range<Int>, _ what: @autoclosure () -> String) throws(TFLiteError) {
        guard range.lowerBound >= 0, range.upperBound <= bytes.count else {
            throw .truncated(reason: "\(what()) at bytes \(range.lowerBound)..<\(range.upperBound) lies past the end "
                             + "of the \(bytes.count)-byte file")
        }
    }

    func uint8(at offset: Int) throws(TFLiteError) -> UInt8 {
        try require(offset..<(offset + 1), "a byte field")
        return bytes[offset]
    }

    func uint16(at offset: Int) throws(TFLiteError) -> UInt16 {
        try require(offset..<(offset + 2), "a 16-bit field")
        return UInt16(bytes[offset]) | UInt16(bytes[offset + 1]) << 8
    }

    func uint32(at offset: Int) throws(TFLiteError) -> UInt32 {
        try require(offset..<(offset + 4), "a 32-bit field")
        return UInt32(bytes[offset]) | UInt32(bytes[offset + 1]) << 8
            | UInt32(bytes[offset + 2]) << 16 | UInt32(bytes[offset + 3]) << 24
    }

    func uint64(at offset: Int) throws(TFLiteError) -> UInt64 {
        UInt64(try uint32(at: offset)) | UInt64(try uint32(at: offset + 4)) << 32
    }

    /// The table a uoffset stored at `offset` points to.
    func table(referencedAt offset: Int) throws(TFLiteError) -> FlatTable {
        let position = offset + Int(try uint32(at: offset))
        let vtable = position - Int(Int32(bitPattern: try uint32(at: position)))
        let vtableSize = Int(try uint16(at: vtable))
        guard vtableSize >= 4, vtableSize % 2 == 0 else {
            throw .malformed("table at byte \(position) has a vtable of \(vtableSize) bytes")
        }
        try require(vtable..<(vtable + vtableSize), "a vtable")
        return FlatTable(buffer: self, position: position, vtable: vtable, vtableSize: vtableSize)
    }

    /// (first element, count) of the vector a uoffset stored at `offset` points to.
    func vector(referencedAt offset: Int, elementSize: Int) throws(TFLiteError) -> (start: Int, count: Int) {
        let position = offset + Int(try uint32(at: offset))
        let count = Int(try uint32(at: position))
        try require((position + 4)..<(position + 4 + count * elementSize), "a vector of \(count) elements")
        return (position + 4, count)
    }
}

/// One table of a FlatBuffer; fields are numbered from 0 in schema order (a union takes two: type, value).
struct FlatTable {
    let buffer: FlatBuffer
    let position: Int
    let vtable: Int
    let vtableSize: Int

    /// Absolute byte position of field `field`, or nil when the field is absent (left at its default).
    func fieldPosition(_ field: Int) throws(TFLiteError) -> Int? {
        let entry = 4 + 2 * field
        guard entry + 2 <= vtableSize else { return nil }
        let offset = Int(try buffer.uint16(at: vtable + entry))
        return offset == 0 ? nil : position + offset
    }

    func int32(_ field: Int, default value: Int32 = 0) throws(TFLiteError) -> Int32 {
        guard let at = try fieldPosition(field) else { return value }
        return Int32(bitPattern: try buffer.uint32(at: at))
    }

    func uint32(_ field: Int, default value: UInt32 = 0) throws(TFLiteError) -> UInt32 {
        guard let at = try fieldPosition(field) else { return value }
        return try buffer.uint32(at: at)
    }

    func uint64(_ field: Int, default value: UInt64 = 0) throws(TFLiteError) -> UInt64 {
        guard let at = try fieldPosition(field) else { return value }
        return try buffer.uint64(at: at)
    }

    func int8(_ field: Int, default value: Int8 = 0) throws(TFLiteError) -> Int8 {
        guard let at = try fieldPosition(field) else { return value }
        return Int8(bitPattern: try buffer.uint8(at: at))
    }

    func uint8(_ field: Int, default value: UInt8 = 0) throws(TFLiteError) -> UInt8 {
        guard let at = try fieldPosition(field) else { return value }
        return try buffer.uint8(at: at)
    }

    func bool(_ field: Int) throws(TFLiteError) -> Bool { try uint8(field) != 0 }

    func table(_ field: Int) throws(TFLiteError) -> FlatTable? {
        guard let at = try fieldPosition(field) else { return nil }
        return try buffer.table(referencedAt: at)
    }

    func tables(_ field: Int) throws(TFLiteError) -> [FlatTable] {
        guard let at = try fieldPosition(field) else { return [] }
        let (start, count) = try buffer.vector(referencedAt: at, elementSize: 4)
        var result: [FlatTable] = []
        result.reserveCapacity(count)
        for index in 0..<count { result.append(try buffer.table(referencedAt: start + 4 * index)) }
        return result
    }

    func int32s(_ field: Int) throws(TFLiteError) -> [Int32] {
        guard let at = try fieldPosition(field) else { return [] }
        let (start, count) = try buffer.vector(referencedAt: at, elementSize: 4)
        var result: [Int32] = []
        result.reserveCapacity(count)
        for index in 0..<count { result.append(Int32(bitPattern: try buffer.uint32(at: start + 4 * index))) }
        return result
    }

    func int64s(_ field: Int) throws(TFLiteError) -> [Int64] {
        guard let at = try fieldPosition(field) else { return [] }
        let (start, count) = try buffer.vector(referencedAt: at, elementSize: 8)
        return try (0..<count).map { (index: Int) throws(TFLiteError) -> Int64 in
            Int64(bitPattern: try buffer.uint64(at: start + 8 * index))
        }
    }

    func floats(_ field: Int) throws(TFLiteError) -> [Float] {
        try int32s(field).map { Float(bitPattern: UInt32(bitPattern: $0)) }
    }

    /// Byte range of a [ubyte] vector field (nil when absent).
    func byteRange(_ field: Int) throws(TFLiteError) -> Range<Int>? {
        guard let at = try fieldPosition(field) else { return nil }
        let (start, count) = try buffer.vector(referencedAt: at, elementSize: 1)
        return start..<(start + count)
    }

    func string(_ field: Int) throws(TFLiteError) -> String? {
        guard let range = try byteRange(field) else { return nil }
        return String(decoding: buffer.bytes[range], as: UTF8.self)
    }
}
