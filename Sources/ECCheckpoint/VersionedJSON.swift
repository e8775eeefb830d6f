import Foundation

/// JSON documents that carry their own `"format_version"`: the checkpoint manifest, the
/// quantization plan, the compressors' saved state. One way to write them (sorted keys, so
/// the bytes are reproducible) and one way to read them: the version is checked first — a
/// document of another version may lay out its other fields differently, so it is refused as
/// such rather than as a missing key — then the whole document is decoded, and a decoding
/// failure is told in one line (`missing "step"`, `expected Int at groups[2]`) instead of
/// Foundation's multi-line dump.
public enum VersionedJSON {
    /// Why a document was not read. Callers wrap it in their own error, naming the file.
    public enum Failure: Error, Equatable, CustomStringConvertible {
        /// `format_version` is not the one this build reads.
        case unsupportedVersion(found: Int, supported: Int)
        /// Not JSON, a key missing or of the wrong type, or no `format_version` at all.
        case malformed(reason: String)

        public var description: String {
            switch self {
            case let .unsupportedVersion(found, supported):
                return "format version \(found) is not supported (this build reads version \(supported); "
                    + "written by a newer EasyCompression?)"
            case let .malformed(reason): return reason
            }
        }
    }

    /// Decodes `type` from `data` after checking that its `format_version` is `version`.
    public static func decode<T: Decodable>(_ type: T.Type, from data: Data, version: Int) throws(Failure) -> T {
        let decoder = JSONDecoder()
        let found: Int
        do {
            found = try decoder.decode(VersionProbe.self, from: data).version
        } catch {
            throw .malformed(reason: describe(error))
        }
        guard found == version else { throw .unsupportedVersion(found: found, supported: version) }
        do {
            return try decoder.decode(T.self, from: data)
        } catch {
            throw .malformed(reason: describe(error))
        }
    }

    /// The version field alone: read before the rest of a document.
    private struct VersionProbe: Decodable {
        let version: Int
        enum CodingKeys: String, CodingKey { case version = "format_version" }
    }

    /// `value` as JSON with sorted keys (pretty-printed for files people read).
    public static func encode<T: Encodable>(_ value: T, pretty: Bool = false) throws -> Data {
        let encoder = JSONEncoder()
        encoder.outputFormatting = pretty ? [.prettyPrinted, .sortedKeys] : [.sortedKeys]
        return try encoder.encode(value)
    }

    /// A one-line account of a decoding error: what is wrong and where (`fp32[0].reason`).
    public static func describe(_ error: Error) -> String {
        func at(_ context: DecodingError.Context) -> String {
            let keys = context.codingPath.map { $0.intValue.map { "[\($0)]" } ?? ".\($0.stringValue)" }.joined()
            return keys.isEmpty ? "" : " at \(keys.hasPrefix(".") ? String(keys.dropFirst()) : keys)"
        }
        switch error {
        case let DecodingError.keyNotFound(key, context): return "missing \"\(key.stringValue)\"\(at(context))"
        case let DecodingError.typeMismatch(type, context): return "expected \(type)\(at(context))"
        case let DecodingError.valueNotFound(type, context): return "expected \(type)\(at(context))"
        case let DecodingError.dataCorrupted(context):
            return context.codingPath.isEmpty ? "not valid JSON" : "invalid value\(at(context))"
        default: return (error as NSError).localizedDescription
        }
    }
}
