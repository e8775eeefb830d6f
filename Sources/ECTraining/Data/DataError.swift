import Foundation

/// A problem with a dataset file or a data-pipeline option (tier 2: user or environment error).
///
/// Each file case names the file and what was wrong with it; `hint` says what to do about it.
/// `description` combines both: `"<path>: <problem>. Hint: <hint>"`.
public enum DataError: Error, Equatable {
    /// The file does not exist (neither raw nor `.gz`). `isDefaultDataset` is true when it was
    /// looked up in `Dataset.defaultDirectory`, whose files come from a Debian package.
    case missingFile(path: String, isDefaultDataset: Bool)
    /// The file exists but could not be read (permissions, a directory, an I/O error).
    case unreadableFile(path: String, reason: String)
    /// The file is shorter than its IDX header (4 bytes, then 4 bytes per dimension).
    case truncatedHeader(path: String, byteCount: Int, expectedAtLeast: Int)
    /// The first two bytes are not zero: not an IDX file (nor gzip, whose magic is `1f 8b`).
    case badMagic(path: String, found: [UInt8])
    /// The IDX type byte is not `0x08` (unsigned byte), the only type MNIST-style files use.
    case unsupportedDataType(path: String, typeByte: UInt8)
    /// The IDX dimension count is not the expected one (3 for images, 1 for labels).
    case wrongDimensionCount(path: String, expected: Int, found: Int)
    /// The dimensions are unusable (zero image rows/columns, or a size that overflows).
    case invalidDimensions(path: String, dimensions: [Int], reason: String)
    /// Fewer data bytes than the product of the dimensions.
    case truncatedData(path: String, expectedBytes: Int, foundBytes: Int)
    /// More data bytes than the product of the dimensions.
    case trailingBytes(path: String, expectedBytes: Int, foundBytes: Int)
    /// zlib rejected the gzip stream (bad header, bad CRC, invalid deflate data, trailing garbage).
    case corruptGzip(path: String, reason: String)
    /// The gzip stream ends before its end-of-stream marker and trailer.
    case truncatedGzip(path: String)
    /// The images file and the labels file hold different numbers of samples.
    case countMismatch(imagesPath: String, imageCount: Int, labelsPath: String, labelCount: Int)
    /// A label is not in `0..<classes`.
    case labelOutOfRange(path: String, index: Int, label: Int, classes: Int)
    /// A data-pipeline option is out of range (`batch_size`, `limit`, `classes`, a resume position).
    case invalidOption(name: String, value: String, expected: String)

    /// What the user can do about the error.
    public var hint: String {
        switch self {
        case .missingFile(_, true):
            return "install the Debian package dataset-fashion-mnist: `apt-get install dataset-fashion-mnist`"
        case .missingFile:
            return "the directory must hold train-images-idx3-ubyte, train-labels-idx1-ubyte, "
                + "t10k-images-idx3-ubyte and t10k-labels-idx1-ubyte, each raw or with a .gz suffix"
        case .unreadableFile:
            return "check the path and its permissions"
        case .truncatedHeader, .badMagic, .unsupportedDataType, .wrongDimensionCount, .invalidDimensions,
             .truncatedData, .trailingBytes, .corruptGzip, .truncatedGzip:
            return "the file is damaged or not an MNIST-style IDX file (unsigned bytes, 3 dimensions for "
                + "images, 1 for labels); restore it (default dataset: `apt-get install --reinstall "
                + "dataset-fashion-mnist`)"
        case .countMismatch:
            return "images and labels must come from the same split (train-* with train-*, t10k-* with t10k-*)"
        case .labelOutOfRange:
            return "the labels file does not match the number of classes; check `classes` or restore the file"
        case .invalidOption:
            return "fix the value in the job configuration"
        }
    }

    /// The problem, without the hint.
    public var problem: String {
        switch self {
        case let .missingFile(path, _):
            return "\(path): file not found (looked for the raw file and for \(path).gz)"
        case let .unreadableFile(path, reason):
            return "\(path): cannot read the file: \(reason)"
        case let .truncatedHeader(path, count, expected):
            return "\(path): IDX header truncated: file has \(count) bytes, header needs at least \(expected)"
        case let .badMagic(path, found):
            let hex = found.map { String(format: "%02x", $0) }.joined(separator: " ")
            return "\(path): bad magic: expected 00 00 08 <dims> (IDX) or 1f 8b (gzip), found \(hex)"
        case let .unsupportedDataType(path, type):
            return "\(path): IDX data type 0x\(String(format: "%02x", type)) unsupported, expected 0x08 (unsigned byte)"
        case let .wrongDimensionCount(path, expected, found):
            return "\(path): IDX file has \(found) dimensions, expected \(expected)"
        case let .invalidDimensions(path, dims, reason):
            return "\(path): invalid IDX dimensions \(dims): \(reason)"
        case let .truncatedData(path, expected, found):
            return "\(path): data truncated: dimensions need \(expected) bytes, file has \(found)"
        case let .trailingBytes(path, expected, found):
            return "\(path): \(found - expected) trailing bytes: dimensions need \(expected) bytes, file has \(found)"
        case let .corruptGzip(path, reason):
            return "\(path): corrupt gzip data: \(reason)"
        case let .truncatedGzip(path):
            return "\(path): gzip stream truncated (ends before its end marker and trailer)"
        case let .countMismatch(imagesPath, images, labelsPath, labels):
            return "\(imagesPath) has \(images) images but \(labelsPath) has \(labels) labels"
        case let .labelOutOfRange(path, index, label, classes):
            return "\(path): label \(label) at index \(index) is outside 0..<\(classes)"
        case let .invalidOption(name, value, expected):
            return "\(name) must be \(expected), got \(value)"
        }
    }
}

extension DataError: CustomStringConvertible, LocalizedError {
    public var description: String { "\(problem). Hint: \(hint)" }
    public var errorDescription: String? { description }
}
