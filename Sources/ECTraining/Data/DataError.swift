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

    // MARK: NumPy arrays (`format: npy` and `format: npz`)

    /// A file the job's `dataset.<key>` names does not exist.
    case missingDataFile(path: String, key: String)
    /// A `.npy` file (or an `.npz` member: `path` is `archive.npz (member x.npy)`) is malformed.
    case badNPY(path: String, problem: NPYProblem)
    /// An `.npz` file is not a readable ZIP archive.
    case badNPZ(path: String, problem: NPZProblem)
    /// An `.npz` archive has no member `member` (`found` lists the ones it has).
    case missingMember(path: String, member: String, found: [String])
    /// An `.npz` member's data do not have the CRC-32 its directory entry gives.
    case crcMismatch(path: String, member: String, expected: UInt32, computed: UInt32)
    /// A well-formed array that cannot be images or labels: its shape or dtype (`expected` says
    /// what is taken).
    case unsuitableArray(path: String, shape: [Int], dtype: String, expected: String)
    /// A 4-dimensional `x` whose layout (NHWC or NCHW) cannot be told from its shape.
    case ambiguousLayout(path: String, shape: [Int])
    /// The training and test images differ in height, width or channels.
    case imageShapeMismatch(trainPath: String, trainShape: [Int], testPath: String, testShape: [Int])
    /// A label that is no class index: negative, not an integer, or beyond any class count.
    case invalidLabel(path: String, index: Int, value: String, reason: String)
    /// An image holds NaN or an infinity (after normalisation).
    case nonFiniteValue(path: String, sample: Int)

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
        case .missingDataFile:
            return "check the path in the job file (relative paths start from the directory easycompress runs in)"
        case .badNPY, .badNPZ, .crcMismatch:
            return "the file is damaged or was not written by NumPy; write it again with np.save / np.savez "
                + "(docs/training.md, \"Data from arrays\")"
        case .missingMember:
            return "write the archive with np.savez(FILE, x=images, y=labels) (or np.savez_compressed)"
        case .unsuitableArray:
            return "x must be images N×H×W, N×H×W×C or N×C×H×W of uint8, float32 or float64; y one integer "
                + "class index per image, shape (N,) or (N, 1) (docs/training.md, \"Data from arrays\")"
        case .ambiguousLayout:
            return "give the layout under dataset: `layout: nhwc` (N×H×W×C) or `layout: nchw` (N×C×H×W)"
        case .imageShapeMismatch:
            return "the training and test images must have the same height, width and channels"
        case .invalidLabel:
            return "labels must be class indices 0, 1, …, classes − 1 (np.argmax(y, axis=1) turns one-hot rows into indices)"
        case .nonFiniteValue:
            return "replace NaN and infinite values (np.nan_to_num) or drop those images; check scale, mean and std"
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
        case let .missingDataFile(path, key):
            return "\(path): file not found (dataset.\(key))"
        case let .badNPY(path, problem):
            return "\(path): not a valid .npy array: \(problem.text)"
        case let .badNPZ(path, problem):
            return "\(path): not a valid .npz archive: \(problem.text)"
        case let .missingMember(path, member, found):
            let members = found.isEmpty ? "none" : found.joined(separator: ", ")
            return "\(path): the archive has no member \(member) (it has: \(members))"
        case let .crcMismatch(path, member, expected, computed):
            return "\(path): member \(member) is corrupt: CRC-32 \(String(format: "%08x", computed)) "
                + "where the archive records \(String(format: "%08x", expected))"
        case let .unsuitableArray(path, shape, dtype, expected):
            return "\(path): array of shape \(NPYProblem.tuple(shape)) and dtype \(dtype) cannot be used: expected \(expected)"
        case let .ambiguousLayout(path, shape):
            return "\(path): cannot tell whether images of shape \(NPYProblem.tuple(shape)) are NHWC or NCHW "
                + "(the channel axis is the one of size 1 or 3, and here both or neither are)"
        case let .imageShapeMismatch(trainPath, trainShape, testPath, testShape):
            return "training images are \(DataError.dims(trainShape)) (\(trainPath)) but test images are "
                + "\(DataError.dims(testShape)) (\(testPath))"
        case let .invalidLabel(path, index, value, reason):
            return "\(path): label \(value) at index \(index) \(reason)"
        case let .nonFiniteValue(path, sample):
            return "\(path): image \(sample) holds NaN or an infinite value"
        }
    }
}

extension DataError {
    /// `32×32×3`: an image shape `[H, W, C]` as messages print it.
    static func dims(_ shape: [Int]) -> String { shape.map(String.init).joined(separator: "×") }
}

extension DataError: CustomStringConvertible, LocalizedError {
    public var description: String { "\(problem). Hint: \(hint)" }
    public var errorDescription: String? { description }
}
