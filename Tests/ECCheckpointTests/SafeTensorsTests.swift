import ECCheckpoint
import ECTensor
import Foundation
import XCTest

final class SafeTensorsTests: XCTestCase {
    /// A tiny file spelled out byte by byte: the length prefix, the header in canonical order
    /// padded with spaces to a multiple of 8, then the data buffer.
    func testEncodingMatchesHandBuiltBytes() throws {
        let file = SafeTensors(entries: ["b": SafeTensorsEntry(shape: [], values: [UInt8(7)]),
                                         "a": SafeTensorsEntry(Tensor(shape: [2], scalars: [1, -2]))],
                               metadata: ["k": "v"])
        let header = #"{"__metadata__":{"k":"v"},"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"#
            + #""b":{"dtype":"U8","shape":[],"data_offsets":[8,9]}}"# + "      "
        XCTAssertEqual(header.utf8.count, 136)
        var expected: [UInt8] = [0x88, 0, 0, 0, 0, 0, 0, 0]
        expected += Array(header.utf8)
        expected += [0x00, 0x00, 0x80, 0x3F, 0x00, 0x00, 0x00, 0xC0]  // 1.0, -2.0
        expected += [0x07]
        XCTAssertEqual(Array(try file.encoded()), expected)
    }

    func testEmptyFileHasEmptyObjectHeader() throws {
        XCTAssertEqual(Array(try SafeTensors().encoded()), [8, 0, 0, 0, 0, 0, 0, 0] + Array("{}      ".utf8))
        XCTAssertEqual(try SafeTensors(decoding: try SafeTensors().encoded()), SafeTensors())
    }

    func testRoundTripOfFloatTensorsRawDTypesAndMetadata() throws {
        let tensors = NamedTensors([("conv1/weight", Tensor(shape: [3, 3, 2, 4], scalars: (0..<72).map { Float($0) / 7 })),
                                    ("conv1/bias", Tensor(shape: [4], scalars: [1, 2, 3, 4])),
                                    ("step_size", Tensor(scalar: 0.125)),
                                    ("empty", Tensor(shape: [0]))])
        var file = SafeTensors(tensors: tensors, metadata: ["format": "pt", "note": "quote \" and ünïcode\n"])
        file["q/int8"] = SafeTensorsEntry(shape: [2, 2], values: [Int8(-128), -1, 0, 127])
        file["q/mask"] = SafeTensorsEntry(shape: [5], values: [UInt8(1), 0, 1, 1, 0])
        file["counts"] = SafeTensorsEntry(shape: [2], values: [Int32(-5), 1 << 30])
        file["seed"] = SafeTensorsEntry(shape: [], values: [Int64.min])
        file["ema"] = SafeTensorsEntry(shape: [1, 1], values: [Double.pi])

        let url = try makeTemporaryDirectory(self).appendingPathComponent("model.safetensors")
        try file.write(to: url)
        let decoded = try SafeTensors.read(from: url)
        XCTAssertEqual(decoded, file)
        XCTAssertEqual(decoded.metadata["note"], "quote \" and ünïcode\n")
        XCTAssertEqual(decoded["q/int8"]?.values(as: Int8.self), [-128, -1, 0, 127])
        XCTAssertEqual(decoded["seed"]?.values(as: Int64.self), [Int64.min])
        XCTAssertEqual(decoded["ema"]?.values(as: Double.self), [Double.pi])
        XCTAssertEqual(decoded["step_size"]?.tensor?.shape, [])

        var floats = decoded
        for name in ["q/int8", "q/mask", "counts", "seed", "ema"] { floats[name] = nil }
        XCTAssertEqual(try floats.tensors(), tensors)
    }

    func testDataStartsOnAnEightByteBoundary() throws {
        for nameLength in 1...9 {
            let name = String(repeating: "x", count: nameLength)
            let data = try SafeTensors(tensors: NamedTensors([(name, Tensor(scalar: 1))])).encoded()
            let headerLength = data.prefix(8).enumerated().reduce(0) { $0 | Int($1.element) << (8 * $1.offset) }
            XCTAssertEqual(headerLength % 8, 0)
            XCTAssertEqual(data.count, 8 + headerLength + 4)
        }
    }

    func testTensorsRejectsNonFloatEntryNamingIt() {
        let file = SafeTensors(entries: ["a": SafeTensorsEntry(Tensor(scalar: 1)),
                                         "mask": SafeTensorsEntry(shape: [1], values: [UInt8(1)])])
        let error = checkpointError { try file.tensors(file: "model.safetensors") }
        XCTAssertEqual(error, .dtypeMismatch(file: "model.safetensors", tensor: "mask", expected: .f32, actual: .u8))
        assertMentions(error?.description, "model.safetensors", "mask", "U8", "F32")
    }

    func testReservedNameIsRejectedOnWrite() {
        let file = SafeTensors(entries: ["__metadata__": SafeTensorsEntry(Tensor(scalar: 1))])
        let error = checkpointError { try file.encoded(file: "x.safetensors") }
        XCTAssertEqual(error, .reservedTensorName(file: "x.safetensors", tensor: "__metadata__"))
    }
}
