import ECTensor

/// An in-memory image classification dataset: images `[N, H, W, C]` (NHWC) as the model takes
/// them, and one label in `0..<classes` per image.
///
/// A value type: copies share the image tensor (copy-on-write). `Dataset.load(_:directory:limit:)`
/// reads the MNIST/Fashion-MNIST IDX files, `JobData.load` a job's data in any format
/// (IDX, `.npy`, `.npz`); the memberwise `init` builds one in memory.
public struct Dataset {
    /// How the pixels are held: datasets of bytes (IDX files, uint8 arrays) keep the bytes (a
    /// quarter of the memory of floats: 47 MB instead of 188 MB for Fashion-MNIST's training
    /// set) and convert the rows a batch needs through `table` — 256 values per channel (one
    /// set for every channel when it has 256 entries), the pixel normalisation precomputed;
    /// float data keep their tensor, normalised when loaded.
    enum Storage {
        case bytes([UInt8], shape: [Int], table: [Float])
        case floats(Tensor)
    }
    let storage: Storage
    /// `byte / 255` for every byte (exactly TensorFlow's `pixels / 255`).
    static let byteToUnit: [Float] = (0...255).map { Float($0) / 255 }

    /// All images, `[count, height, width, channels]`, NHWC, normalised (pixel bytes divided by
    /// 255 by default). For a dataset of bytes this converts every pixel: use `gather` for batches.
    public var images: Tensor {
        switch storage {
        case let .floats(t): return t
        case let .bytes(_, shape, _): return gather(0..<shape[0]).images
        }
    }
    /// One label per image, each in `0..<classes`.
    public let labels: [Int32]
    /// The number of classes (10 for Fashion-MNIST and MNIST).
    public let classes: Int

    /// A dataset from tensors already in memory.
    ///
    /// - Precondition: `images` is `[labels.count, H, W, C]`, and every label is in `0..<classes`.
    public init(images: Tensor, labels: [Int32], classes: Int) {
        precondition(images.rank == 4 && images.shape[0] == labels.count,
                     "images \(images.shape) must be [\(labels.count), H, W, C]")
        precondition(classes > 0, "classes must be > 0, got \(classes)")
        precondition(labels.allSatisfy { $0 >= 0 && Int($0) < classes }, "labels must lie in 0..<\(classes)")
        storage = .floats(images)
        self.labels = labels
        self.classes = classes
    }

    /// A dataset over pixel bytes (`[count, H, W, C]`), converted through `table` when gathered:
    /// byte `b` of channel `c` becomes `table[c · 256 + b]`, or `table[b]` for every channel when
    /// the table has 256 entries (the default: `b / 255`).
    init(pixels: [UInt8], shape: [Int], labels: [Int32], classes: Int, table: [Float] = Dataset.byteToUnit) {
        precondition(shape.count == 4 && shape[0] == labels.count && pixels.count == Tensor.elementCount(shape),
                     "pixels \(pixels.count) do not fit shape \(shape) with \(labels.count) labels")
        precondition(table.count == 256 || table.count == 256 * shape[3], "a byte table has 256 entries per channel")
        storage = .bytes(pixels, shape: shape, table: table)
        self.labels = labels
        self.classes = classes
    }

    /// The number of samples.
    public var count: Int { labels.count }

    /// The shape of one image, `[H, W, C]`.
    public var imageShape: [Int] {
        switch storage {
        case let .floats(t): return Array(t.shape.dropFirst())
        case let .bytes(_, shape, _): return Array(shape.dropFirst())
        }
    }

    /// The samples at `indices`, in that order: images `[indices.count, H, W, C]` in a freshly
    /// allocated tensor (one `memcpy` per row) and their labels.
    ///
    /// - Precondition: every index is in `0..<count`.
    public func gather<Indices: Collection>(_ indices: Indices) -> (images: Tensor, labels: [Int32])
    where Indices.Element == Int {
        let rowLength = imageShape.reduce(1, *)
        var batch = Tensor(uninitializedShape: [indices.count] + imageShape)
        var batchLabels: [Int32] = []
        batchLabels.reserveCapacity(indices.count)
        batch.withUnsafeMutableBufferPointer { destination in
            var row = destination.baseAddress!
            for index in indices {
                precondition(index >= 0 && index < count, "sample index \(index) out of range 0..<\(count)")
                switch storage {
                case let .floats(t):
                    t.withUnsafeBufferPointer { row.update(from: $0.baseAddress! + index * rowLength, count: rowLength) }
                case let .bytes(pixels, shape, table):
                    pixels.withUnsafeBufferPointer { bytes in table.withUnsafeBufferPointer { table in
                        let src = bytes.baseAddress! + index * rowLength
                        if table.count == 256 {
                            for j in 0..<rowLength { row[j] = table[Int(src[j])] }
                        } else {
                            let channels = shape[3]
                            for pixel in stride(from: 0, to: rowLength, by: channels) {
                                for c in 0..<channels { row[pixel + c] = table[c << 8 | Int(src[pixel + c])] }
                            }
                        }
                    } }
                }
                row += rowLength
                batchLabels.append(labels[index])
            }
        }
        return (batch, batchLabels)
    }

    /// The first `min(maxCount, count)` samples (a copy, held as the original is: bytes stay bytes).
    public func prefix(_ maxCount: Int) -> Dataset {
        precondition(maxCount >= 0, "prefix length must be >= 0, got \(maxCount)")
        guard maxCount < count else { return self }
        switch storage {
        case let .bytes(pixels, shape, table):
            return Dataset(pixels: Array(pixels[0..<(maxCount * imageShape.reduce(1, *))]), shape: [maxCount] + shape.dropFirst(),
                           labels: Array(labels[0..<maxCount]), classes: classes, table: table)
        case .floats:
            let (images, labels) = gather(0..<maxCount)
            return Dataset(images: images, labels: labels, classes: classes)
        }
    }

    /// The same samples, reporting `classes` classes (labels must lie in `0..<classes`).
    func withClasses(_ classes: Int) -> Dataset {
        precondition(labels.allSatisfy { Int($0) < classes }, "labels must lie in 0..<\(classes)")
        switch storage {
        case let .bytes(pixels, shape, table):
            return Dataset(pixels: pixels, shape: shape, labels: labels, classes: classes, table: table)
        case let .floats(images):
            return Dataset(images: images, labels: labels, classes: classes)
        }
    }
}
