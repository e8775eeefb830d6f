import ECCheckpoint
import Foundation
import XCTest

final class CheckpointErrorTests: XCTestCase {
    /// Every case reads as one line naming the file (and the tensor, where one is involved).
    func testEveryMessageIsOneLineNamingFileAndTensor() {
        let f = "run/checkpoints/step-00000120/tensors.safetensors", t = "block2/conv1/weight"
        let cases: [(CheckpointError, [String])] = [
            (.fileSystem(operation: "rename to /x", path: f, reason: "No space left on device (errno 28)"), [f, "rename"]),
            (.truncatedFile(file: f, bytes: 3, neededBytes: 8), [f, "3", "8"]),
            (.headerTooLarge(file: f, headerBytes: 1 << 40, limitBytes: 100_000_000), [f, "1099511627776"]),
            (.headerExceedsFile(file: f, headerBytes: 500, fileBytes: 100), [f, "500", "92"]),
            (.invalidHeader(file: f, reason: "expected ':' at byte 7"), [f, "byte 7"]),
            (.invalidTensorHeader(file: f, tensor: t, reason: "missing \"dtype\""), [f, t, "dtype"]),
            (.unknownDType(file: f, tensor: t, dtype: "Q4"), [f, t, "Q4"]),
            (.dataOffsetsOutOfRange(file: f, tensor: t, offsets: [0, 64], bufferBytes: 10), [f, t, "[0, 64]", "10"]),
            (.dataSizeMismatch(file: f, tensor: t, offsets: [0, 4], shape: [2], dtype: .i64, neededBytes: 16),
             [f, t, "[2] × I64", "16"]),
            (.overlappingData(file: f, tensor: t, offsets: [0, 8], other: "b", otherOffsets: [4, 12]), [f, t, "b"]),
            (.duplicateTensor(file: f, tensor: t), [f, t]),
            (.invalidMetadata(file: f, key: "epoch", reason: "expected a string value"), [f, "epoch"]),
            (.reservedTensorName(file: f, tensor: "__metadata__"), [f, "__metadata__"]),
            (.dtypeMismatch(file: f, tensor: t, expected: .f32, actual: .u8), [f, t, "U8", "F32"]),
            (.missingManifest(directory: "run/step-1"), ["run/step-1", "incomplete"]),
            (.invalidManifest(file: f, reason: "missing \"step\""), [f, "step"]),
            (.unsupportedManifestVersion(file: f, version: 2, supported: 1), [f, "2", "1"]),
            (.sizeMismatch(file: f, expectedBytes: 10, actualBytes: 9), [f, "10", "9"]),
            (.checksumMismatch(file: f, expected: "aa", actual: "bb"), [f, "aa", "bb"]),
            (.checkpointNotFound(directory: "run/checkpoints", step: 5), ["run/checkpoints", "5"]),
            (.checkpointNotFound(directory: "run/checkpoints", step: nil), ["run/checkpoints"]),
            (.invalidArgument(name: "keepLast", value: "0", expected: "≥ 1"), ["keepLast must be ≥ 1, got 0"]),
            (.missingTensor(file: f, tensor: t), [f, t]),
            (.unexpectedTensor(file: f, tensor: t), [f, t]),
            (.shapeMismatch(file: f, tensor: t, checkpointShape: [1], expectedShape: [2]), [f, t, "[1]", "[2]"]),
        ]
        for (error, parts) in cases {
            assertMentions(error.description, parts)
            XCTAssertFalse(error.description.contains("\n"), error.description)
            XCTAssertEqual(error.localizedDescription, error.description)
        }
    }
}
