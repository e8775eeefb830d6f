import ECTensor

/// An in-memory image classification dataset: images `[N, H, W, 1]` with pixels in [0, 1],
/// and one label in `0..<classes` per image.
///
/// A value type: copies share the image tensor (copy-on-write). `Dataset.load(_:directory:limit:)`
/// reads the MNIST/Fashion-MNIST IDX files; the memberwise `init` builds one in memory.
public struct Dataset {
    /// All images, `[count, height, width, 1]`, NHWC, pixel bytes divided by 255.
    public let images: Tensor
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
        self.images = images
        self.labels = labels
        self.classes = classes
    }

    /// The number of samples.
    public var count: Int { labels.count }

    /// The shape of one image, `[H, W, C]`.
    public var imageShape: [Int] { Array(images.shape.dropFirst()) }

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
        images.withUnsafeBufferPointer { source in
            batch.withUnsafeMutableBufferPointer { destination in
                var row = destination.baseAddress!
                for index in indices {
                    precondition(index >= 0 && index < count, "sample index \(index) out of range 0..<\(count)")
                    row.update(from: source.baseAddress! + index * rowLength, count: rowLength)
                    row += rowLength
                    batchLabels.append(labels[index])
                }
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
