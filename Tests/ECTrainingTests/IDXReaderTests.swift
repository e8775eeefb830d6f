import ECTraining
import XCTest

final class IDXReaderTests: XCTestCase {
    func testParsesDimensionsAndValues() throws {
        let file = try IDXReader.parse(DataFixtures.idx(dimensions: [2, 1, 3], values: [1, 2, 3, 4, 5, 6]),
                                       path: "x", dimensionCount: 3)
        XCTAssertEqual(file.dimensions, [2, 1, 3])
        XCTAssertEqual(file.values, [1, 2, 3, 4, 5, 6])
    }

    func testReadsBigEndianDimensionsAbove255() throws {
        let file = try IDXReader.parse(DataFixtures.labelsIDX(Array(repeating: 3, count: 300)),
                                       path: "x", dimensionCount: 1)
        XCTAssertEqual(file.dimensions, [300])
    }

    func testRawAndGzipFilesReadTheSame() throws {
        let dir = try DataFixtures.temporaryDirectory(for: self)
        let bytes = DataFixtures.imagesIDX(count: 3)
        let raw = try DataFixtures.write(bytes, to: dir, name: "raw")
        let gz = try DataFixtures.write(DataFixtures.gzip(bytes), to: dir, name: "compressed")
        XCTAssertEqual(try IDXReader.read(path: raw, dimensionCount: 3), try IDXReader.read(path: gz, dimensionCount: 3))
    }

    func testBadMagic() {
        assertDataError(try IDXReader.parse([1, 0, 8, 1, 0, 0, 0, 0], path: "f", dimensionCount: 1)) {
            $0 == .badMagic(path: "f", found: [1, 0, 8, 1])
        }
    }

    func testWrongDataTypeByte() {
        let bytes = DataFixtures.idx(dimensions: [1], values: [0, 0, 0, 0], type: 0x0d)  // 0x0d = float
        assertDataError(try IDXReader.parse(bytes, path: "f", dimensionCount: 1)) {
            $0 == .unsupportedDataType(path: "f", typeByte: 0x0d)
        }
    }

    func testWrongDimensionCount() {
        assertDataError(try IDXReader.parse(DataFixtures.labelsIDX([1, 2]), path: "f", dimensionCount: 3)) {
            $0 == .wrongDimensionCount(path: "f", expected: 3, found: 1)
        }
    }

    func testTruncatedHeader() {
        assertDataError(try IDXReader.parse([0, 0], path: "f", dimensionCount: 1)) {
            $0 == .truncatedHeader(path: "f", byteCount: 2, expectedAtLeast: 4)
        }
        assertDataError(try IDXReader.parse([0, 0, 8, 3, 0, 0, 0, 1, 0], path: "f", dimensionCount: 3)) {
            $0 == .truncatedHeader(path: "f", byteCount: 9, expectedAtLeast: 16)
        }
    }

    func testTruncatedData() {
        let bytes = DataFixtures.imagesIDX(count: 2, rows: 2, cols: 2).dropLast()
        assertDataError(try IDXReader.parse(Array(bytes), path: "f", dimensionCount: 3)) {
            $0 == .truncatedData(path: "f", expectedBytes: 8, foundBytes: 7)
        }
    }

    func testTrailingBytes() {
        let bytes = DataFixtures.labelsIDX([1, 2, 3]) + [0]
        assertDataError(try IDXReader.parse(bytes, path: "f", dimensionCount: 1)) {
            $0 == .trailingBytes(path: "f", expectedBytes: 3, foundBytes: 4)
        }
    }

    func testHugeDimensionsAreAnErrorNotACrash() {
        let bytes: [UInt8] = [0, 0, 8, 3] + Array(repeating: 0xff, count: 12)
        assertDataError(try IDXReader.parse(bytes, path: "f", dimensionCount: 3)) {
            if case .truncatedData = $0 { return true }
            if case .invalidDimensions = $0 { return true }
            return false
        }
    }

    func testMissingFileAndDirectory() throws {
        let dir = try DataFixtures.temporaryDirectory(for: self)
        let missing = dir.appendingPathComponent("nope").path
        assertDataError(try IDXReader.read(path: missing, dimensionCount: 1)) {
            $0 == .missingFile(path: missing, isDefaultDataset: false)
        }
        assertDataError(try IDXReader.read(path: dir.path, dimensionCount: 1)) {
            if case .unreadableFile(dir.path, _) = $0 { return true }
            return false
        }
    }
}
