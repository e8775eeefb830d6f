import ECTensor

/// An in-memory image classification dataset: images `[N, H, W, 1]` with pixels in [0, 1],
/// and one label in `0..<classes` per image.
///
/// A value type: copies share the image tensor (copy-on-write). `Dataset.load(_:directory:limit:)`
/// reads the MNIST/Fashion-MNIST IDX files; the memberwise `init` builds one in memory.
public struct Dataset {
    /// How the pixels are held: datasets read from IDX files keep the bytes (a quarter of the
    /// memory of floats: 47 MB instead of 188 MB for Fashion-MNIST's training set) and convert
    /// the rows a batch needs; in-memory datasets keep their tensor.
    enum Storage {
        case bytes([UInt8], shape: [Int])
        case floats(Tensor)
    }
    let storage: Storage
    /// `byte / 255` for every byte (exactly TensorFlow's `pixels / 255`).
    static let byteToUnit: [Float] = (0...255).map { Float($0) / 255 }

    /// All images, `[count, height, width, 1]`, NHWC, pixel bytes divided by 255. For a
    /// dataset read from files this converts every pixel: use `gather` for batches.
    public var images: Tensor {
        switch storage {
        case let .floats(t): return t
        case let .bytes(_, shape): return gather(0..<shape[0]).images
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

    /// A dataset over pixel bytes (`[count, H, W, C]`), converted to `byte / 255` when gathered.
    init(pixels: [UInt8], shape: [Int], labels: [Int32], classes: Int) {
        precondition(shape.count == 4 && shape[0] == labels.count && pixels.count == Tensor.elementCount(shape),
                     "pixels \(pixels.count) do not fit shape \(shape) with \(labels.count) labels")
        storage = .bytes(pixels, shape: shape)
        self.labels = labels
        self.classes = classes
    }

    /// The number of samples.
    public var count: Int { labels.count }

    /// The shape of one image, `[H, W, C]`.
    public var imageShape: [Int] {
        switch storage {
        case let .floats(t): return Array(t.shape.dropFirst())
        case let .bytes(_, shape): return Array(shape.dropFirst())
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
                case let .bytes(pixels, _):
                    pixels.withUnsafeBufferPointer { bytes in Dataset.byteToUnit.withUnsafeBufferPointer { table in
                        let src = bytes.baseAddress! + index * rowLength
                        for j in 0..<rowLength { row[j] = table[Int(src[j])] }
                    } }
                }
                row += rowLength
                batchLabels.append(labels[index])
            }
        }
        return (batch, batchLabels)
    }

    /// The first `min(maxCount, count)` samples (a copy).
    public func prefix(_ maxCount: Int) -> Dataset {
        precondition(maxCount >= 0, "prefix length must be >= 0, got \(maxCount)")
        guard maxCount < count else { return self }
        let (images, labels) = gather(0..<maxCount)
        return Dataset(images: images, labels: labels, classes: classes)
    }
}
