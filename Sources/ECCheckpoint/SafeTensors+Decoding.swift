import Foundation

extension SafeTensors {
    /// The largest header the reader accepts (the reference implementation's limit, 100 MB).
    public static let maxHeaderBytes = 100_000_000

    /// Reads and validates a safetensors file.
    ///
    /// - Throws: `CheckpointError.fileSystem` if the file cannot be read, otherwise the
    ///   validation errors of `init(decoding:file:)`, naming `url.path`.
    public static func read(from url: URL) throws -> SafeTensors {
        try SafeTensors(decoding: try FileSystem.readFile(url), file: url.path)
    }

    /// Decodes and validates the bytes of a safetensors file. Never traps on malformed input.
    ///
    /// Checks, each failure a `CheckpointError` naming `file` and the tensor: the length prefix
    /// (`truncatedFile`, `headerTooLarge`, `headerExceedsFile`); the header is a UTF-8 JSON
    /// object (`invalidHeader`) with no name twice (`duplicateTensor`); `__metadata__` maps
    /// strings to strings (`invalidMetadata`); each tensor has a known dtype (`unknownDType`),
    /// a shape of non-negative integers and two integer offsets (`invalidTensorHeader`) whose
    /// span is shape × dtype bytes (`dataSizeMismatch`) inside the buffer
    /// (`dataOffsetsOutOfRange`) and disjoint from every other tensor's (`overlappingData`).
    /// Gaps between tensors are tolerated (the reference reader rejects them).
    ///
    /// - Parameter file: names the source in errors.
    public init(decoding data: Data, file: String = "<memory>") throws {
        let prefixBytes = 8
        guard data.count >= prefixBytes else {
            throw CheckpointError.truncatedFile(file: file, bytes: data.count, neededBytes: prefixBytes)
        }
        var headerLength: UInt64 = 0
        for (shift, byte) in data.prefix(prefixBytes).enumerated() { headerLength |= UInt64(byte) << (8 * shift) }
        guard headerLength <= UInt64(Self.maxHeaderBytes) else {
            throw CheckpointError.headerTooLarge(file: file, headerBytes: headerLength, limitBytes: Self.maxHeaderBytes)
        }
        guard headerLength <= UInt64(data.count - prefixBytes) else {
            throw CheckpointError.headerExceedsFile(file: file, headerBytes: headerLength, fileBytes: data.count)
        }
        let headerStart = data.startIndex + prefixBytes
        let bufferStart = headerStart + Int(headerLength)
        let bufferBytes = data.endIndex - bufferStart

        let json: JSONValue
        do {
            json = try JSONValue.parse(Array(data[headerStart..<bufferStart]))
        } catch let error as JSONParseError {
            throw CheckpointError.invalidHeader(file: file, reason: "\(error) of the header")
        }
        guard case let .object(members) = json else {
            throw CheckpointError.invalidHeader(file: file, reason: "expected a JSON object, found \(json.kindName)")
        }

        var seen = Set<String>()
        var metadata: [String: String] = [:]
        var layouts: [TensorLayout] = []
        for (name, value) in members {
            guard seen.insert(name).inserted else {
                if name == Self.metadataKey {
                    throw CheckpointError.invalidMetadata(file: file, key: nil, reason: "appears more than once")
                }
                throw CheckpointError.duplicateTensor(file: file, tensor: name)
            }
            if name == Self.metadataKey {
                metadata = try Self.decodeMetadata(value, file: file)
            } else {
                layouts.append(try TensorLayout(name: name, value: value, file: file, bufferBytes: bufferBytes))
            }
        }
        try TensorLayout.checkDisjoint(layouts, file: file)

        var entries: [String: SafeTensorsEntry] = [:]
        for layout in layouts {
            let bytes = data.subdata(in: bufferStart + layout.begin..<bufferStart + layout.end)
            entries[layout.name] = SafeTensorsEntry(dtype: layout.dtype, shape: layout.shape, bytes: bytes)
        }
        self.init(entries: entries, metadata: metadata)
    }

    private static func decodeMetadata(_ value: JSONValue, file: String) throws -> [String: String] {
        guard case let .object(pairs) = value else {
            throw CheckpointError.invalidMetadata(file: file, key: nil,
                                                  reason: "expected an object of strings, found \(value.kindName)")
        }
        var metadata: [String: String] = [:]
        for (key, value) in pairs {
            guard case let .string(text) = value else {
                throw CheckpointError.invalidMetadata(file: file, key: key,
                                                      reason: "expected a string value, found \(value.kindName)")
            }
            guard metadata.updateValue(text, forKey: key) == nil else {
                throw CheckpointError.invalidMetadata(file: file, key: key, reason: "appears more than once")
            }
        }
        return metadata
    }
}

/// One tensor's validated header entry: where its bytes are and what they hold.
private struct TensorLayout {
    let name: String
    let dtype: SafeTensorsDType
    let shape: [Int]
    let begin: Int
    let end: Int

    init(name: String, value: JSONValue, file: String, bufferBytes: Int) throws {
        func invalid(_ reason: String) -> CheckpointError {
            .invalidTensorHeader(file: file, tensor: name, reason: reason)
        }
        guard case let .object(fields) = value else { throw invalid("expected an object, found \(value.kindName)") }
        func field(_ key: String) throws -> JSONValue {
            let matches = fields.filter { $0.key == key }
            guard matches.count == 1 else {
                throw invalid(matches.isEmpty ? "missing \"\(key)\"" : "\"\(key)\" appears more than once")
            }
            return matches[0].value
        }
        func integers(_ key: String) throws -> [Int] {
            let value = try field(key)
            guard case let .array(elements) = value else {
                throw invalid("\"\(key)\" must be an array of non-negative integers, found \(value.kindName)")
            }
            return try elements.map {
                guard let n = $0.nonNegativeInt else {
                    throw invalid("\"\(key)\" must hold non-negative integers, found \($0.jsonText)")
                }
                return n
            }
        }

        let dtypeValue = try field("dtype")
        guard case let .string(dtypeName) = dtypeValue else {
            throw invalid("\"dtype\" must be a string, found \(dtypeValue.kindName)")
        }
        guard let dtype = SafeTensorsDType(rawValue: dtypeName) else {
            throw CheckpointError.unknownDType(file: file, tensor: name, dtype: dtypeName)
        }
        let shape = try integers("shape")
        let offsets = try integers("data_offsets")
        guard offsets.count == 2 else { throw invalid("\"data_offsets\" must be [begin, end], found \(offsets)") }

        var needed = dtype.byteSize
        for dimension in shape {
            let (product, overflow) = needed.multipliedReportingOverflow(by: dimension)
            guard !overflow else { throw invalid("shape \(shapeText(shape)) × \(dtype.rawValue) overflows") }
            needed = product
        }
        guard offsets[0] <= offsets[1], offsets[1] - offsets[0] == needed else {
            throw CheckpointError.dataSizeMismatch(file: file, tensor: name, offsets: offsets, shape: shape,
                                                   dtype: dtype, neededBytes: needed)
        }
        guard offsets[1] <= bufferBytes else {
            throw CheckpointError.dataOffsetsOutOfRange(file: file, tensor: name, offsets: offsets,
                                                        bufferBytes: bufferBytes)
        }
        self.name = name
        self.dtype = dtype
        self.shape = shape
        begin = offsets[0]
        end = offsets[1]
    }

    /// Throws `overlappingData` for the first pair of non-empty byte ranges that intersect.
    static func checkDisjoint(_ layouts: [TensorLayout], file: String) throws {
        let ordered = layouts.filter { $0.end > $0.begin }.sorted { ($0.begin, $0.name) < ($1.begin, $1.name) }
        var furthest: TensorLayout?
        for layout in ordered {
            if let previous = furthest, layout.begin < previous.end {
                throw CheckpointError.overlappingData(file: file, tensor: layout.name,
                                                      offsets: [layout.begin, layout.end], other: previous.name,
                                                      otherOffsets: [previous.begin, previous.end])
            }
            if layout.end > (furthest?.end ?? 0) { furthest = layout }
        }
    }
}
