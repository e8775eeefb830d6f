import ECTensor
import Foundation

/// The contents of a safetensors file: named entries plus string metadata.
///
/// The format (https://github.com/huggingface/safetensors), which the Python `safetensors`
/// package reads and writes:
///
/// ```
/// [8 bytes]  N, the header length, unsigned 64-bit little-endian
/// [N bytes]  UTF-8 JSON: {"__metadata__": {"k": "v"},
///                         "conv1/weight": {"dtype": "F32", "shape": [3,3,3,16],
///                                          "data_offsets": [begin, end]}, ...}
///            padded with spaces so the data starts on an 8-byte boundary
/// [...]      the data buffer; offsets are relative to its start, elements little-endian
/// ```
///
/// `encoded()` writes entries in canonical (sorted-name) order, contiguous from offset 0, with
/// `__metadata__` first and omitted when empty. Decoding is in `SafeTensors+Decoding.swift`.
public struct SafeTensors: Equatable {
    /// The reserved header key holding the metadata.
    public static let metadataKey = "__metadata__"

    /// Entries by name.
    public var entries: [String: SafeTensorsEntry]
    /// Free-form string metadata (`__metadata__`).
    public var metadata: [String: String]

    /// A file's contents from entries and metadata.
    public init(entries: [String: SafeTensorsEntry] = [:], metadata: [String: String] = [:]) {
        self.entries = entries
        self.metadata = metadata
    }

    /// F32 entries for every tensor of `tensors`.
    public init(tensors: NamedTensors, metadata: [String: String] = [:]) {
        var entries: [String: SafeTensorsEntry] = [:]
        for (name, tensor) in tensors.sorted { entries[name] = SafeTensorsEntry(tensor) }
        self.init(entries: entries, metadata: metadata)
    }

    /// Entry names in canonical (sorted) order.
    public var names: [String] { entries.keys.sorted() }

    /// The entry named `name`.
    public subscript(name: String) -> SafeTensorsEntry? {
        get { entries[name] }
        set { entries[name] = newValue }
    }

    /// Every entry as a Float32 tensor.
    ///
    /// - Parameter file: names the source in errors.
    /// - Throws: `CheckpointError.dtypeMismatch` for the first (by name) entry that is not F32.
    public func tensors(file: String = "<memory>") throws -> NamedTensors {
        var result = NamedTensors()
        for name in names {
            let entry = entries[name]!
            guard let tensor = entry.tensor else {
                throw CheckpointError.dtypeMismatch(file: file, tensor: name, expected: .f32, actual: entry.dtype)
            }
            result[name] = tensor
        }
        return result
    }

    /// The file's bytes.
    ///
    /// - Parameter file: names the destination in errors.
    /// - Throws: `CheckpointError.reservedTensorName` if an entry is named `__metadata__`.
    public func encoded(file: String = "<memory>") throws -> Data {
        if entries[Self.metadataKey] != nil {
            throw CheckpointError.reservedTensorName(file: file, tensor: Self.metadataKey)
        }
        var header = "{"
        var members: [String] = []
        if !metadata.isEmpty {
            let pairs = metadata.keys.sorted().map { "\(jsonString($0)):\(jsonString(metadata[$0]!))" }
            members.append("\(jsonString(Self.metadataKey)):{\(pairs.joined(separator: ","))}")
        }
        var offset = 0
        let ordered = names
        for name in ordered {
            let entry = entries[name]!
            let shape = entry.shape.map(String.init).joined(separator: ",")
            members.append("\(jsonString(name)):{\"dtype\":\"\(entry.dtype.rawValue)\",\"shape\":[\(shape)],"
                + "\"data_offsets\":[\(offset),\(offset + entry.bytes.count)]}")
            offset += entry.bytes.count
        }
        header += members.joined(separator: ",") + "}"
        var headerBytes = Array(header.utf8)
        let padding = (8 - headerBytes.count % 8) % 8
        headerBytes.append(contentsOf: repeatElement(UInt8(ascii: " "), count: padding))

        var data = Data(capacity: 8 + headerBytes.count + offset)
        withUnsafeBytes(of: UInt64(headerBytes.count).littleEndian) { data.append(contentsOf: $0) }
        data.append(contentsOf: headerBytes)
        for name in ordered { data.append(entries[name]!.bytes) }
        return data
    }

    /// Writes the file atomically (`AtomicFile`): a reader sees the old file or the new one.
    public func write(to url: URL) throws {
        try AtomicFile.write(try encoded(file: url.path), to: url)
    }
}

/// `s` as a JSON string literal (RFC 8259 escapes; non-ASCII stays UTF-8).
func jsonString(_ s: String) -> String {
    var out = "\""
    for scalar in s.unicodeScalars {
        switch scalar {
        case "\"": out += "\\\""
        case "\\": out += "\\\\"
        case "\n": out += "\\n"
        case "\r": out += "\\r"
        case "\t": out += "\\t"
        case _ where scalar.value < 0x20:
            let hex = String(scalar.value, radix: 16)
            out += "\\u" + String(repeating: "0", count: 4 - hex.count) + hex
        default: out.unicodeScalars.append(scalar)
        }
    }
    return out + "\""
}
