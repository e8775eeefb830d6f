import ECCheckpoint
import ECTensor
import Foundation
import XCTest

/// The reader's validation: each malformed file yields its specific `CheckpointError`, whose
/// message names the file and the tensor.
final class SafeTensorsDecodingTests: XCTestCase {
    private let file = "model.safetensors"

    /// A file with `header` (as given, unpadded) and `dataBytes` zero bytes of data.
    private func rawFile(_ header: String, dataBytes: Int = 0, declaredHeaderBytes: UInt64? = nil) -> Data {
        var data = Data()
        withUnsafeBytes(of: (declaredHeaderBytes ?? UInt64(header.utf8.count)).littleEndian) { data.append(contentsOf: $0) }
        data.append(contentsOf: Array(header.utf8))
        data.append(Data(count: dataBytes))
        return data
    }

    private func decodeError(_ data: Data, line: UInt = #line) -> CheckpointError? {
        checkpointError({ try SafeTensors(decoding: data, file: file) }, line: line)
    }

    private func tensorHeader(_ name: String, dtype: String = "F32", shape: String, offsets: String) -> String {
        #""\#(name)":{"dtype":"\#(dtype)","shape":\#(shape),"data_offsets":\#(offsets)}"#
    }

    func testSizeMismatchMessageMatchesTheSpecifiedWording() {
        let header = "{" + tensorHeader("conv2/weight", shape: "[64,32,3,3]", offsets: "[0,100]") + "}"
        let error = decodeError(rawFile(header, dataBytes: 100))
        XCTAssertEqual(error, .dataSizeMismatch(file: file, tensor: "conv2/weight", offsets: [0, 100],
                                                shape: [64, 32, 3, 3], dtype: .f32, neededBytes: 73728))
        XCTAssertEqual(error?.description, "model.safetensors: tensor conv2/weight has data_offsets [0, 100] "
            + "but shape [64,32,3,3] × F32 needs 73728 bytes")
        let reversed = "{" + tensorHeader("w", shape: "[1]", offsets: "[4,0]") + "}"
        guard case .dataSizeMismatch(_, "w", [4, 0], _, _, 4)? = decodeError(rawFile(reversed, dataBytes: 4)) else {
            return XCTFail("reversed offsets accepted")
        }
    }

    func testTruncatedFiles() throws {
        XCTAssertEqual(decodeError(Data([1, 2, 3])), .truncatedFile(file: file, bytes: 3, neededBytes: 8))
        let good = try SafeTensors(tensors: NamedTensors([("conv1/weight", Tensor(shape: [4, 4], repeating: 1))])).encoded()
        let error = decodeError(good.prefix(good.count - 10))
        guard case let .dataOffsetsOutOfRange(file, tensor, offsets, bufferBytes)? = error else {
            return XCTFail("expected dataOffsetsOutOfRange, got \(String(describing: error))")
        }
        XCTAssertEqual([file, tensor], [self.file, "conv1/weight"])
        XCTAssertEqual(offsets, [0, 64])
        XCTAssertEqual(bufferBytes, 54)
        assertMentions(error?.description, "model.safetensors", "conv1/weight", "truncated")
        guard case .headerExceedsFile? = decodeError(good.prefix(20)) else { return XCTFail("cut header accepted") }
    }

    func testHeaderLengthTooLarge() {
        XCTAssertEqual(decodeError(rawFile("{}", declaredHeaderBytes: UInt64.max)),
                       .headerTooLarge(file: file, headerBytes: UInt64.max, limitBytes: SafeTensors.maxHeaderBytes))
        XCTAssertEqual(decodeError(rawFile("{}", declaredHeaderBytes: 1000)),
                       .headerExceedsFile(file: file, headerBytes: 1000, fileBytes: 10))
        assertMentions(decodeError(rawFile("{}", declaredHeaderBytes: 1000))?.description, file, "1000")
    }

    func testBadJSON() {
        for header in ["{\"a\":", "not json", "[1,2]", "{\"a\":{}} trailing"] {
            guard case .invalidHeader(file, _)? = decodeError(rawFile(header)) else {
                return XCTFail("accepted header \(header)")
            }
        }
        assertMentions(decodeError(rawFile("[1,2]"))?.description, file, "expected a JSON object, found an array")
        var notUTF8 = rawFile("{\"\u{e9}\":1}")
        notUTF8[10] = 0xFF
        guard case .invalidHeader(_, let reason)? = decodeError(notUTF8) else { return XCTFail("accepted bad UTF-8") }
        XCTAssertTrue(reason.contains("UTF-8"), reason)
    }

    func testUnknownDType() {
        let error = decodeError(rawFile("{" + tensorHeader("w", dtype: "F128", shape: "[1]", offsets: "[0,16]") + "}",
                                        dataBytes: 16))
        XCTAssertEqual(error, .unknownDType(file: file, tensor: "w", dtype: "F128"))
        assertMentions(error?.description, file, "w", "F128", "F32")
    }

    func testOffsetsOutOfRangeAndOverlapping() {
        let outside = "{" + tensorHeader("w", shape: "[2]", offsets: "[8,16]") + "}"
        XCTAssertEqual(decodeError(rawFile(outside, dataBytes: 12)),
                       .dataOffsetsOutOfRange(file: file, tensor: "w", offsets: [8, 16], bufferBytes: 12))
        let overlapping = "{" + tensorHeader("a", shape: "[2]", offsets: "[0,8]") + ","
            + tensorHeader("b", shape: "[2]", offsets: "[4,12]") + "," + tensorHeader("e", shape: "[0]", offsets: "[4,4]") + "}"
        let error = decodeError(rawFile(overlapping, dataBytes: 12))
        XCTAssertEqual(error, .overlappingData(file: file, tensor: "b", offsets: [4, 12], other: "a", otherOffsets: [0, 8]))
        assertMentions(error?.description, file, "tensor b", "tensor a")
    }

    func testDuplicateNames() {
        let header = "{" + tensorHeader("w", shape: "[1]", offsets: "[0,4]") + ","
            + tensorHeader("w", shape: "[1]", offsets: "[4,8]") + "}"
        XCTAssertEqual(decodeError(rawFile(header, dataBytes: 8)), .duplicateTensor(file: file, tensor: "w"))
        let twoMetadata = #"{"__metadata__":{},"__metadata__":{}}"#
        XCTAssertEqual(decodeError(rawFile(twoMetadata)),
                       .invalidMetadata(file: file, key: nil, reason: "appears more than once"))
        XCTAssertEqual(decodeError(rawFile(#"{"__metadata__":{"k":"a","k":"b"}}"#)),
                       .invalidMetadata(file: file, key: "k", reason: "appears more than once"))
    }

    func testNonStringMetadata() {
        let error = decodeError(rawFile(#"{"__metadata__":{"ok":"x","epoch":3}}"#))
        XCTAssertEqual(error, .invalidMetadata(file: file, key: "epoch", reason: "expected a string value, found a number"))
        assertMentions(error?.description, file, "epoch")
        guard case .invalidMetadata(_, nil, _)? = decodeError(rawFile(#"{"__metadata__":[]}"#)) else {
            return XCTFail("array metadata accepted")
        }
    }

    func testMalformedTensorEntries() {
        let cases: [(String, String)] = [
            (#""w":[]"#, "expected an object, found an array"),
            (#""w":{"shape":[1],"data_offsets":[0,4]}"#, "missing \"dtype\""),
            (#""w":{"dtype":4,"shape":[1],"data_offsets":[0,4]}"#, "\"dtype\" must be a string"),
            (#""w":{"dtype":"F32","data_offsets":[0,4]}"#, "missing \"shape\""),
            (#""w":{"dtype":"F32","shape":[-1],"data_offsets":[0,4]}"#, "non-negative integers, found -1"),
            (#""w":{"dtype":"F32","shape":[1.0],"data_offsets":[0,4]}"#, "found 1.0"),
            (#""w":{"dtype":"F32","shape":"1","data_offsets":[0,4]}"#, "found a string"),
            (#""w":{"dtype":"F32","shape":[1],"data_offsets":[0,4,8]}"#, "[begin, end]"),
            (#""w":{"dtype":"F32","shape":[1],"shape":[1],"data_offsets":[0,4]}"#, "appears more than once"),
            (#""w":{"dtype":"F32","shape":[4294967296,4294967296],"data_offsets":[0,4]}"#, "overflows"),
            (#""w":{"dtype":"F32","shape":[1],"data_offsets":[0,99999999999999999999]}"#, "non-negative integers"),
        ]
        for (entry, expected) in cases {
            let error = decodeError(rawFile("{" + entry + "}", dataBytes: 4))
            guard case let .invalidTensorHeader(file, "w", reason)? = error else {
                XCTFail("\(entry): expected invalidTensorHeader, got \(String(describing: error))")
                continue
            }
            XCTAssertEqual(file, self.file)
            XCTAssertTrue(reason.contains(expected), "\(entry): \(reason)")
        }
    }

    /// Every truncation and 3,000 seeded random byte flips of a valid file: each outcome is a
    /// `CheckpointError` naming the file, or a decoded file whose every tensor holds exactly its
    /// shape's bytes — and when the flips all hit the data section, the same tensors with the
    /// flipped bytes.
    func testHostileBytesNeverCrash() throws {
        let tensors = NamedTensors([("a", Tensor(shape: [3], scalars: [1, 2, 3])), ("b/c", Tensor(scalar: 4))])
        var file = SafeTensors(tensors: tensors, metadata: ["k": "v"])
        file["m"] = SafeTensorsEntry(shape: [2], values: [Int64(1), 2])
        let good = try file.encoded()
        let dataStart = 8 + Int(good.prefix(8).withUnsafeBytes { $0.loadUnaligned(as: UInt64.self) })
        for length in 0..<good.count {
            XCTAssertThrowsError(try SafeTensors(decoding: good.prefix(length), file: "cut.safetensors"), "\(length) bytes") {
                XCTAssertTrue(($0 as? CheckpointError)?.description.contains("cut.safetensors") == true, "\(length) bytes: \($0)")
            }
        }
        var rng = RNG(seed: 31)
        var decoded = 0, refused = 0
        for trial in 0..<3000 {
            var bad = good
            let positions = (0...(trial % 3)).map { _ in Int(rng.next() % UInt64(good.count)) }
            for p in positions { bad[p] ^= UInt8(1 + rng.next() % 255) }
            do {
                let read = try SafeTensors(decoding: bad, file: "flipped.safetensors")
                decoded += 1
                for name in read.names {
                    let entry = read[name]!
                    XCTAssertEqual(entry.bytes.count, entry.elementCount * entry.dtype.byteSize, "trial \(trial): \(name)")
                }
                if positions.allSatisfy({ $0 >= dataStart }) {
                    XCTAssertEqual(read.names, file.names, "trial \(trial)")
                    XCTAssertEqual(read.metadata, file.metadata, "trial \(trial)")
                    XCTAssertEqual(try read.encoded(), bad, "trial \(trial): the data section as flipped")
                }
            } catch let error as CheckpointError {
                refused += 1
                XCTAssertTrue(error.description.contains("flipped.safetensors"), "trial \(trial): \(error)")
            } catch {
                XCTFail("trial \(trial): not a CheckpointError: \(error)")
            }
        }
        XCTAssertEqual(decoded + refused, 3000)
        XCTAssertGreaterThan(refused, 0, "flips in the header are refused")
        XCTAssertGreaterThan(decoded, 0, "flips in the data section decode (safetensors has no checksum)")
    }

    func testDecodesSlicedData() throws {
        let good = try SafeTensors(tensors: NamedTensors([("a", Tensor(shape: [2], scalars: [5, 6]))])).encoded()
        let sliced = (Data([9, 9, 9]) + good).dropFirst(3)
        XCTAssertEqual(try SafeTensors(decoding: sliced)["a"]?.tensor?.scalars, [5, 6])
    }
}
