import Foundation

/// Paths the training tests need: the repository, `../shared` beside it (golden weights), the
/// build products (the CLI binary) and the real Fashion-MNIST files.
enum TestPaths {
    static let repository = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

    /// `$EC_SHARED_DIR`, else `../shared` next to the repository.
    static var shared: URL {
        if let dir = ProcessInfo.processInfo.environment["EC_SHARED_DIR"] { return URL(fileURLWithPath: dir) }
        return repository.deletingLastPathComponent().appendingPathComponent("shared")
    }

    static var goldenWeights: URL { shared.appendingPathComponent("golden/fmnist_cnn_tf_fp32.safetensors") }
    static var goldenExpected: URL { shared.appendingPathComponent("golden/fmnist_cnn_tf_fp32.expected.json") }

    /// The debug build folder holding the executables (`easycompress`, `ec-mpi-check`).
    static var buildProducts: URL { repository.appendingPathComponent(".build/debug") }

    static func temporaryDirectory(_ name: String = #function) throws -> URL {
        let url = FileManager.default.temporaryDirectory
            .appendingPathComponent("ec-\(name.filter { $0.isLetter || $0.isNumber })-\(UUID().uuidString.prefix(8))")
        try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
        return url
    }
}
