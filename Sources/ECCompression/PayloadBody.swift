import ECTensor

/// The uncompressed payload body: the entry list, serialised canonically (one byte string per
/// set of entries), all integers little-endian.
///
/// ```
/// u32 entryCount
/// entryCount × {
///     u16 nameByteCount (≥ 1)   name: UTF-8 bytes, names strictly increasing bytewise
///     u8  type                  1 = mask, 2 = float32
///     u8  rank                  u64 × rank: the shape
///     data                      mask: ⌈n/8⌉ bytes, LSB-first, unused high bits zero
///                               float32: 4n bytes, IEEE-754 bit patterns
/// }                             (n = product of the shape; nothing follows the last entry)
/// ```
enum PayloadBody {
    /// Entry type tags (wire values).
    static let maskType: UInt8 = 1
    static let floatType: UInt8 = 2

    /// Serialises `entries`, which must already be in canonical order with unique names.
    static func encode(_ entries: [PayloadEntry]) throws -> [UInt8] {
        guard entries.count <= Int(UInt32.max) else {
            throw PayloadError.invalidEntry(name: entries[0].name, reason: "more than \(UInt32.max) entries")
        }
        var writer = ByteWriter(reservingCapacity: 4 + entries.reduce(0) { $0 + estimatedSize($1) })
        writer.append(UInt32(entries.count))
        for entry in entries {
            let name = Array(entry.name.utf8)
            guard !name.isEmpty else { throw PayloadError.invalidEntry(name: entry.name, reason: "empty name") }
            guard name.count <= Int(UInt16.max) else {
                throw PayloadError.invalidEntry(
                    name: String(entry.name.prefix(40)) + "…",
                    reason: "name is \(name.count) UTF-8 bytes, at most \(UInt16.max) allowed")
            }
            let shape = entry.value.shape
            guard shape.count <= Int(UInt8.max) else {
                throw PayloadError.invalidEntry(name: entry.name,
                                                reason: "rank \(shape.count), at most \(UInt8.max) allowed")
            }
            writer.append(UInt16(name.count))
            writer.append(contentsOf: name)
            switch entry.value {
            case .mask: writer.append(maskType)
            case .floats: writer.append(floatType)
            }
            writer.append(UInt8(shape.count))
            for dimension in shape { writer.append(UInt64(dimension)) }
            switch entry.value {
            case .mask(let mask): writer.append(contentsOf: mask.packedBytes)
            case .floats(let tensor): tensor.withUnsafeBufferPointer { writer.appendFloatBits($0) }
            }
        }
        return writer.bytes
    }

    /// Parses a body, verifying every name, shape and length; the inverse of `encode`.
    static func decode(_ bytes: [UInt8]) throws -> [PayloadEntry] {
        var reader = ByteReader(bytes)
        let declaredCount = try reader.readUInt32("the entry count")
        // Every entry takes at least 5 bytes (name length, a 1-byte name, type, rank).
        guard Int(declaredCount) <= reader.remaining / 5 else {
            throw PayloadError.malformedBody(offset: 0, reason: "entry count \(declaredCount) cannot fit in the "
                                             + "\(reader.remaining) bytes that follow (at least 5 bytes per entry)")
        }
        var entries = [PayloadEntry]()
        var previousName: ArraySlice<UInt8>?
        for index in 0..<Int(declaredCount) {
            let entryOffset = reader.offset
            let nameCount = Int(try reader.readUInt16("the name length of entry \(index)"))
            guard nameCount > 0 else {
                throw PayloadError.malformedBody(offset: entryOffset, reason: "entry \(index) has an empty name")
            }
            let nameBytes = try reader.readBytes(nameCount, "the name of entry \(index)")
            guard let name = String(validating: nameBytes, as: UTF8.self) else {
                throw PayloadError.malformedBody(offset: entryOffset, reason: "the name of entry \(index) is not UTF-8")
            }
            if let previous = previousName, !previous.lexicographicallyPrecedes(nameBytes) {
                let reason = previous.elementsEqual(nameBytes)
                    ? "duplicate entry name '\(name)'; names must be unique"
                    : "entry '\(name)' follows '\(String(decoding: previous, as: UTF8.self))'; "
                        + "names must be strictly increasing (canonical order)"
                throw PayloadError.malformedBody(offset: entryOffset, reason: reason)
            }
            previousName = nameBytes
            let value = try decodeValue(&reader, name: name)
            entries.append(PayloadEntry(name: name, value: value))
        }
        guard reader.remaining == 0 else {
            throw PayloadError.malformedBody(offset: reader.offset,
                                             reason: "\(reader.remaining) bytes follow the last entry, expected none")
        }
        // Canonically equivalent names with different bytes would be one name to Swift.
        guard Set(entries.map(\.name)).count == entries.count else {
            throw PayloadError.malformedBody(offset: 0, reason: "two entry names are equal as Unicode strings")
        }
        return entries
    }

    /// The type, shape and data of entry `name`.
    private static func decodeValue(_ reader: inout ByteReader, name: String) throws -> PayloadValue {
        let typeOffset = reader.offset
        let type = try reader.readUInt8("the type of entry '\(name)'")
        guard type == maskType || type == floatType else {
            throw PayloadError.malformedBody(
                offset: typeOffset,
                reason: "entry '\(name)' has type \(type), expected \(maskType) (mask) or \(floatType) (float32)")
        }
        let rank = Int(try reader.readUInt8("the rank of entry '\(name)'"))
        let shapeOffset = reader.offset
        try reader.require(8 * rank, "the shape of entry '\(name)' (rank \(rank))")
        var shape = [Int]()
        var count = 1
        for _ in 0..<rank {
            let dimension = try reader.readUInt64("a dimension of entry '\(name)'")
            let product = count.multipliedReportingOverflow(by: Int(truncatingIfNeeded: dimension))
            guard dimension <= UInt64(Int.max), !product.overflow else {
                throw PayloadError.malformedBody(
                    offset: shapeOffset,
                    reason: "entry '\(name)': dimension \(dimension) after \(shape) makes the element count "
                        + "overflow (at most \(Int.max))")
            }
            shape.append(Int(dimension))
            count = product.partialValue
        }
        let dataOffset = reader.offset
        if type == maskType {
            let packed = try reader.readBytes(Mask.packedByteCount(count), "the mask bits of entry '\(name)' \(shape)")
            if count % 8 != 0, let last = packed.last, last >> UInt8(count % 8) != 0 {
                throw PayloadError.malformedBody(
                    offset: dataOffset + packed.count - 1,
                    reason: "entry '\(name)' \(shape): the unused high bits of the last mask byte are "
                        + "\(last >> UInt8(count % 8)), expected 0")
            }
            return .mask(Mask(shape: shape, packedBytes: packed))
        }
        guard count <= reader.remaining / 4 else {
            throw PayloadError.malformedBody(offset: dataOffset, reason: "the float32 data of entry '\(name)' \(shape) "
                                             + "needs \(count) × 4 bytes, \(reader.remaining) remain")
        }
        let data = try reader.readBytes(4 * count, "the float32 data of entry '\(name)'")
        var tensor = Tensor(uninitializedShape: shape)
        data.withUnsafeBytes { raw in
            tensor.withUnsafeMutableBufferPointer { out in
                for i in 0..<count {
                    out[i] = Float(bitPattern: UInt32(littleEndian: raw.loadUnaligned(fromByteOffset: 4 * i,
                                                                                        as: UInt32.self)))
                }
            }
        }
        return .floats(tensor)
    }

    /// A reservation hint for one entry's encoded size.
    private static func estimatedSize(_ entry: PayloadEntry) -> Int {
        let data: Int
        switch entry.value {
        case .mask(let mask): data = Mask.packedByteCount(mask.count)
        case .floats(let tensor): data = 4 * tensor.count
        }
        return 4 + entry.name.utf8.count + 8 * entry.value.shape.count + data
    }
}
