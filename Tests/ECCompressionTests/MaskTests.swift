@testable import ECCompression
import ECTensor
import XCTest

final class MaskTests: XCTestCase {
    /// Element i is bit i % 8 of byte i / 8 (LSB-first), worked by hand:
    /// [1,0,1,1,0,0,0,0] → 0b0000_1101 = 0x0D; [1] → 0x01; unused high bits are zero.
    func testBitOrderIsLeastSignificantBitFirst() {
        let mask = Mask([true, false, true, true, false, false, false, false, true])
        XCTAssertEqual(mask.packedBytes, [0x0D, 0x01])
        XCTAssertEqual(Mask([false, false, false, false, false, false, false, true]).packedBytes, [0x80])
        XCTAssertEqual(Mask([true, true, true, true, true, true, true, true, false, true]).packedBytes, [0xFF, 0x02])
        XCTAssertEqual(Mask(shape: [9], packedBytes: [0x0D, 0x01]), mask)
    }

    func testPackingRoundTripsForOddLengths() {
        var rng = RNG(seed: 7)
        for length in [0, 1, 7, 8, 9, 15, 16, 17, 1000, 100_001] {
            let mask = Mask((0..<length).map { _ in rng.next() % 3 == 0 })
            let packed = mask.packedBytes
            XCTAssertEqual(packed.count, (length + 7) / 8, "length \(length)")
            XCTAssertEqual(Mask.packedByteCount(length), (length + 7) / 8)
            XCTAssertEqual(Mask(shape: [length], packedBytes: packed[...]), mask, "length \(length)")
        }
        XCTAssertEqual(Mask.packedByteCount(Int.max), Int.max / 8 + 1)
    }

    func testShapesScalarsAndCounts() {
        let scalar = Mask(shape: [], values: [true])
        XCTAssertEqual(scalar.count, 1)
        XCTAssertEqual(scalar.packedBytes, [0x01])
        let grid = Mask(shape: [2, 3], repeating: false)
        XCTAssertEqual(grid.count, 6)
        XCTAssertEqual(grid.keptCount, 0)
        XCTAssertEqual(Mask(shape: [4, 0], values: []).packedBytes, [])
    }

    func testConvertsToAndFromTensors() {
        let tensor = Tensor(shape: [2, 2], scalars: [0, -3, .nan, 0])
        let mask = Mask(nonZerosOf: tensor)
        XCTAssertEqual(mask, Mask(shape: [2, 2], values: [false, true, true, false]))
        XCTAssertEqual(mask.keptCount, 2)
        XCTAssertEqual(mask.tensor, Tensor(shape: [2, 2], scalars: [0, 1, 1, 0]))
    }
}
