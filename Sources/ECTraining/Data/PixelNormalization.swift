/// The file formats a job's data can come in (`dataset.format`).
public enum DatasetFormat: String, CaseIterable, Sendable {
    /// A directory of MNIST-style IDX files (`dataset.path`), raw or gzip.
    case idx
    /// Two NumPy archives, `dataset.train` and `dataset.test`, each with arrays `x` and `y`.
    case npz
    /// Four NumPy arrays: `dataset.train_x`, `train_y`, `test_x`, `test_y`.
    case npy
}

/// Where the channel axis of 4-dimensional images lies (`dataset.layout`).
public enum ImageLayout: String, CaseIterable, Sendable {
    /// `N×H×W×C` (TensorFlow/Keras, and the engine's own).
    case nhwc
    /// `N×C×H×W` (PyTorch).
    case nchw
}

/// How stored pixels become model inputs: `(x · scale − mean) / std`, per channel.
///
/// `scale` defaults to 1/255 for bytes (IDX files, uint8 arrays: pixels in [0, 1]) and to 1 for
/// float arrays (taken as they are). `mean` and `std` hold one value per channel, or one for
/// all; empty means 0 and 1.
public struct PixelNormalization: Equatable, Sendable {
    public var scale: Double?
    public var mean: [Double]
    public var std: [Double]

    public init(scale: Double? = nil, mean: [Double] = [], std: [Double] = []) {
        self.scale = scale
        self.mean = mean
        self.std = std
    }

    /// True when floats pass unchanged (no scale, mean or std given).
    var isIdentityForFloats: Bool { (scale ?? 1) == 1 && mean.allSatisfy { $0 == 0 } && std.allSatisfy { $0 == 1 } }

    /// `mean` and `std` with one value per channel.
    ///
    /// - Throws: `ConfigError.invalid` naming `dataset.mean` or `dataset.std` when a list's
    ///   length is neither 1 nor `channels` (`images` describes the images, for the message).
    func perChannel(_ channels: Int, images: String) throws -> (mean: [Double], std: [Double]) {
        func expand(_ values: [Double], _ key: String, _ neutral: Double) throws -> [Double] {
            if values.isEmpty { return Array(repeating: neutral, count: channels) }
            if values.count == 1 { return Array(repeating: values[0], count: channels) }
            guard values.count == channels else {
                throw ConfigError.invalid(path: "dataset.\(key)", reason: "\(values.count) values for images with \(channels) "
                                          + "channel\(channels == 1 ? "" : "s") (\(images)); give one number, or one per channel")
            }
            return values
        }
        return (try expand(mean, "mean", 0), try expand(std, "std", 1))
    }

    /// The value of every byte in every channel, `256 · channels` entries (`Dataset`'s table);
    /// 256 when all channels agree. The default is exactly `Dataset.byteToUnit`.
    func byteTable(channels: Int, images: String) throws -> [Float] {
        let (mean, std) = try perChannel(channels, images: images)
        let uniform = Set(mean).count == 1 && Set(std).count == 1
        var table: [Float] = []
        for c in 0..<(uniform ? 1 : channels) {
            for b in 0...255 {
                let x = scale.map { Double(b) * $0 } ?? Double(b) / 255
                table.append(Float((x - mean[c]) / std[c]))
            }
        }
        guard table.allSatisfy(\.isFinite) else {
            throw ConfigError.invalid(path: "dataset.scale", reason: "makes pixel values overflow a float (\(images))")
        }
        return table
    }

    /// `values` (NHWC, `channels` innermost) normalised to floats.
    func apply<T: BinaryFloatingPoint>(_ values: [T], channels: Int, images: String) throws -> [Float] {
        if T.self == Float.self, isIdentityForFloats { return values as! [Float] }
        let (mean, std) = try perChannel(channels, images: images)
        let scale = self.scale ?? 1
        var out = [Float](repeating: 0, count: values.count)
        values.withUnsafeBufferPointer { src in
            out.withUnsafeMutableBufferPointer { dst in
                var i = 0
                while i < src.count {
                    for c in 0..<channels {
                        dst[i + c] = Float((Double(src[i + c]) * scale - mean[c]) / std[c])
                    }
                    i += channels
                }
            }
        }
        return out
    }
}
