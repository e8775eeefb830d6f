import ECTensor
import Foundation

/// `manifest.json`, the file written last into a checkpoint directory: its presence marks the
/// checkpoint complete, and it records each file's size and XXH64 so a load detects truncation
/// and corruption.
///
/// ```json
/// {"format_version": 1, "step": 120, "extra_entries": ["conv1/mask"],
///  "files": [{"name": "state.json", "bytes": 812, "xxh64": "3f0c…"},
///            {"name": "tensors.safetensors", "bytes": 73824, "xxh64": "9a51…"}]}
/// ```
struct CheckpointManifest: Codable, Equatable {
    static let fileName = "manifest.json"
    static let tensorsFileName = "tensors.safetensors"
    static let stateFileName = "state.json"
    static let currentFormatVersion = 1

    /// One file of the checkpoint.
    struct FileRecord: Codable, Equatable {
        var name: String
        var bytes: Int
        var xxh64: String
    }

    var formatVersion: Int
    var step: Int
    var files: [FileRecord]
    /// Names of the safetensors entries that are extra entries rather than model tensors.
    var extraEntries: [String]

    enum CodingKeys: String, CodingKey {
        case formatVersion = "format_version"
        case step
        case files
        case extraEntries = "extra_entries"
    }

    /// A manifest recording `files` (name → contents) for `step`.
    init(step: Int, files: [(name: String, data: Data)], extraEntries: [String]) {
        formatVersion = Self.currentFormatVersion
        self.step = step
        self.files = files.map {
            FileRecord(name: $0.name, bytes: $0.data.count, xxh64: XXHash64.hexDigest(XXHash64.hash($0.data)))
        }
        self.extraEntries = extraEntries.sorted()
    }

    func encoded() throws -> Data {
        try VersionedJSON.encode(self, pretty: true)
    }

    /// Decodes and sanity-checks a manifest read from `file`.
    ///
    /// - Throws: `unsupportedManifestVersion` for another format version, `invalidManifest` for
    ///   anything else that is wrong (not JSON, missing keys, a file name that leaves the
    ///   directory, a step different from `expectedStep`).
    static func decode(_ data: Data, file: String, expectedStep: Int?) throws -> CheckpointManifest {
        let manifest: CheckpointManifest
        do {
            manifest = try VersionedJSON.decode(CheckpointManifest.self, from: data, version: currentFormatVersion)
        } catch let .unsupportedVersion(found, supported) {
            throw CheckpointError.unsupportedManifestVersion(file: file, version: found, supported: supported)
        } catch let .malformed(reason) {
            throw CheckpointError.invalidManifest(file: file, reason: reason)
        }
        if let expectedStep, manifest.step != expectedStep {
            throw CheckpointError.invalidManifest(
                file: file, reason: "records step \(manifest.step) but its directory is for step \(expectedStep)")
        }
        for name in [tensorsFileName, stateFileName] where !manifest.files.contains(where: { $0.name == name }) {
            throw CheckpointError.invalidManifest(file: file, reason: "does not list \(name)")
        }
        for record in manifest.files {
            guard !record.name.isEmpty, !record.name.contains("/"), record.name != ".", record.name != ".." else {
                throw CheckpointError.invalidManifest(file: file,
                                                      reason: "file name \"\(record.name)\" is not a plain name")
            }
        }
        return manifest
    }
}
