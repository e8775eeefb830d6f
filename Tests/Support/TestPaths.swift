import Foundation

/// Paths the training tests need: the repository, its fixtures (golden weights, ONNX files made
/// by other frameworks), the build products (the CLI binary) and the real Fashion-MNIST files.
public enum TestPaths {
    public static let repository = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

    /// An executable built into `.build/debug` (`easycompress`, `ec-mpi-check`), or an error
    /// saying how to build it.
    public static func executable(_ name: String) throws -> String {
        let path = buildProducts.appendingPathComponent(name).path
        guard FileManager.default.isExecutableFile(atPath: path) else {
            throw HarnessError(description: "\(name) not found at \(path); run `swift build` before `swift test`")
        }
        return path
    }

    /// `Tests/Fixtures`: files made by other programs (see the README beside each set).
    public static var fixtures: URL { repository.appendingPathComponent("Tests/Fixtures") }

    /// fmnist-cnn weights trained by TensorFlow/Keras, and what they must give.
    public static var goldenWeights: URL { fixtures.appendingPathComponent("golden/fmnist_cnn_tf_fp32.safetensors") }
    public static var goldenExpected: URL { fixtures.appendingPathComponent("golden/fmnist_cnn_tf_fp32.expected.json") }

    /// The debug build folder holding the executables (`easycompress`, `ec-mpi-check`).
    public static var buildProducts: URL { repository.appendingPathComponent(".build/debug") }

    public static func temporaryDirectory(_ name: String = #function) throws -> URL {
        let url = FileManager.default.temporaryDirectory
            .appendingPathComponent("ec-\(name.filter { $0.isLetter || $0.isNumber })-\(UUID().uuidString.prefix(8))")
        try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
        return url
    }
}
