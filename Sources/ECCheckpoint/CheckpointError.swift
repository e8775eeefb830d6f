import Foundation

/// Everything that can go wrong reading or writing safetensors files and checkpoints.
///
/// Each case carries the file (path as given), the tensor where one is involved, the offending
/// value and what was expected, so its `description` is a complete message for the user:
/// `"model.safetensors: tensor conv2/weight has data_offsets [0, 100] but shape [64,32,3,3] × F32
/// needs 73728 bytes"`. Library code throws these; only the CLI turns them into exit codes.
public enum CheckpointError: Error, Equatable, CustomStringConvertible, LocalizedError {
    // MARK: File system

    /// A system call failed: `operation` (`"open"`, `"rename"`, …) on `path`, with the errno text.
    case fileSystem(operation: String, path: String, reason: String)

    // MARK: safetensors container

    /// The file is shorter than the 8-byte header-length prefix.
    case truncatedFile(file: String, bytes: Int, neededBytes: Int)
    /// The header length prefix exceeds the reader's limit (a corrupt or hostile prefix).
    case headerTooLarge(file: String, headerBytes: UInt64, limitBytes: Int)
    /// The header length prefix points past the end of the file.
    case headerExceedsFile(file: String, headerBytes: UInt64, fileBytes: Int)
    /// The header is not UTF-8 JSON, or not a JSON object at the top level.
    case invalidHeader(file: String, reason: String)
    /// A tensor's header entry is malformed (missing or mistyped `dtype`, `shape`, `data_offsets`).
    case invalidTensorHeader(file: String, tensor: String, reason: String)
    /// A tensor has a dtype this reader does not know.
    case unknownDType(file: String, tensor: String, dtype: String)
    /// A tensor's `data_offsets` run past the end of the data buffer.
    case dataOffsetsOutOfRange(file: String, tensor: String, offsets: [Int], bufferBytes: Int)
    /// A tensor's `data_offsets` span a different number of bytes than its shape × dtype needs
    /// (or are reversed).
    case dataSizeMismatch(file: String, tensor: String, offsets: [Int], shape: [Int], dtype: SafeTensorsDType,
                          neededBytes: Int)
    /// Two tensors' byte ranges overlap.
    case overlappingData(file: String, tensor: String, offsets: [Int], other: String, otherOffsets: [Int])
    /// A tensor name appears twice (in a header, or in both the tensors and the extra entries).
    case duplicateTensor(file: String, tensor: String)
    /// `__metadata__` is not an object of string values (`key` is nil when the object itself is bad).
    case invalidMetadata(file: String, key: String?, reason: String)
    /// A tensor is named `__metadata__`, which the format reserves.
    case reservedTensorName(file: String, tensor: String)
    /// A tensor has another dtype than the one the caller needs (e.g. I8 where a Float tensor is loaded).
    case dtypeMismatch(file: String, tensor: String, expected: SafeTensorsDType, actual: SafeTensorsDType)

    // MARK: Checkpoint directories

    /// A checkpoint directory has no `manifest.json`: it was never completed.
    case missingManifest(directory: String)
    /// `manifest.json` does not decode, or contradicts its directory.
    case invalidManifest(file: String, reason: String)
    /// `manifest.json` was written by a newer (or unknown) format version.
    case unsupportedManifestVersion(file: String, version: Int, supported: Int)
    /// A file's size differs from the size its manifest recorded.
    case sizeMismatch(file: String, expectedBytes: Int, actualBytes: Int)
    /// A file's checksum (XXH64, hex) differs from the one its manifest recorded.
    case checksumMismatch(file: String, expected: String, actual: String)
    /// No complete checkpoint exists (for `step`, or at all when `step` is nil).
    case checkpointNotFound(directory: String, step: Int?)
    /// An argument from configuration is out of range (`keepLast`, `step`).
    case invalidArgument(name: String, value: String, expected: String)

    // MARK: Model compatibility

    /// The model expects a tensor the checkpoint lacks.
    case missingTensor(file: String, tensor: String)
    /// The checkpoint holds a tensor the model does not expect.
    case unexpectedTensor(file: String, tensor: String)
    /// The checkpoint's shape for a tensor differs from the model's.
    case shapeMismatch(file: String, tensor: String, checkpointShape: [Int], expectedShape: [Int])

    public var description: String {
        switch self {
        case let .fileSystem(operation, path, reason):
            return "\(path): \(operation) failed: \(reason)"
        case let .truncatedFile(file, bytes, needed):
            return "\(file): file is \(bytes) bytes, a safetensors file needs at least \(needed) (truncated?)"
        case let .headerTooLarge(file, header, limit):
            return "\(file): header length prefix is \(header) bytes, more than the \(limit)-byte limit "
                + "(corrupt file, or not a safetensors file)"
        case let .headerExceedsFile(file, header, fileBytes):
            return "\(file): header length prefix is \(header) bytes but the file has only "
                + "\(max(fileBytes - 8, 0)) bytes after it (truncated?)"
        case let .invalidHeader(file, reason):
            return "\(file): invalid safetensors header: \(reason)"
        case let .invalidTensorHeader(file, tensor, reason):
            return "\(file): tensor \(tensor): invalid header entry: \(reason)"
        case let .unknownDType(file, tensor, dtype):
            let known = SafeTensorsDType.allCases.map(\.rawValue).joined(separator: ", ")
            return "\(file): tensor \(tensor) has unknown dtype \"\(dtype)\", expected one of \(known)"
        case let .dataOffsetsOutOfRange(file, tensor, offsets, bufferBytes):
            return "\(file): tensor \(tensor) has data_offsets \(offsetsText(offsets)) but the data buffer "
                + "holds \(bufferBytes) bytes (truncated file?)"
        case let .dataSizeMismatch(file, tensor, offsets, shape, dtype, needed):
            return "\(file): tensor \(tensor) has data_offsets \(offsetsText(offsets)) but shape "
                + "\(shapeText(shape)) × \(dtype.rawValue) needs \(needed) bytes"
        case let .overlappingData(file, tensor, offsets, other, otherOffsets):
            return "\(file): tensor \(tensor) has data_offsets \(offsetsText(offsets)) overlapping tensor "
                + "\(other) at \(offsetsText(otherOffsets))"
        case let .duplicateTensor(file, tensor):
            return "\(file): tensor \(tensor) appears more than once"
        case let .invalidMetadata(file, key, reason):
            let what = key.map { "__metadata__ key \"\($0)\"" } ?? "__metadata__"
            return "\(file): \(what): \(reason)"
        case let .reservedTensorName(file, tensor):
            return "\(file): \"\(tensor)\" is reserved by the safetensors format and cannot name a tensor"
        case let .dtypeMismatch(file, tensor, expected, actual):
            return "\(file): tensor \(tensor) has dtype \(actual.rawValue), expected \(expected.rawValue)"
        case let .missingManifest(directory):
            return "\(directory): no manifest.json, the checkpoint is incomplete (interrupted write?)"
        case let .invalidManifest(file, reason):
            return "\(file): invalid checkpoint manifest: \(reason)"
        case let .unsupportedManifestVersion(file, version, supported):
            return "\(file): manifest format version \(version) is not supported (this build reads "
                + "version \(supported); written by a newer EasyCompression?)"
        case let .sizeMismatch(file, expected, actual):
            return "\(file): file is \(actual) bytes, the manifest recorded \(expected) (truncated or replaced)"
        case let .checksumMismatch(file, expected, actual):
            return "\(file): XXH64 checksum is \(actual), the manifest recorded \(expected) "
                + "(the file is corrupt; resume from an earlier checkpoint)"
        case let .checkpointNotFound(directory, step):
            if let step { return "\(directory): no checkpoint for step \(step)" }
            return "\(directory): no complete checkpoint"
        case let .invalidArgument(name, value, expected):
            return "\(name) must be \(expected), got \(value)"
        case let .missingTensor(file, tensor):
            return "\(tensor): the model expects this tensor but the checkpoint has none" + inFile(file)
        case let .unexpectedTensor(file, tensor):
            return "\(tensor): the checkpoint has this tensor but the model does not expect it" + inFile(file)
        case let .shapeMismatch(file, tensor, checkpointShape, expectedShape):
            return "\(tensor): checkpoint has shape \(shapeText(checkpointShape)), model expects "
                + "\(shapeText(expectedShape))" + inFile(file)
        }
    }

    public var errorDescription: String? { description }
}

/// `[64,32,3,3]`: the compact shape spelling used in every message.
func shapeText(_ shape: [Int]) -> String {
    "[" + shape.map(String.init).joined(separator: ",") + "]"
}

private func offsetsText(_ offsets: [Int]) -> String {
    "[" + offsets.map(String.init).joined(separator: ", ") + "]"
}

private func inFile(_ file: String) -> String {
    file.isEmpty ? "" : " (\(file))"
}
