import Foundation
import SwiftProtobuf

/// ONNX's external data (onnx/docs/ExternalData.md): a model over protobuf's 2 GB limit keeps
/// its initializers in a side file — `TensorProto.data_location = EXTERNAL` (field 14) and
/// `external_data` (field 13: `location`, relative to the model's folder, with optional
/// `offset` and `length` in bytes). `torch.onnx.export` writes such files for large models
/// (`model.onnx` + `model.onnx.data`).
///
/// The importer's proto subset leaves those two fields unknown; this reads them from the
/// tensor's unknown fields and moves the bytes into `raw_data`, so the rest of the import sees
/// an ordinary tensor.
enum ONNXExternalData {
    /// Fills `raw_data` of every initializer of `graph` that keeps its data outside, reading the
    /// files under `directory` (the model file's folder).
    ///
    /// - Throws: a reason naming the tensor for a location that is absolute or leaves the folder,
    ///   a missing or unreadable file, an offset or length outside it, or an unknown key.
    static func resolve(_ graph: inout Onnx_GraphProto, directory: URL?) throws(ONNXReason) {
        var files: [String: Data] = [:]
        for i in graph.initializer.indices {
            let tensor = graph.initializer[i]
            guard let entries = try external(tensor) else { continue }
            guard let directory else {
                throw ONNXReason("tensor '\(tensor.name)' keeps its data in an external file, and the model was read "
                                 + "from memory: load it from its file (Model(onnx: url)) so the data file can be found")
            }
            var location: String?, offset = 0, length: Int?
            for entry in entries {
                switch entry.key {
                case "location": location = entry.value
                case "offset":
                    guard let v = Int(entry.value), v >= 0 else {
                        throw ONNXReason("tensor '\(tensor.name)': external data offset '\(entry.value)' is not a byte count")
                    }
                    offset = v
                case "length":
                    guard let v = Int(entry.value), v >= 0 else {
                        throw ONNXReason("tensor '\(tensor.name)': external data length '\(entry.value)' is not a byte count")
                    }
                    length = v
                case "checksum": break  // optional SHA-1; the length check below catches truncation
                default:
                    throw ONNXReason("tensor '\(tensor.name)': unknown external data key '\(entry.key)' "
                                     + "(known: location, offset, length, checksum)")
                }
            }
            guard let location, !location.isEmpty else {
                throw ONNXReason("tensor '\(tensor.name)' keeps its data outside the file but names no location")
            }
            let parts = location.split(separator: "/", omittingEmptySubsequences: false)
            guard !location.hasPrefix("/"), !location.contains("\\"), !parts.contains(".."), !parts.contains("") else {
                throw ONNXReason("tensor '\(tensor.name)': external data location '\(location)' must be a path inside "
                                 + "the model's folder")
            }
            if files[location] == nil {
                let url = directory.appendingPathComponent(location)
                do {
                    files[location] = try Data(contentsOf: url, options: .alwaysMapped)
                } catch {
                    throw ONNXReason("tensor '\(tensor.name)' keeps its data in '\(url.path)', which cannot be read: "
                                     + (error as NSError).localizedDescription)
                }
            }
            let data = files[location]!
            let count = length ?? (data.count - offset)
            guard offset <= data.count, count >= 0, count <= data.count - offset else {
                throw ONNXReason("tensor '\(tensor.name)': bytes \(offset)..<\(offset + (length ?? 0)) of '\(location)' "
                                 + "are outside the file (\(data.count) bytes)")
            }
            var resolved = tensor
            resolved.unknownFields = UnknownStorage()
            resolved.rawData = data.subdata(in: data.startIndex + offset ..< data.startIndex + offset + count)
            graph.initializer[i] = resolved
        }
    }

    /// The `external_data` entries of `tensor` when its `data_location` is EXTERNAL (1); nil
    /// for a tensor holding its data.
    static func external(_ tensor: Onnx_TensorProto) throws(ONNXReason) -> [Onnx_StringStringEntryProto]? {
        let bytes = [UInt8](tensor.unknownFields.data)
        guard !bytes.isEmpty else { return nil }
        var entries: [Onnx_StringStringEntryProto] = [], location = 0, at = 0
        func varint() throws(ONNXReason) -> UInt64 {
            var value: UInt64 = 0, shift: UInt64 = 0
            while at < bytes.count, shift < 64 {
                let b = bytes[at]
                at += 1
                value |= UInt64(b & 0x7f) << shift
                if b & 0x80 == 0 { return value }
                shift += 7
            }
            throw ONNXReason("tensor '\(tensor.name)' has malformed extra fields")
        }
        while at < bytes.count {
            let key = try varint()
            let field = key >> 3, wire = key & 7
            switch wire {
            case 0:
                let v = try varint()
                if field == 14 { location = Int(truncatingIfNeeded: v) }
            case 1: at += 8
            case 5: at += 4
            case 2:
                let n = Int(truncatingIfNeeded: try varint())
                guard n >= 0, n <= bytes.count - at else { throw ONNXReason("tensor '\(tensor.name)' has malformed extra fields") }
                if field == 13 {
                    do {
                        entries.append(try Onnx_StringStringEntryProto(serializedBytes: Array(bytes[at..<(at + n)])))
                    } catch {
                        throw ONNXReason("tensor '\(tensor.name)' has a malformed external data entry")
                    }
                }
                at += n
            default:
                throw ONNXReason("tensor '\(tensor.name)' has malformed extra fields")
            }
        }
        guard at == bytes.count else { throw ONNXReason("tensor '\(tensor.name)' has malformed extra fields") }
        return location == 1 ? entries : nil
    }
}
