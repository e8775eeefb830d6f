import ECTensor
import Foundation

/// Which half of an MNIST-style dataset to load.
public enum DatasetSplit: String, Codable, CaseIterable {
    /// `train-images-idx3-ubyte` / `train-labels-idx1-ubyte` (60 000 samples in Fashion-MNIST).
    case train
    /// `t10k-images-idx3-ubyte` / `t10k-labels-idx1-ubyte` (10 000 samples in Fashion-MNIST).
    case test

    /// The file-name prefix of the split (`train` or `t10k`).
    public var filePrefix: String { self == .train ? "train" : "t10k" }
}

extension Dataset {
    /// Where Debian's `dataset-fashion-mnist` package installs Fashion-MNIST.
    public static let defaultDirectory = "/usr/share/datasets/fashion-mnist"

    /// Loads one split from a directory in the MNIST/Fashion-MNIST file naming.
    ///
    /// Each file is `<prefix>-images-idx3-ubyte` / `<prefix>-labels-idx1-ubyte`, raw or with a
    /// `.gz` suffix (the raw file is preferred when both exist; compression is detected from the
    /// content). Images become `[N, rows, cols, 1]` with pixel / 255.
    ///
    /// - Parameters:
    ///   - split: `.train` or `.test`.
    ///   - directory: the directory holding the files; `Dataset.defaultDirectory` by default.
    ///   - limit: keep only the first `limit` samples (quick runs); `nil` keeps all. The whole
    ///     files are still validated.
    ///   - classes: labels must lie in `0..<classes`.
    /// - Throws: `DataError` naming the file and the problem; see `IDXReader`, plus
    ///   `.missingFile`, `.countMismatch`, `.labelOutOfRange`, `.invalidDimensions` (zero rows or
    ///   columns), `.invalidOption` (negative `limit`, `classes` outside 1...256).
    public static func load(_ split: DatasetSplit, directory: String = Dataset.defaultDirectory,
                            limit: Int? = nil, classes: Int = 10) throws -> Dataset {
        let isDefault = standardized(directory) == standardized(defaultDirectory)
        let images = try locate("\(split.filePrefix)-images-idx3-ubyte", in: directory, isDefault: isDefault)
        let labels = try locate("\(split.filePrefix)-labels-idx1-ubyte", in: directory, isDefault: isDefault)
        return try load(imagesPath: images, labelsPath: labels, limit: limit, classes: classes)
    }

    /// Loads an images file (IDX, 3 dimensions) and a labels file (IDX, 1 dimension), each raw or
    /// gzip. Same validation, `limit` and `classes` as `load(_:directory:limit:classes:)`.
    public static func load(imagesPath: String, labelsPath: String, limit: Int? = nil,
                            classes: Int = 10) throws -> Dataset {
        if let limit, limit < 0 {
            throw DataError.invalidOption(name: "limit", value: "\(limit)", expected: ">= 0")
        }
        guard (1...256).contains(classes) else {
            throw DataError.invalidOption(name: "classes", value: "\(classes)", expected: "in 1...256")
        }
        let imageFile = try IDXReader.read(path: imagesPath, dimensionCount: 3)
        let labelFile = try IDXReader.read(path: labelsPath, dimensionCount: 1)
        let (total, rows, cols) = (imageFile.dimensions[0], imageFile.dimensions[1], imageFile.dimensions[2])
        guard rows > 0, cols > 0 else {
            throw DataError.invalidDimensions(path: imagesPath, dimensions: imageFile.dimensions,
                                              reason: "images need at least one row and one column")
        }
        guard labelFile.dimensions[0] == total else {
            throw DataError.countMismatch(imagesPath: imagesPath, imageCount: total,
                                          labelsPath: labelsPath, labelCount: labelFile.dimensions[0])
        }
        if let bad = labelFile.values.firstIndex(where: { Int($0) >= classes }) {
            throw DataError.labelOutOfRange(path: labelsPath, index: bad, label: Int(labelFile.values[bad]),
                                            classes: classes)
        }

        let n = min(limit ?? total, total)
        let pixels = n == total ? imageFile.values : Array(imageFile.values[0..<(n * rows * cols)])
        let labels = labelFile.values[0..<n].map { Int32($0) }
        return Dataset(pixels: pixels, shape: [n, rows, cols, 1], labels: labels, classes: classes)
    }

    /// The path of `name` in `directory`: the raw file if present, else `name.gz`.
    static func locate(_ name: String, in directory: String, isDefault: Bool) throws -> String {
        let raw = directory.hasSuffix("/") ? directory + name : directory + "/" + name
        for candidate in [raw, raw + ".gz"] where FileManager.default.fileExists(atPath: candidate) {
            return candidate
        }
        throw DataError.missingFile(path: raw, isDefaultDataset: isDefault)
    }

    static func standardized(_ path: String) -> String {
        URL(fileURLWithPath: path).standardizedFileURL.path
    }
}
