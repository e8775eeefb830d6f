import ECTensor
import ECTraining
import Foundation
import XCTest

/// Builders for small IDX / gzip files and assertions shared by the data tests.
enum DataFixtures {
    /// An IDX file: magic `00 00 type dims`, big-endian UInt32 dimensions, then `values`.
    static func idx(dimensions: [Int], values: [UInt8], type: UInt8 = 0x08) -> [UInt8] {
        var bytes: [UInt8] = [0, 0, type, UInt8(dimensions.count)]
        for d in dimensions { bytes += [UInt8(d >> 24 & 0xff), UInt8(d >> 16 & 0xff), UInt8(d >> 8 & 0xff), UInt8(d & 0xff)] }
        return bytes + values
    }

    /// `count` images of `rows`×`cols` whose pixels are `(sample * 7 + pixel) % 256`.
    static func imagesIDX(count: Int, rows: Int = 28, cols: Int = 28) -> [UInt8] {
        let values = (0..<(count * rows * cols)).map { UInt8(($0 / (rows * cols) * 7 + $0 % (rows * cols)) % 256) }
        return idx(dimensions: [count, rows, cols], values: values)
    }

    static func labelsIDX(_ labels: [UInt8]) -> [UInt8] { idx(dimensions: [labels.count], values: labels) }

    /// A single gzip member holding `data` in stored (uncompressed) deflate blocks (RFC 1951/1952),
    /// so tests need no compressor.
    static func gzip(_ data: [UInt8]) -> [UInt8] {
        var out: [UInt8] = [0x1f, 0x8b, 0x08, 0, 0, 0, 0, 0, 0, 0xff]
        var offset = 0
        repeat {
            let length = min(65_535, data.count - offset)
            let isLast = offset + length == data.count
            out.append(isLast ? 1 : 0)
            out += [UInt8(length & 0xff), UInt8(length >> 8), UInt8(~length & 0xff), UInt8(~length >> 8 & 0xff)]
            out += data[offset..<(offset + length)]
            offset += length
        } while offset < data.count
        return out + littleEndian(crc32(data)) + littleEndian(UInt32(truncatingIfNeeded: data.count))
    }

    static func crc32(_ data: [UInt8]) -> UInt32 {
        var crc: UInt32 = 0xffff_ffff
        for byte in data {
            crc ^= UInt32(byte)
            for _ in 0..<8 { crc = crc & 1 == 1 ? (crc >> 1) ^ 0xedb8_8320 : crc >> 1 }
        }
        return ~crc
    }

    private static func littleEndian(_ x: UInt32) -> [UInt8] { (0..<4).map { UInt8(x >> (8 * $0) & 0xff) } }

    /// A fresh temporary directory, removed at the end of the test.
    static func temporaryDirectory(for test: XCTestCase) throws -> URL {
        let url = FileManager.default.temporaryDirectory
            .appendingPathComponent("ec-data-tests-\(UUID().uuidString)", isDirectory: true)
        try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
        test.addTeardownBlock { try? FileManager.default.removeItem(at: url) }
        return url
    }

    /// Writes `bytes` to `directory/name` and returns its path.
    @discardableResult
    static func write(_ bytes: [UInt8], to directory: URL, name: String) throws -> String {
        let url = directory.appendingPathComponent(name)
        try Data(bytes).write(to: url)
        return url.path
    }

    /// A dataset of `count` 2×2 images whose pixels all equal the sample index, labels `index % 10`.
    static func indexedDataset(count: Int) -> Dataset {
        let pixels = (0..<count).flatMap { Array(repeating: Float($0), count: 4) }
        return Dataset(images: Tensor(shape: [count, 2, 2, 1], scalars: pixels),
                       labels: (0..<count).map { Int32($0 % 10) }, classes: 10)
    }

    /// The sample indices encoded in images of an `indexedDataset`.
    static func sampleIndices(of images: Tensor) -> [Int] {
        let scalars = images.scalars
        return stride(from: 0, to: scalars.count, by: 4).map { Int(scalars[$0]) }
    }
}

/// Asserts that `expression` throws a `DataError` for which `matches` holds.
func assertDataError<T>(_ expression: @autoclosure () throws -> T, _ message: String = "",
                        file: StaticString = #filePath, line: UInt = #line,
                        matches: (DataError) -> Bool) {
    do {
        _ = try expression()
        XCTFail("expected a DataError, nothing was thrown. \(message)", file: file, line: line)
    } catch let error as DataError {
        XCTAssertTrue(matches(error), "unexpected DataError: \(error). \(message)", file: file, line: line)
    } catch {
        XCTFail("expected a DataError, got \(error). \(message)", file: file, line: line)
    }
}
