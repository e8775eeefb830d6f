import ECTraining
import Foundation
import XCTest

/// The gzip path, exercised through `IDXReader.read` (the inflater itself is internal).
final class GzipInflaterTests: XCTestCase {
    private let labels = DataFixtures.labelsIDX((0..<200).map { UInt8($0 % 10) })

    private func read(_ bytes: [UInt8]) throws -> IDXFile {
        let dir = try DataFixtures.temporaryDirectory(for: self)
        return try IDXReader.read(path: DataFixtures.write(bytes, to: dir, name: "f.gz"), dimensionCount: 1)
    }

    func testLargeOutputGrowsTheBuffer() throws {
        // Stored blocks make the compressed size ~ the raw size; 300 kB exceeds the first buffer.
        let big = DataFixtures.labelsIDX((0..<300_000).map { UInt8($0 % 7) })
        XCTAssertEqual(try read(DataFixtures.gzip(big)).values.count, 300_000)
    }

    func testTruncatedGzipIsAnError() throws {
        let gz = DataFixtures.gzip(labels)
        for cut in [1, 4, 8, 20, gz.count / 2] {
            assertDataError(try read(Array(gz.dropLast(cut))), "cut \(cut)") {
                if case .truncatedGzip = $0 { return true }
                return false
            }
        }
    }

    func testRealTruncatedGzipIsAnError() throws {
        let path = Dataset.defaultDirectory + "/t10k-labels-idx1-ubyte.gz"
        let gz = [UInt8](try Data(contentsOf: URL(fileURLWithPath: path)))
        assertDataError(try read(Array(gz.prefix(gz.count - 100)))) {
            if case .truncatedGzip = $0 { return true }
            return false
        }
    }

    func testBadChecksumIsAnError() throws {
        var gz = DataFixtures.gzip(labels)
        gz[gz.count - 8] ^= 0xff
        assertDataError(try read(gz)) {
            if case let .corruptGzip(_, reason) = $0 { return reason.contains("Z_DATA_ERROR") }
            return false
        }
    }

    func testConcatenatedMembersDecodeToTheirConcatenation() throws {
        let split = 30
        let gz = DataFixtures.gzip(Array(labels[..<split])) + DataFixtures.gzip(Array(labels[split...]))
        XCTAssertEqual(try read(gz).values, Array(labels[8...]))
    }

    func testTrailingGarbageAfterTheStreamIsAnError() throws {
        assertDataError(try read(DataFixtures.gzip(labels) + [0, 0, 0])) {
            if case let .corruptGzip(_, reason) = $0 { return reason.contains("3 trailing bytes") }
            return false
        }
    }

    func testEveryTruncationAndByteFlipIsAnErrorNotACrash() throws {
        let dir = try DataFixtures.temporaryDirectory(for: self)
        let gz = DataFixtures.gzip(DataFixtures.labelsIDX([1, 2, 3, 4, 5]))
        let path = dir.appendingPathComponent("fuzz.gz").path
        for cut in 0..<gz.count {
            try Data(gz.prefix(cut)).write(to: URL(fileURLWithPath: path))
            XCTAssertThrowsError(try IDXReader.read(path: path, dimensionCount: 1), "prefix \(cut)")
        }
        for index in 0..<gz.count {
            var flipped = gz
            flipped[index] ^= 0x5a
            try Data(flipped).write(to: URL(fileURLWithPath: path))
            if (4..<10).contains(index) {
                _ = try? IDXReader.read(path: path, dimensionCount: 1)  // mtime, flags, OS: not checked
            } else {
                XCTAssertThrowsError(try IDXReader.read(path: path, dimensionCount: 1), "flip at \(index)")
            }
        }
    }
}
