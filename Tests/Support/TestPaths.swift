import Foundation

/// Paths the training tests need: the repository, `../shared` beside it (golden weights), the
/// build products (the CLI binary) and the real Fashion-MNIST files.
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

    /// `$EC_SHARED_DIR`, else `../shared` next to the repository.
    public static var shared: URL {
        if let dir = ProcessInfo.processInfo.environment["EC_SHARED_DIR"] { return URL(fileURLWithPath: dir) }
        return repository.deletingLastPathComponent().appendingPathComponent("shared")
    }

    public static var goldenWeights: URL { shared.appendingPathComponent("golden/fmnist_cnn_tf_fp32.safetensors") }
    public static var goldenExpected: URL { shared.appendingPathComponent("golden/fmnist_cnn_tf_fp32.expected.json") }

    /// The debug build folder holding the executables (`easycompress`, `ec-mpi-check`).
    public static var buildProducts: URL { repository.appendingPathComponent(".build/debug") }

    public static func temporaryDirectory(_ name: String = #function) throws -> URL {
        let url = FileManager.default.temporaryDirectory
            .appendingPathComponent("ec-\(name.filter { $0.isLetter || $0.isNumber })-\(UUID().uuidString.prefix(8))")
        try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
        return url
    }
}
