import ECNN
import ECTensor
import Foundation

/// A job's data, loaded once from the job file's `dataset:` in any format (IDX, `.npz`, `.npy`)
/// and checked as a whole: the training and test images have the same shape, every label is a
/// class index, the class count is decided (`classes`, else the largest label of both splits
/// + 1) and the pixels are normalised.
///
/// The job runners (`TrainJob`, `EvalJob`, `ExportJob`, `FinetuneJob`, `ExportSource`) all load
/// their data through `load(_:train:)`, then build the model for `signature` (`JobConfig.makeModel(for:)`)
/// or check a model of fixed shape against it (`DataSignature.requireFits`) — before anything is
/// trained or written.
public struct JobData {
    /// The training split; nil when loaded with `.labelsOnly`.
    public let train: Dataset?
    /// The test split (`limit_test` applied).
    public let test: Dataset
    /// The image shape and class count the model must have.
    public let signature: DataSignature
    /// One line for the log: counts, shape, classes, storage and layout.
    public let summary: String

    /// How much of the training split to load.
    public enum TrainSplit: Equatable {
        /// All of it, or the first `limit_train` samples.
        case all
        /// The first `n` samples (e.g. calibration data).
        case first(Int)
        /// Only its labels (they still count towards the inferred class count); `train` is nil.
        case labelsOnly
    }

    /// Loads the job's data.
    ///
    /// - Throws: `DataError` naming the file and what is wrong with it (missing, malformed, an
    ///   unusable shape or dtype, an ambiguous layout, images of different shapes, a label
    ///   outside `0..<classes`, a non-finite pixel); `ConfigError` for `mean`/`std` lists whose
    ///   length does not match the channels.
    public static func load(_ config: JobConfig.DatasetConfig, train: TrainSplit = .all) throws -> JobData {
        let reader = SplitReader(config: config)
        let trainSplit = try reader.read(.train, images: train != .labelsOnly)
        let testSplit = try reader.read(.test, images: true)
        let testImages = testSplit.images!
        if let trainImages = trainSplit.images, trainImages.imageShape != testImages.imageShape {
            throw DataError.imageShapeMismatch(trainPath: trainImages.source, trainShape: trainImages.imageShape,
                                               testPath: testImages.source, testShape: testImages.imageShape)
        }

        // The class count: given (every label must be below it), or the largest label + 1.
        let classes: Int, classesSource: String
        if let given = config.classes {
            for split in [trainSplit, testSplit] {
                if let bad = split.labels.firstIndex(where: { Int($0) >= given }) {
                    throw DataError.labelOutOfRange(path: split.labelsPath, index: bad, label: Int(split.labels[bad]), classes: given)
                }
            }
            (classes, classesSource) = (given, "classes: \(given) in the job file")
        } else {
            let maxima = [trainSplit, testSplit].map { ($0.labels.max().map(Int.init) ?? -1, $0.labelsSource) }
            let top = maxima[1].0 > maxima[0].0 ? maxima[1] : maxima[0]
            classes = top.0 + 1
            classesSource = "labels 0…\(top.0) in \(top.1)"
        }
        let imageShape = testImages.imageShape
        let signature = DataSignature(imageShape: imageShape, classes: classes,
                                      imagesSource: trainSplit.images?.source ?? testImages.source, classesSource: classesSource)

        let trainLimit: Int?
        switch train {
        case .all: trainLimit = config.limitTrain
        case let .first(n):
            guard n >= 0 else { throw DataError.invalidOption(name: "limit", value: "\(n)", expected: ">= 0") }
            trainLimit = n
        case .labelsOnly: trainLimit = nil
        }
        let trainData = try trainSplit.images.map {
            try $0.dataset(limit: trainLimit, labels: trainSplit.labels, classes: classes, normalization: config.normalization)
        }
        let testData = try testImages.dataset(limit: config.limitTest, labels: testSplit.labels, classes: classes,
                                              normalization: config.normalization)
        let counts = trainData.map { "\($0.count) training and " } ?? ""
        let summary = "\(counts)\(testData.count) test images of \(DataError.dims(imageShape)), \(classes) classes "
            + "(\(classesSource)); \(testImages.describeStorage)"
        return JobData(train: trainData, test: testData, signature: signature, summary: summary)
    }
}

/// The facts about a job's data a model must agree with: the per-image shape `[H, W, C]` and the
/// class count, with where each came from (for messages).
public struct DataSignature: Equatable, Sendable {
    public let imageShape: [Int]
    public let classes: Int
    /// The images the shape was read from, e.g. `data/train.npz x`.
    public let imagesSource: String
    /// How the class count was decided, e.g. `labels 0…9 in data/train.npz y`.
    public let classesSource: String

    public init(imageShape: [Int], classes: Int, imagesSource: String, classesSource: String) {
        self.imageShape = imageShape
        self.classes = classes
        self.imagesSource = imagesSource
        self.classesSource = classesSource
    }

    /// The one check that data and model agree: `inputShape` and `classes` are what a model of
    /// fixed shape takes (an imported model, a fine-tuned extracted one); nil for what it builds
    /// to fit the data (zoo models: nothing to check).
    ///
    /// - Throws: `ConfigError.invalid` at `dataset`, one line per disagreement:
    ///   `images are 32×32×3 (train.npz x), model fmnist-cnn expects 28×28×1`,
    ///   `100 classes (labels 0…99 in train.npz y), model fmnist-cnn expects 10`.
    public func requireFits(modelNamed name: String, inputShape: [Int]?, classes modelClasses: Int?) throws {
        var problems: [String] = []
        if let inputShape, inputShape != imageShape {
            problems.append("images are \(DataError.dims(imageShape)) (\(imagesSource)), model \(name) expects "
                            + DataError.dims(inputShape))
        }
        if let modelClasses, modelClasses != classes {
            problems.append("\(classes) classes (\(classesSource)), model \(name) expects \(modelClasses)")
        }
        guard problems.isEmpty else { throw ConfigError.invalid(path: "dataset", reason: problems.joined(separator: "; ")) }
    }

    /// `requireFits` for a built model of fixed shape.
    public func requireFits(_ model: Model) throws {
        try requireFits(modelNamed: model.name, inputShape: model.inputShape, classes: model.classes)
    }
}

extension JobConfig {
    /// The smallest image side each zoo model can take (its pooling and valid convolutions
    /// leave nothing of smaller images); the others take any size.
    static let zooMinimumImageSide = ["fmnist-cnn": 4, "lenet5": 12]

    /// The job's model for its data: a zoo model built with the data's image shape and class
    /// count, so `model: fmnist-cnn` trains on 32×32×3 images and 100 classes as it does on
    /// Fashion-MNIST; an imported model (`model: {onnx: FILE}`) as its file defines it, which
    /// the data must fit.
    ///
    /// - Throws: `ConfigError` for an unknown model, or images smaller than the model can take;
    ///   `ONNXImportError`; `DataError` when the data do not fit an imported model.
    public func makeModel(for data: DataSignature) throws -> Model {
        if modelFile != nil {
            // An imported model has its own image shape and classes: the data must fit them.
            let imported = try makeModel()
            try data.requireFits(imported)
            return imported
        }
        if let side = Self.zooMinimumImageSide[model], data.imageShape[0] < side || data.imageShape[1] < side {
            throw ConfigError.invalid(path: "dataset", reason: "images are \(DataError.dims(data.imageShape)) (\(data.imagesSource)), "
                                      + "model \(model) needs at least \(side)×\(side)")
        }
        guard let built = ModelZoo.make(model, seed: seed, inputShape: data.imageShape, classes: data.classes) else {
            throw ConfigError.outOfRange(path: "model", value: "\"\(model)\"",
                                         allowed: "one of " + ModelZoo.names.map { "\"\($0)\"" }.joined(separator: ", "))
        }
        try data.requireFits(built)
        return built
    }
}

// MARK: reading the splits

/// Reads one split of a job's data in its format: the images as stored (not yet converted) and
/// every label, checked to be a class index.
struct SplitReader {
    let config: JobConfig.DatasetConfig

    struct Split {
        /// nil when only the labels were read.
        let images: StoredImages?
        let labels: [Int32]
        /// The labels' file (or archive member), for errors.
        let labelsPath: String
        /// The labels as messages name them: `train.npz y`.
        let labelsSource: String
    }

    func read(_ split: DatasetSplit, images: Bool) throws -> Split {
        switch config.format {
        case .idx: return try readIDX(split, images: images)
        case .npz:
            let (key, path) = split == .train ? ("train", config.train!) : ("test", config.test!)
            try requireFile(path, key: key)
            let archive = try NPZArchive.open(path: path)
            let y = try archive.array("y")
            let labelsPath = "\(path) (member y.npy)"
            let x = try images ? StoredImages(array: archive.array("x"), path: "\(path) (member x.npy)", source: "\(path) x",
                                              layout: config.layout) : nil
            return try checkedSplit(x, y, labelsPath: labelsPath, labelsSource: "\(path) y")
        case .npy:
            let (xKey, yKey) = split == .train ? ("train_x", "train_y") : ("test_x", "test_y")
            let (xPath, yPath) = split == .train ? (config.trainX!, config.trainY!) : (config.testX!, config.testY!)
            try requireFile(yPath, key: yKey)
            let y = try NPYReader.read(path: yPath)
            var x: StoredImages?
            if images {
                try requireFile(xPath, key: xKey)
                x = try StoredImages(array: NPYReader.read(path: xPath), path: xPath, source: xPath, layout: config.layout)
            }
            return try checkedSplit(x, y, labelsPath: yPath, labelsSource: yPath)
        }
    }

    private func requireFile(_ path: String, key: String) throws {
        guard FileManager.default.fileExists(atPath: path) else { throw DataError.missingDataFile(path: path, key: key) }
    }

    /// Checks that `y` holds one class index per image of `x`.
    private func checkedSplit(_ x: StoredImages?, _ y: NPYArray, labelsPath: String, labelsSource: String) throws -> Split {
        let n = y.shape.first ?? 0
        guard y.shape.count == 1 || (y.shape.count == 2 && y.shape[1] == 1) else {
            throw DataError.unsuitableArray(path: labelsPath, shape: y.shape, dtype: y.dtype.name,
                                            expected: "labels of shape (N,) or (N, 1), one class index per image")
        }
        if let x, x.count != n {
            throw DataError.countMismatch(imagesPath: x.path, imageCount: x.count, labelsPath: labelsPath, labelCount: n)
        }
        var labels = [Int32](repeating: 0, count: n)
        let limit = JobConfig.DatasetConfig.maxClasses
        for k in 0..<n {
            guard let label = y.integer(at: k) else {
                // A float that is no integer, or a uint64 beyond Int.max.
                throw DataError.invalidLabel(path: labelsPath, index: k, value: y.text(at: k),
                                             reason: y.dtype.isFloat ? "is not an integer" : "is beyond the \(limit) classes a job may have")
            }
            guard label >= 0 else { throw DataError.invalidLabel(path: labelsPath, index: k, value: "\(label)", reason: "is negative") }
            guard label < limit else {
                throw DataError.invalidLabel(path: labelsPath, index: k, value: "\(label)",
                                             reason: "is beyond the \(limit) classes a job may have")
            }
            labels[k] = Int32(label)
        }
        return Split(images: x, labels: labels, labelsPath: labelsPath, labelsSource: labelsSource)
    }

    private func readIDX(_ split: DatasetSplit, images: Bool) throws -> Split {
        let directory = config.path
        let isDefault = Dataset.standardized(directory) == Dataset.standardized(Dataset.defaultDirectory)
        let labelsPath = try Dataset.locate("\(split.filePrefix)-labels-idx1-ubyte", in: directory, isDefault: isDefault)
        var x: StoredImages?
        if images {
            let imagesPath = try Dataset.locate("\(split.filePrefix)-images-idx3-ubyte", in: directory, isDefault: isDefault)
            let file = try IDXReader.read(path: imagesPath, dimensionCount: 3)
            let (n, rows, cols) = (file.dimensions[0], file.dimensions[1], file.dimensions[2])
            guard rows > 0, cols > 0 else {
                throw DataError.invalidDimensions(path: imagesPath, dimensions: file.dimensions,
                                                  reason: "images need at least one row and one column")
            }
            x = StoredImages(values: .bytes(file.values[...]), count: n, imageShape: [rows, cols, 1],
                             strides: [rows * cols, cols, 1, 1], path: imagesPath, source: imagesPath, layoutNote: "IDX")
        }
        let file = try IDXReader.read(path: labelsPath, dimensionCount: 1)
        if let x, x.count != file.dimensions[0] {
            throw DataError.countMismatch(imagesPath: x.path, imageCount: x.count, labelsPath: labelsPath,
                                          labelCount: file.dimensions[0])
        }
        return Split(images: x, labels: file.values.map { Int32($0) }, labelsPath: labelsPath, labelsSource: labelsPath)
    }
}

/// Images as a file stores them — bytes or floats, in any axis order — and the strides that
/// turn them into NHWC.
struct StoredImages {
    enum Values {
        case bytes(ArraySlice<UInt8>)
        case float32([Float])
        case float64([Double])
    }

    let values: Values
    /// The number of images.
    let count: Int
    /// `[H, W, C]`.
    let imageShape: [Int]
    /// The storage distance of neighbours along N, H, W and C.
    let strides: [Int]
    /// The file (or archive member), for errors.
    let path: String
    /// The images as messages name them: `train.npz x`.
    let source: String
    /// How the layout was decided, for the log.
    let layoutNote: String

    init(values: Values, count: Int, imageShape: [Int], strides: [Int], path: String, source: String, layoutNote: String) {
        self.values = values
        self.count = count
        self.imageShape = imageShape
        self.strides = strides
        self.path = path
        self.source = source
        self.layoutNote = layoutNote
    }

    /// The images of `array` (`N×H×W`, `N×H×W×C` or `N×C×H×W`; uint8, float32 or float64),
    /// their layout given or inferred.
    init(array: NPYArray, path: String, source: String, layout: ImageLayout?) throws {
        let expected = "images of shape N×H×W, N×H×W×C or N×C×H×W with dtype uint8, float32 or float64"
        let shape = array.shape, strides = array.strides
        guard [.uint8, .float32, .float64].contains(array.dtype), shape.count == 3 || shape.count == 4 else {
            throw DataError.unsuitableArray(path: path, shape: shape, dtype: array.dtype.name, expected: expected)
        }
        guard shape.dropFirst().allSatisfy({ $0 > 0 }) else {
            throw DataError.unsuitableArray(path: path, shape: shape, dtype: array.dtype.name,
                                            expected: "images with at least one row, column and channel")
        }
        guard shape[0] > 0 else {
            throw DataError.unsuitableArray(path: path, shape: shape, dtype: array.dtype.name, expected: "at least one image")
        }
        let chosen: ImageLayout?, note: String
        if shape.count == 3 {
            (chosen, note) = (nil, "N×H×W, one channel")
        } else if let layout {
            (chosen, note) = (layout, "\(layout.rawValue.uppercased()) as the job file says")
        } else {
            let secondIsChannel = [1, 3].contains(shape[1]), lastIsChannel = [1, 3].contains(shape[3])
            guard secondIsChannel != lastIsChannel else { throw DataError.ambiguousLayout(path: path, shape: shape) }
            chosen = secondIsChannel ? .nchw : .nhwc
            note = "\(chosen!.rawValue.uppercased()) inferred from the shape"
        }
        switch chosen {
        case nil:
            (imageShape, self.strides) = ([shape[1], shape[2], 1], [strides[0], strides[1], strides[2], 1])
        case .nhwc:
            (imageShape, self.strides) = ([shape[1], shape[2], shape[3]], strides)
        case .nchw:
            (imageShape, self.strides) = ([shape[2], shape[3], shape[1]], [strides[0], strides[2], strides[3], strides[1]])
        }
        switch array.dtype {
        case .uint8: values = .bytes(array.bytes)
        case .float32: values = .float32(array.floats())
        default: values = .float64(array.doubles())
        }
        count = shape[0]
        self.path = path
        self.source = source
        layoutNote = note + (array.fortranOrder ? ", Fortran order" : "") + (array.bigEndian ? ", big-endian" : "")
    }

    var describeStorage: String {
        switch values {
        case .bytes: return "uint8 pixels kept as bytes (\(layoutNote))"
        case .float32: return "float32 pixels (\(layoutNote))"
        case .float64: return "float64 pixels stored as float32 (\(layoutNote))"
        }
    }

    /// The first `limit` images (all when nil) as a dataset: bytes stay bytes (normalised per
    /// batch through a table), floats become a normalised tensor.
    func dataset(limit: Int?, labels: [Int32], classes: Int, normalization: PixelNormalization) throws -> Dataset {
        let n = min(limit ?? count, count)
        let shape = [n] + imageShape
        let channels = imageShape[2]
        let describe = "\(source) is \(DataError.dims(imageShape))"
        let kept = Array(labels[0..<n])
        switch values {
        case let .bytes(bytes):
            let table = try normalization.byteTable(channels: channels, images: describe)
            return Dataset(pixels: Self.nhwc(bytes, shape: shape, strides: strides), shape: shape, labels: kept,
                           classes: classes, table: table)
        case let .float32(floats):
            return try floatDataset(normalization.apply(Self.nhwc(floats[...], shape: shape, strides: strides),
                                                        channels: channels, images: describe), shape: shape, labels: kept, classes: classes)
        case let .float64(doubles):
            return try floatDataset(normalization.apply(Self.nhwc(doubles[...], shape: shape, strides: strides),
                                                        channels: channels, images: describe), shape: shape, labels: kept, classes: classes)
        }
    }

    private func floatDataset(_ values: [Float], shape: [Int], labels: [Int32], classes: Int) throws -> Dataset {
        if let bad = values.firstIndex(where: { !$0.isFinite }) {
            throw DataError.nonFiniteValue(path: path, sample: bad / imageShape.reduce(1, *))
        }
        return Dataset(images: Tensor(shape: shape, scalars: values), labels: labels, classes: classes)
    }

    /// The elements of `shape` (NHWC) read from `source` at `strides`: a plain copy when the
    /// storage already is NHWC, else one pass in output order.
    static func nhwc<T>(_ source: ArraySlice<T>, shape: [Int], strides: [Int]) -> [T] {
        let total = shape.reduce(1, *)
        let contiguous = strides[3] == 1 || shape[3] == 1
        if contiguous, strides[2] == shape[3] || shape[2] == 1, strides[1] == shape[2] * shape[3] || shape[1] == 1,
           strides[0] == shape[1] * shape[2] * shape[3] || shape[0] <= 1 {
            return Array(source[source.startIndex..<(source.startIndex + total)])
        }
        var out: [T] = []
        out.reserveCapacity(total)
        let base = source.startIndex
        for n in 0..<shape[0] {
            for h in 0..<shape[1] {
                for w in 0..<shape[2] {
                    let pixel = base + n * strides[0] + h * strides[1] + w * strides[2]
                    for c in 0..<shape[3] { out.append(source[pixel + c * strides[3]]) }
                }
            }
        }
        return out
    }
}
