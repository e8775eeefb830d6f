import Foundation

/// An array read from a NumPy `.npy` file (or a member of a `.npz` archive): its element type,
/// shape and element bytes, validated.
///
/// The bytes are kept as the file stores them: little- or big-endian, C or Fortran order. The
/// accessors decode them; `strides` says where element `[i0, i1, …]` lies.
public struct NPYArray: Equatable {
    /// The element types the reader accepts (`descr` without the byte-order character).
    public enum DType: String, CaseIterable, Sendable {
        case bool = "b1"
        case int8 = "i1", uint8 = "u1", int16 = "i2", uint16 = "u2"
        case int32 = "i4", uint32 = "u4", int64 = "i8", uint64 = "u8"
        case float32 = "f4", float64 = "f8"

        /// Bytes per element.
        public var size: Int { Int(rawValue.dropFirst())! }
        public var isFloat: Bool { self == .float32 || self == .float64 }
        /// NumPy's name (`uint8`, `float32`, …).
        public var name: String { self == .bool ? "bool" : "\(self)" }
    }

    /// The element type.
    public let dtype: DType
    /// The shape from the header, outermost axis first.
    public let shape: [Int]
    /// Whether the elements are stored column-major (`fortran_order: True`).
    public let fortranOrder: Bool
    /// Whether multi-byte elements are big-endian (`descr` `>…`).
    public let bigEndian: Bool
    /// The element bytes, exactly `count · dtype.size` of them, in storage order.
    let data: ArraySlice<UInt8>

    /// The number of elements (the product of `shape`).
    public var count: Int { shape.reduce(1, *) }

    /// The distance in elements between neighbours along each axis of `shape` in storage order.
    public var strides: [Int] {
        var strides = [Int](repeating: 1, count: shape.count)
        if fortranOrder {
            for axis in shape.indices.dropFirst() { strides[axis] = strides[axis - 1] * shape[axis - 1] }
        } else {
            for axis in shape.indices.reversed().dropFirst() { strides[axis] = strides[axis + 1] * shape[axis + 1] }
        }
        return strides
    }

    /// The element bytes of a `uint8` array, in storage order.
    ///
    /// - Precondition: `dtype == .uint8`.
    public var bytes: ArraySlice<UInt8> {
        precondition(dtype == .uint8, "bytes of a \(dtype.name) array")
        return data
    }

    /// The elements in storage order, converted to `Double` (exact for every type but 64-bit
    /// integers beyond 2^53, which round).
    public func doubles() -> [Double] {
        var out = [Double](repeating: 0, count: count)
        for k in 0..<count { out[k] = double(at: k) }
        return out
    }

    /// The elements of a `float32` array in storage order, as stored (no rounding).
    ///
    /// - Precondition: `dtype == .float32`.
    public func floats() -> [Float] {
        precondition(dtype == .float32, "floats of a \(dtype.name) array")
        var out = [Float](repeating: 0, count: count)
        for k in 0..<count { out[k] = Float(bitPattern: UInt32(truncatingIfNeeded: word(at: k))) }
        return out
    }

    /// Element `k` in storage order as an integer, or nil for a float that is not one (or does
    /// not fit `Int`), or a `uint64` above `Int.max`.
    public func integer(at k: Int) -> Int? {
        let w = word(at: k)
        switch dtype {
        case .bool, .uint8, .uint16, .uint32: return Int(w)
        case .int8: return Int(Int8(truncatingIfNeeded: w))
        case .int16: return Int(Int16(truncatingIfNeeded: w))
        case .int32: return Int(Int32(truncatingIfNeeded: w))
        case .int64: return Int(Int64(bitPattern: w))
        case .uint64: return Int(exactly: w)
        case .float32, .float64:
            let d = double(at: k)
            return d.isFinite && d == d.rounded() ? Int(exactly: d) : nil
        }
    }

    /// Element `k` as text, exactly (`18446744073709551615` for the largest uint64, `2.5`).
    public func text(at k: Int) -> String {
        switch dtype {
        case .uint64: return "\(word(at: k))"
        case .float32, .float64: return "\(double(at: k))"
        default: return "\(integer(at: k)!)"
        }
    }

    /// Element `k` in storage order as a `Double`.
    public func double(at k: Int) -> Double {
        let w = word(at: k)
        switch dtype {
        case .float32: return Double(Float(bitPattern: UInt32(truncatingIfNeeded: w)))
        case .float64: return Double(bitPattern: w)
        case .int64: return Double(Int64(bitPattern: w))
        case .uint64: return Double(w)
        default: return Double(integer(at: k)!)
        }
    }

    /// The raw bits of element `k`, in the machine's order (byte-swapped from big-endian files).
    private func word(at k: Int) -> UInt64 {
        let size = dtype.size
        let start = data.startIndex + k * size
        var w: UInt64 = 0
        if bigEndian {
            for i in 0..<size { w = w << 8 | UInt64(data[start + i]) }
        } else {
            for i in (0..<size).reversed() { w = w << 8 | UInt64(data[start + i]) }
        }
        return w
    }
}

/// Reads NumPy's `.npy` format, versions 1.0, 2.0 and 3.0, validating every byte.
///
/// Layout: the magic `\x93NUMPY`, a major and a minor version byte, the header length
/// (little-endian: 2 bytes in 1.0, 4 in 2.0 and 3.0), the header — a Python dict literal
/// `{'descr': '<f4', 'fortran_order': False, 'shape': (3, 28, 28), }` padded with spaces and
/// ended by a newline — then exactly `product(shape) · itemsize` data bytes.
///
/// Accepted `descr`s: `b1`, `i1`, `u1`, `i2`, `u2`, `i4`, `u4`, `i8`, `u8`, `f4`, `f8`, each with
/// byte order `<`, `>`, `|` or `=` (this machine's, little-endian). Fortran order and big-endian
/// data are supported (the accessors of `NPYArray` decode them). Object (pickled), string,
/// complex, half-precision, date and structured dtypes are not.
public enum NPYReader {
    /// The magic that starts every `.npy` file.
    static let magic: [UInt8] = [0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59]

    /// Reads and validates the `.npy` file at `path`.
    ///
    /// - Throws: `DataError.missingFile` or `.unreadableFile`, or any `parse` error.
    public static func read(path: String) throws -> NPYArray {
        try parse(IDXReader.readBytes(path: path)[...], path: path)
    }

    /// Parses the bytes of a `.npy` file; `path` names it in errors (for a member of an `.npz`
    /// archive, the archive and the member).
    ///
    /// - Throws: `DataError.badNPY` saying what is wrong: truncated, bad magic, an unsupported
    ///   version, a header that is not the expected dict, an unsupported dtype, a bad shape, or
    ///   a data size that does not match the shape.
    public static func parse(_ bytes: ArraySlice<UInt8>, path: String) throws -> NPYArray {
        func fail(_ problem: NPYProblem) -> DataError { .badNPY(path: path, problem: problem) }
        let b = bytes.startIndex
        guard bytes.count >= 8 else {
            if !magic.starts(with: bytes.prefix(6)) { throw fail(.badMagic(found: Array(bytes.prefix(8)))) }
            throw fail(.truncated(needed: 10, found: bytes.count, what: "the preamble"))
        }
        guard bytes[b..<(b + 6)].elementsEqual(magic) else { throw fail(.badMagic(found: Array(bytes.prefix(8)))) }
        let (major, minor) = (bytes[b + 6], bytes[b + 7])
        guard (1...3).contains(major), minor == 0 else { throw fail(.unsupportedVersion(major: major, minor: minor)) }
        let lengthBytes = major == 1 ? 2 : 4
        guard bytes.count >= 8 + lengthBytes else {
            throw fail(.truncated(needed: 8 + lengthBytes, found: bytes.count, what: "the preamble"))
        }
        var headerLength = 0
        for i in (0..<lengthBytes).reversed() { headerLength = headerLength << 8 | Int(bytes[b + 8 + i]) }
        let headerStart = 8 + lengthBytes
        guard bytes.count - headerStart >= headerLength else {
            throw fail(.truncated(needed: headerStart + headerLength, found: bytes.count, what: "the header"))
        }
        let header = bytes[(b + headerStart)..<(b + headerStart + headerLength)]
        let fields = try parseHeader(header, fail: fail)

        let shape = fields.shape
        // The product of the non-zero dimensions must fit too: strides are computed from it.
        var elements = 1, span = 1
        for dimension in shape {
            let (product, overflow) = elements.multipliedReportingOverflow(by: dimension)
            let (spanProduct, spanOverflow) = span.multipliedReportingOverflow(by: max(dimension, 1))
            guard !overflow, !spanOverflow else { throw fail(.badShape(shape: shape, reason: "its size overflows")) }
            elements = product
            span = spanProduct
        }
        let (dataBytes, overflow) = elements.multipliedReportingOverflow(by: fields.dtype.size)
        guard !overflow else { throw fail(.badShape(shape: shape, reason: "its size overflows")) }
        let found = bytes.count - headerStart - headerLength
        guard found == dataBytes else {
            throw fail(.dataSizeMismatch(shape: shape, dtype: fields.dtype.name, expectedBytes: dataBytes, foundBytes: found))
        }
        let dataStart = b + headerStart + headerLength
        return NPYArray(dtype: fields.dtype, shape: shape, fortranOrder: fields.fortranOrder, bigEndian: fields.bigEndian,
                        data: bytes[dataStart..<(dataStart + dataBytes)])
    }

    private struct HeaderFields {
        var dtype: NPYArray.DType
        var bigEndian: Bool
        var fortranOrder: Bool
        var shape: [Int]
    }

    /// The three fields of the header dict, each checked.
    private static func parseHeader(_ header: ArraySlice<UInt8>, fail: (NPYProblem) -> DataError) throws -> HeaderFields {
        var parser = PythonLiteralParser(header)
        let value: PythonLiteral
        do {
            value = try parser.parseValue()
            try parser.expectEnd()
        } catch let error as PythonLiteralParser.Failure {
            throw fail(.badHeader(reason: error.reason))
        }
        guard case let .dict(entries) = value else {
            throw fail(.badHeader(reason: "the header is \(value.kind), not a dict"))
        }
        var map: [String: PythonLiteral] = [:]
        for (key, entry) in entries {
            guard case let .string(name) = key else { throw fail(.badHeader(reason: "a key of the header dict is \(key.kind)")) }
            guard map.updateValue(entry, forKey: name) == nil else { throw fail(.badHeader(reason: "the key '\(name)' appears twice")) }
        }
        for key in ["descr", "fortran_order", "shape"] where map[key] == nil {
            throw fail(.badHeader(reason: "the header dict has no '\(key)'"))
        }
        if let extra = map.keys.sorted().first(where: { !["descr", "fortran_order", "shape"].contains($0) }) {
            throw fail(.badHeader(reason: "unexpected key '\(extra)' in the header dict"))
        }
        guard case let .string(descr) = map["descr"]! else {
            let kind = map["descr"]!.kind
            throw fail(.unsupportedDType(descr: kind, reason: kind == "a list" ? "structured dtypes are not supported" : "descr must be a string"))
        }
        guard case let .bool(fortranOrder) = map["fortran_order"]! else {
            throw fail(.badHeader(reason: "'fortran_order' is \(map["fortran_order"]!.kind), not True or False"))
        }
        guard case let .tuple(items) = map["shape"]! else {
            throw fail(.badHeader(reason: "'shape' is \(map["shape"]!.kind), not a tuple"))
        }
        var shape: [Int] = []
        for item in items {
            guard case let .int(n) = item else { throw fail(.badHeader(reason: "'shape' holds \(item.kind), not an integer")) }
            guard n >= 0 else { throw fail(.badShape(shape: shape + [n], reason: "a dimension is negative")) }
            shape.append(n)
        }
        let (dtype, bigEndian) = try parseDescr(descr, fail: fail)
        return HeaderFields(dtype: dtype, bigEndian: bigEndian, fortranOrder: fortranOrder, shape: shape)
    }

    /// `'<f4'` → (`.float32`, little-endian).
    private static func parseDescr(_ descr: String, fail: (NPYProblem) -> DataError) throws -> (NPYArray.DType, Bool) {
        var code = Substring(descr)
        var order: Character = "|"
        if let first = code.first, "<>|=".contains(first) {
            order = first
            code = code.dropFirst()
        }
        guard let dtype = NPYArray.DType(rawValue: String(code)) else {
            let reason: String
            switch code.first {
            case "O": reason = "object arrays hold pickled Python objects; save a numeric array"
            case "U", "S", "a": reason = "string arrays are not supported"
            case "f": reason = "only float32 (f4) and float64 (f8) floats are supported; convert with .astype(np.float32)"
            case "c": reason = "complex numbers are not supported"
            case "M", "m": reason = "dates and time deltas are not supported"
            case "V": reason = "void and structured dtypes are not supported"
            default: reason = "not a dtype this reader knows"
            }
            throw fail(.unsupportedDType(descr: "'\(descr)'", reason: reason))
        }
        return (dtype, order == ">" && dtype.size > 1)
    }
}

/// What is wrong with a `.npy` file (see `DataError.badNPY`).
public enum NPYProblem: Equatable, Sendable {
    /// The file ends before `what` (the preamble or the header) does.
    case truncated(needed: Int, found: Int, what: String)
    /// The file does not start with `\x93NUMPY`.
    case badMagic(found: [UInt8])
    /// A format version other than 1.0, 2.0 or 3.0.
    case unsupportedVersion(major: UInt8, minor: UInt8)
    /// The header is not the dict `{'descr': …, 'fortran_order': …, 'shape': (…)}`.
    case badHeader(reason: String)
    /// The `descr` names an element type the reader does not take.
    case unsupportedDType(descr: String, reason: String)
    /// The shape cannot be (a negative dimension, a size that overflows).
    case badShape(shape: [Int], reason: String)
    /// The data bytes are not exactly `product(shape) · itemsize`.
    case dataSizeMismatch(shape: [Int], dtype: String, expectedBytes: Int, foundBytes: Int)

    var text: String {
        switch self {
        case let .truncated(needed, found, what):
            return "truncated: \(what) needs \(needed) bytes, the file has \(found)"
        case let .badMagic(found):
            let hex = found.map { String(format: "%02x", $0) }.joined(separator: " ")
            return "bad magic: expected 93 4e 55 4d 50 59 (\\x93NUMPY), found \(hex.isEmpty ? "nothing" : hex)"
        case let .unsupportedVersion(major, minor):
            return "format version \(major).\(minor) is not supported (1.0, 2.0 and 3.0 are)"
        case let .badHeader(reason):
            return "bad header: \(reason)"
        case let .unsupportedDType(descr, reason):
            return "unsupported dtype \(descr): \(reason)"
        case let .badShape(shape, reason):
            return "bad shape \(NPYProblem.tuple(shape)): \(reason)"
        case let .dataSizeMismatch(shape, dtype, expected, found):
            return "shape \(NPYProblem.tuple(shape)) of \(dtype) needs \(expected) data bytes, the file has \(found)"
                + (found < expected ? " (truncated)" : " (trailing bytes)")
        }
    }

    /// `(3, 28, 28)`, `(5,)`, `()`, as Python prints a shape.
    static func tuple(_ shape: [Int]) -> String {
        shape.count == 1 ? "(\(shape[0]),)" : "(" + shape.map(String.init).joined(separator: ", ") + ")"
    }
}

/// A value of the Python literal subset `.npy` headers use.
indirect enum PythonLiteral: Equatable {
    case string(String), int(Int), bool(Bool), none
    case tuple([PythonLiteral]), list([PythonLiteral]), dict([(PythonLiteral, PythonLiteral)])

    static func == (a: PythonLiteral, b: PythonLiteral) -> Bool {
        switch (a, b) {
        case let (.string(x), .string(y)): return x == y
        case let (.int(x), .int(y)): return x == y
        case let (.bool(x), .bool(y)): return x == y
        case (.none, .none): return true
        case let (.tuple(x), .tuple(y)), let (.list(x), .list(y)): return x == y
        case let (.dict(x), .dict(y)): return x.count == y.count && zip(x, y).allSatisfy { $0.0 == $1.0 && $0.1 == $1.1 }
        default: return false
        }
    }

    /// "a string", "a tuple", … for messages.
    var kind: String {
        switch self {
        case .string: return "a string"
        case .int: return "an integer"
        case .bool: return "a bool"
        case .none: return "None"
        case .tuple: return "a tuple"
        case .list: return "a list"
        case .dict: return "a dict"
        }
    }
}

/// A recursive-descent parser of Python literals (strings, integers, True/False/None, tuples,
/// lists, dicts) over bytes, with a nesting limit: hostile headers fail, never recurse deeply.
struct PythonLiteralParser {
    struct Failure: Error {
        let reason: String
    }

    private let bytes: ArraySlice<UInt8>
    private var i: Int
    private var depth = 0
    static let maxDepth = 16

    init(_ bytes: ArraySlice<UInt8>) {
        self.bytes = bytes
        i = bytes.startIndex
    }

    private var offset: Int { i - bytes.startIndex }

    private mutating func skipSpace() {
        while i < bytes.endIndex, [0x20, 0x09, 0x0a, 0x0d].contains(bytes[i]) { i += 1 }
    }

    private func fail(_ what: String) -> Failure {
        Failure(reason: "\(what) at header byte \(offset)")
    }

    /// Only whitespace (the padding and the newline) may follow the value.
    mutating func expectEnd() throws {
        skipSpace()
        guard i == bytes.endIndex else { throw fail("unexpected text after the dict") }
    }

    mutating func parseValue() throws -> PythonLiteral {
        skipSpace()
        guard i < bytes.endIndex else { throw fail("the header ends where a value should be") }
        switch bytes[i] {
        case UInt8(ascii: "'"), UInt8(ascii: "\""): return .string(try parseString())
        case UInt8(ascii: "("): return .tuple(try parseSequence(close: UInt8(ascii: ")")))
        case UInt8(ascii: "["): return .list(try parseSequence(close: UInt8(ascii: "]")))
        case UInt8(ascii: "{"): return try parseDict()
        case UInt8(ascii: "-"), UInt8(ascii: "0")...UInt8(ascii: "9"): return .int(try parseInt())
        default:
            for (word, value) in [("True", PythonLiteral.bool(true)), ("False", .bool(false)), ("None", .none)]
            where bytes[i...].starts(with: word.utf8) {
                i += word.utf8.count
                return value
            }
            throw fail("unexpected character '\(Character(Unicode.Scalar(bytes[i])))'")
        }
    }

    private mutating func nested<T>(_ body: (inout PythonLiteralParser) throws -> T) throws -> T {
        guard depth < Self.maxDepth else { throw fail("values nested more than \(Self.maxDepth) deep") }
        depth += 1
        defer { depth -= 1 }
        return try body(&self)
    }

    private mutating func parseString() throws -> String {
        let quote = bytes[i]
        i += 1
        var scalars: [UInt8] = []
        while i < bytes.endIndex {
            let c = bytes[i]
            i += 1
            if c == quote { return String(decoding: scalars, as: UTF8.self) }
            if c == UInt8(ascii: "\\") {
                guard i < bytes.endIndex else { break }
                scalars.append(bytes[i])
                i += 1
            } else {
                scalars.append(c)
            }
        }
        throw fail("unterminated string")
    }

    private mutating func parseInt() throws -> Int {
        let start = i
        if bytes[i] == UInt8(ascii: "-") { i += 1 }
        let digitsStart = i
        while i < bytes.endIndex, (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(bytes[i]) { i += 1 }
        guard i > digitsStart else { throw fail("a '-' without digits") }
        let text = String(decoding: bytes[start..<i], as: UTF8.self)
        if i < bytes.endIndex, bytes[i] == UInt8(ascii: "L") { i += 1 }  // Python 2's long suffix
        guard let n = Int(text) else { throw fail("the integer \(text) is too large") }
        return n
    }

    private mutating func parseSequence(close: UInt8) throws -> [PythonLiteral] {
        try nested { p in
            p.i += 1
            var items: [PythonLiteral] = []
            while true {
                p.skipSpace()
                guard p.i < p.bytes.endIndex else { throw p.fail("unterminated sequence") }
                if p.bytes[p.i] == close { p.i += 1; return items }
                items.append(try p.parseValue())
                p.skipSpace()
                guard p.i < p.bytes.endIndex else { throw p.fail("unterminated sequence") }
                if p.bytes[p.i] == UInt8(ascii: ",") { p.i += 1 } else if p.bytes[p.i] != close {
                    throw p.fail("expected ',' or '\(Character(Unicode.Scalar(close)))'")
                }
            }
        }
    }

    private mutating func parseDict() throws -> PythonLiteral {
        try nested { p in
            p.i += 1
            var entries: [(PythonLiteral, PythonLiteral)] = []
            while true {
                p.skipSpace()
                guard p.i < p.bytes.endIndex else { throw p.fail("unterminated dict") }
                if p.bytes[p.i] == UInt8(ascii: "}") { p.i += 1; return .dict(entries) }
                let key = try p.parseValue()
                p.skipSpace()
                guard p.i < p.bytes.endIndex, p.bytes[p.i] == UInt8(ascii: ":") else { throw p.fail("expected ':' after a dict key") }
                p.i += 1
                entries.append((key, try p.parseValue()))
                p.skipSpace()
                guard p.i < p.bytes.endIndex else { throw p.fail("unterminated dict") }
                if p.bytes[p.i] == UInt8(ascii: ",") { p.i += 1 } else if p.bytes[p.i] != UInt8(ascii: "}") {
                    throw p.fail("expected ',' or '}'")
                }
            }
        }
    }
}
