import ECCheckpoint
import ECTensor
import Foundation
import XCTest

final class SafeTensorsEntryTests: XCTestCase {
    func testTensorConversionRoundTripsLittleEndianFloat32() {
        let tensor = Tensor(shape: [2, 2], scalars: [1, -2, 0.5, .infinity])
        let entry = SafeTensorsEntry(tensor)
        XCTAssertEqual(entry.dtype, .f32)
        XCTAssertEqual(entry.shape, [2, 2])
        XCTAssertEqual(Array(entry.bytes.prefix(8)), [0x00, 0x00, 0x80, 0x3F, 0x00, 0x00, 0x00, 0xC0])
        XCTAssertEqual(entry.tensor, tensor)
    }

    func testScalarAndEmptyShapes() {
        XCTAssertEqual(SafeTensorsEntry(Tensor(scalar: 3)).bytes.count, 4)
        XCTAssertEqual(SafeTensorsEntry(Tensor(scalar: 3)).tensor?.scalars, [3])
        let empty = SafeTensorsEntry(Tensor(shape: [0, 5]))
        XCTAssertEqual(empty.bytes.count, 0)
        XCTAssertEqual(empty.elementCount, 0)
        XCTAssertEqual(empty.tensor?.shape, [0, 5])
    }

    func testRawValuesRoundTripForEveryIntegerAndDoubleType() {
        XCTAssertEqual(SafeTensorsEntry(shape: [3], values: [Int8(-128), 0, 127]).values(as: Int8.self), [-128, 0, 127])
        XCTAssertEqual(SafeTensorsEntry(shape: [2], values: [UInt8(0), 255]).values(as: UInt8.self), [0, 255])
        XCTAssertEqual(SafeTensorsEntry(shape: [1], values: [Int32.min]).values(as: Int32.self), [Int32.min])
        XCTAssertEqual(SafeTensorsEntry(shape: [], values: [Int64.max]).values(as: Int64.self), [Int64.max])
        XCTAssertEqual(SafeTensorsEntry(shape: [2], values: [1.5, -0.25]).values(as: Double.self), [1.5, -0.25])
        let int32 = SafeTensorsEntry(shape: [1], values: [Int32(0x0102_0304)])
        XCTAssertEqual(Array(int32.bytes), [0x04, 0x03, 0x02, 0x01], "elements are little-endian")
        XCTAssertEqual(int32.dtype.byteSize, 4)
    }

    func testConversionToAnotherTypeIsNil() {
        let mask = SafeTensorsEntry(shape: [2], values: [UInt8(1), 0])
        XCTAssertNil(mask.tensor)
        XCTAssertNil(mask.values(as: Int8.self))
        XCTAssertNil(SafeTensorsEntry(Tensor(scalar: 1)).values(as: Int32.self))
    }
}
