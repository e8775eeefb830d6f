import ECTensor
import ECTraining
import Foundation
import XCTest

final class DatasetTests: XCTestCase {
    /// The real Fashion-MNIST test split, loaded once for the tests that only read it.
    private static var cachedTest: Dataset?

    private func realTest() throws -> Dataset {
        if let cached = Self.cachedTest { return cached }
        let test = try Dataset.load(.test)
        Self.cachedTest = test
        return test
    }

    private func assertPixelsInUnitRange(_ images: Tensor, file: StaticString = #filePath, line: UInt = #line) {
        let (low, high) = images.withUnsafeBufferPointer { ($0.min() ?? 0, $0.max() ?? 0) }
        XCTAssertEqual(low, 0, file: file, line: line)
        XCTAssertEqual(high, 1, file: file, line: line)
    }

    func testRealFashionMNISTTrainSplit() throws {
        let train = try Dataset.load(.train)
        XCTAssertEqual(train.count, 60_000)
        XCTAssertEqual(train.images.shape, [60_000, 28, 28, 1])
        XCTAssertEqual(train.classes, 10)
        XCTAssertEqual(train.labels.first, 9)
        assertPixelsInUnitRange(train.images)
        XCTAssertEqual(Set(train.labels), Set(0..<10))
    }

    func testRealFashionMNISTTestSplit() throws {
        let test = try realTest()
        XCTAssertEqual(test.count, 10_000)
        XCTAssertEqual(test.images.shape, [10_000, 28, 28, 1])
        XCTAssertEqual(Array(test.labels.prefix(8)), [9, 2, 1, 1, 6, 1, 4, 6])
        assertPixelsInUnitRange(test.images)
        // Pixels are bytes / 255: every value times 255 is an integer.
        let sample = test.images.scalars.prefix(28 * 28 * 4)
        XCTAssertTrue(sample.allSatisfy { abs(($0 * 255).rounded() - $0 * 255) < 1e-4 })
    }

    func testRawFilesLoadLikeTheGzipOnes() throws {
        let test = try realTest()
        let dir = try DataFixtures.temporaryDirectory(for: self)
        let pixels = test.images.scalars.map { UInt8(($0 * 255).rounded()) }
        try DataFixtures.write(DataFixtures.idx(dimensions: [test.count, 28, 28], values: pixels),
                               to: dir, name: "t10k-images-idx3-ubyte")
        try DataFixtures.write(DataFixtures.labelsIDX(test.labels.map { UInt8($0) }),
                               to: dir, name: "t10k-labels-idx1-ubyte")
        let raw = try Dataset.load(.test, directory: dir.path)
        XCTAssertEqual(raw.images, test.images)
        XCTAssertEqual(raw.labels, test.labels)
    }

    func testLimitTakesTheFirstSamples() throws {
        let test = try realTest()
        let first = try Dataset.load(.test, limit: 8)
        XCTAssertEqual(first.count, 8)
        XCTAssertEqual(first.images, test.prefix(8).images)
        XCTAssertEqual(first.labels, [9, 2, 1, 1, 6, 1, 4, 6])
        XCTAssertEqual(try Dataset.load(.test, limit: 20_000).count, 10_000)
        XCTAssertEqual(try Dataset.load(.test, limit: 0).images.shape, [0, 28, 28, 1])
        assertDataError(try Dataset.load(.test, limit: -1)) {
            $0 == .invalidOption(name: "limit", value: "-1", expected: ">= 0")
        }
    }

    func testMissingFileNamesTheFileAndTheExpectedNames() throws {
        let dir = try DataFixtures.temporaryDirectory(for: self)
        let expected = dir.path + "/train-images-idx3-ubyte"
        assertDataError(try Dataset.load(.train, directory: dir.path)) {
            $0 == .missingFile(path: expected, isDefaultDataset: false)
                && $0.description.contains("train-labels-idx1-ubyte")
        }
    }

    func testMissingDefaultDatasetSaysWhichPackageToInstall() {
        let error = DataError.missingFile(path: Dataset.defaultDirectory + "/train-images-idx3-ubyte",
                                          isDefaultDataset: true)
        XCTAssertTrue(error.description.contains("apt-get install dataset-fashion-mnist"), error.description)
        XCTAssertTrue(error.localizedDescription.contains("/usr/share/datasets/fashion-mnist/train-images-idx3-ubyte"))
    }

    /// Writes a t10k pair into a temporary directory (images may be gzip) and loads it.
    private func loadPair(images: [UInt8], labels: [UInt8], imagesName: String = "t10k-images-idx3-ubyte",
                          classes: Int = 10) throws -> Dataset {
        let dir = try DataFixtures.temporaryDirectory(for: self)
        try DataFixtures.write(images, to: dir, name: imagesName)
        try DataFixtures.write(labels, to: dir, name: "t10k-labels-idx1-ubyte")
        return try Dataset.load(.test, directory: dir.path, classes: classes)
    }

    func testSmallPairLoadsPixelsOver255() throws {
        let data = try loadPair(images: DataFixtures.gzip(DataFixtures.imagesIDX(count: 3, rows: 2, cols: 3)),
                                labels: DataFixtures.labelsIDX([0, 9, 4]), imagesName: "t10k-images-idx3-ubyte.gz")
        XCTAssertEqual(data.images.shape, [3, 2, 3, 1])
        XCTAssertEqual(data.labels, [0, 9, 4])
        XCTAssertEqual(data.images[flat: 7], 8 / 255)  // sample 1, pixel 1: (1·7 + 1) % 256
    }

    func testEachCorruptImagesFileGivesItsError() throws {
        let good = DataFixtures.imagesIDX(count: 2, rows: 2, cols: 2)
        let labels = DataFixtures.labelsIDX([1, 2])
        var badMagic = good
        badMagic[1] = 0x01
        var badType = good
        badType[2] = 0x09
        let cases: [(String, [UInt8], (DataError) -> Bool)] = [
            ("bad magic", badMagic, { if case .badMagic = $0 { return true }; return false }),
            ("wrong dtype", badType, { if case .unsupportedDataType(_, 0x09) = $0 { return true }; return false }),
            ("truncated", Array(good.dropLast(3)),
             { if case .truncatedData(_, 8, 5) = $0 { return true }; return false }),
            ("trailing", good + [7], { if case .trailingBytes(_, 8, 9) = $0 { return true }; return false }),
            ("truncated gzip", Array(DataFixtures.gzip(good).dropLast(5)),
             { if case .truncatedGzip = $0 { return true }; return false }),
            ("labels as images", labels, { if case .wrongDimensionCount(_, 3, 1) = $0 { return true }; return false }),
            ("zero rows", DataFixtures.idx(dimensions: [2, 0, 5], values: []),
             { if case .invalidDimensions = $0 { return true }; return false }),
        ]
        for (name, bytes, matches) in cases {
            assertDataError(try loadPair(images: bytes, labels: labels), name) {
                matches($0) && $0.description.contains("t10k-images-idx3-ubyte")
            }
        }
    }

    func testImageAndLabelCountMismatch() throws {
        assertDataError(try loadPair(images: DataFixtures.imagesIDX(count: 3), labels: DataFixtures.labelsIDX([1, 2]))) {
            if case .countMismatch(_, 3, _, 2) = $0 { return true }
            return false
        }
    }

    func testLabelOutOfRange() throws {
        assertDataError(try loadPair(images: DataFixtures.imagesIDX(count: 3),
                                     labels: DataFixtures.labelsIDX([1, 10, 2]))) {
            if case let .labelOutOfRange(path, 1, 10, 10) = $0 { return path.hasSuffix("t10k-labels-idx1-ubyte") }
            return false
        }
        XCTAssertEqual(try loadPair(images: DataFixtures.imagesIDX(count: 3), labels: DataFixtures.labelsIDX([1, 10, 2]),
                                    classes: 11).labels, [1, 10, 2])
    }

    func testGatherCopiesRowsInOrder() {
        let data = DataFixtures.indexedDataset(count: 6)
        let (images, labels) = data.gather([4, 0, 4, 5])
        XCTAssertEqual(images.shape, [4, 2, 2, 1])
        XCTAssertEqual(DataFixtures.sampleIndices(of: images), [4, 0, 4, 5])
        XCTAssertEqual(labels, [4, 0, 4, 5])
        XCTAssertFalse(images.sharesStorage(with: data.images))
        XCTAssertEqual(data.gather([Int]()).images.shape, [0, 2, 2, 1])
    }
}
