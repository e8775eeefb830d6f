import Foundation

/// The contents of an IDX file of unsigned bytes (LeCun's MNIST format).
public struct IDXFile: Equatable {
    /// The dimensions from the header, outermost first (`[count, rows, columns]` for images).
    public let dimensions: [Int]
    /// The data bytes, row-major; `values.count` is the product of `dimensions`.
    public let values: [UInt8]
}

/// Reads IDX files, raw or gzip-compressed, validating every byte of the layout.
///
/// Layout: two zero bytes, a type byte (`0x08` = unsigned byte, the only type accepted), a
/// dimension-count byte `d`, `d` big-endian UInt32 dimensions, then exactly
/// `dimensions.reduce(1, *)` data bytes. A file that starts with `1f 8b` is inflated first
/// (see `GzipInflater`); compression is detected from the content, not the file name.
public enum IDXReader {
    /// Reads and validates the IDX file at `path`.
    ///
    /// - Parameter dimensionCount: the required number of dimensions (3 for images, 1 for labels).
    /// - Throws: `DataError` — `missingFile`, `unreadableFile`, the gzip cases, or any `parse` case.
    public static func read(path: String, dimensionCount: Int) throws -> IDXFile {
        let bytes = try readBytes(path: path)
        let raw = GzipInflater.isGzip(bytes) ? try GzipInflater.inflate(bytes, path: path) : bytes
        return try parse(raw, path: path, dimensionCount: dimensionCount)
    }

    /// Parses uncompressed IDX bytes; `path` is only used in error messages.
    ///
    /// - Throws: `DataError.truncatedHeader`, `.badMagic`, `.unsupportedDataType`,
    ///   `.wrongDimensionCount`, `.invalidDimensions`, `.truncatedData` or `.trailingBytes`.
    public static func parse(_ bytes: [UInt8], path: String, dimensionCount: Int) throws -> IDXFile {
        guard bytes.count >= 4 else {
            throw DataError.truncatedHeader(path: path, byteCount: bytes.count, expectedAtLeast: 4)
        }
        guard bytes[0] == 0, bytes[1] == 0 else {
            throw DataError.badMagic(path: path, found: Array(bytes[0..<4]))
        }
        guard bytes[2] == 0x08 else { throw DataError.unsupportedDataType(path: path, typeByte: bytes[2]) }
        guard Int(bytes[3]) == dimensionCount else {
            throw DataError.wrongDimensionCount(path: path, expected: dimensionCount, found: Int(bytes[3]))
        }
        let headerBytes = 4 + 4 * dimensionCount
        guard bytes.count >= headerBytes else {
            throw DataError.truncatedHeader(path: path, byteCount: bytes.count, expectedAtLeast: headerBytes)
        }
        var dimensions: [Int] = []
        var expectedBytes = 1
        for d in 0..<dimensionCount {
            let o = 4 + 4 * d
            let dim = Int(bytes[o]) << 24 | Int(bytes[o + 1]) << 16 | Int(bytes[o + 2]) << 8 | Int(bytes[o + 3])
            dimensions.append(dim)
            let (product, overflow) = expectedBytes.multipliedReportingOverflow(by: dim)
            guard !overflow else {
                throw DataError.invalidDimensions(path: path, dimensions: dimensions, reason: "size overflows")
            }
            expectedBytes = product
        }
        let dataBytes = bytes.count - headerBytes
        if dataBytes < expectedBytes {
            throw DataError.truncatedData(path: path, expectedBytes: expectedBytes, foundBytes: dataBytes)
        }
        if dataBytes > expectedBytes {
            throw DataError.trailingBytes(path: path, expectedBytes: expectedBytes, foundBytes: dataBytes)
        }
        return IDXFile(dimensions: dimensions, values: Array(bytes[headerBytes...]))
    }

    /// The bytes of the file at `path`, mapping I/O failures to `DataError`.
    static func readBytes(path: String) throws -> [UInt8] {
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) else {
            throw DataError.missingFile(path: path, isDefaultDataset: false)
        }
        guard !isDirectory.boolValue else { throw DataError.unreadableFile(path: path, reason: "is a directory") }
        do {
            return [UInt8](try Data(contentsOf: URL(fileURLWithPath: path)))
        } catch {
            throw DataError.unreadableFile(path: path, reason: error.localizedDescription)
        }
    }
}
