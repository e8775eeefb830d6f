// swift-tools-version:6.0
import PackageDescription

// The tensor engine's hot loops are compiled with optimisation even in debug builds: the test
// suite trains and evaluates real models, and -Onone Swift is 10–50× slower on them. The
// flag keeps bounds checks and preconditions (it is -O, not -Ounchecked).
let optimised: [SwiftSetting] = [.unsafeFlags(["-O"])]

let package = Package(
    name: "EasyCompression",
    platforms: [.macOS(.v13)],
    products: [
        .library(name: "EasyCompression", targets: ["EasyCompression"]),
        .executable(name: "easycompress", targets: ["easycompress"]),
        .executable(name: "ecbench", targets: ["ecbench"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
        .package(url: "https://github.com/jpsim/Yams", from: "6.2.2"),
        // The runtime library only (`SwiftProtobuf`): the ONNX messages are generated once and
        // committed (Sources/ECExport/Proto), so no build needs the plugin.
        .package(url: "https://github.com/apple/swift-protobuf", from: "1.39.0"),
    ],
    targets: [
        // System libraries (C at the edge): each a module map and a shim header, each with one
        // Swift importer (CBLAS: Tensor+Matmul; CMPI: ECCollective's MPI files; CZstd: Zstd.swift;
        // CZlib: ECTraining/Data/Zlib.swift, gzip and .npz members). docs/architecture.md has the layers.
        .systemLibrary(name: "CMPI", pkgConfig: "ompi",
                       providers: [.apt(["libopenmpi-dev", "openmpi-bin"])]),
        .systemLibrary(name: "CBLAS", pkgConfig: "openblas", providers: [.apt(["libopenblas-dev"])]),
        .systemLibrary(name: "CZstd", pkgConfig: "libzstd", providers: [.apt(["libzstd-dev"])]),
        .systemLibrary(name: "CZlib", pkgConfig: "zlib", providers: [.apt(["zlib1g-dev"])]),

        // The engine's own C kernels — FP32 GEMM (AVX-512, AVX2+FMA, portable) and the worker pool
        // it shares with the FP32 convolutions, the int8 GEMM on AVX-512 VNNI, the block-sparse
        // matmul — each compiled for its instruction set per function and checked at run time.
        // Imported only by ECTensor/Kernels. Optimised in debug builds too, like the Swift engine.
        .target(name: "CKernels", path: "Sources/CKernels", cSettings: [.unsafeFlags(["-O2"])]),

        // Libraries, arrows pointing down only.
        .target(name: "ECTensor", dependencies: ["CBLAS", "CKernels"], swiftSettings: optimised),
        .target(name: "ECNN", dependencies: ["ECTensor"], swiftSettings: optimised),
        .target(name: "ECOptim", dependencies: ["ECNN", "ECTensor"], swiftSettings: optimised),
        .target(name: "ECCollective", dependencies: ["CMPI", "ECTensor"], swiftSettings: optimised),
        .target(name: "ECCheckpoint", dependencies: ["ECTensor"]),
        .target(name: "ECCompression", dependencies: ["ECTensor", "ECNN", "ECCollective", "ECCheckpoint", "CZstd"],
                swiftSettings: optimised),
        // Every file format another program reads: ONNX (FP32, pruned, QDQ; serialised with
        // swift-protobuf), the int8 and block-sparse safetensors exports. Knows models and
        // quantization plans, not training.
        .target(name: "ECExport",
                dependencies: ["ECTensor", "ECNN", "ECCompression", "ECCheckpoint",
                               .product(name: "SwiftProtobuf", package: "swift-protobuf")],
                exclude: ["Proto/onnx.proto"]),
        // The run report (report.html) and plain-text tables: reads what a run left in its
        // save_dir; knows files, not training.
        .target(name: "ECReport", dependencies: ["ECCheckpoint"]),
        .target(name: "ECTraining",
                dependencies: ["ECTensor", "ECNN", "ECOptim", "ECCollective", "ECCheckpoint", "ECCompression", "ECExport",
                               "ECReport", "CZlib",
                               .product(name: "Yams", package: "Yams")],
                swiftSettings: optimised),
        .target(name: "EasyCompression",
                dependencies: ["ECTensor", "ECNN", "ECOptim", "ECCollective", "ECCheckpoint", "ECCompression",
                               "ECExport", "ECReport", "ECTraining"]),

        // Executables: argument parsing only.
        .executableTarget(name: "easycompress",
                          dependencies: ["EasyCompression",
                                         .product(name: "ArgumentParser", package: "swift-argument-parser")]),
        .executableTarget(name: "ecbench", dependencies: ["EasyCompression"], swiftSettings: optimised),
        // Test-only programs run under mpirun by the XCTest wrappers.
        .executableTarget(name: "ec-mpi-check", dependencies: ["ECCollective", "ECCompression", "ECTensor"],
                          path: "Tests/Programs/ec-mpi-check"),

        // Tests: one target per library target, plus shared helpers (child processes, paths).
        .target(name: "ECTestSupport", dependencies: ["ECTensor"], path: "Tests/Support"),
        .testTarget(name: "ECTensorTests", dependencies: ["ECTestSupport", "ECTensor"]),
        .testTarget(name: "ECNNTests", dependencies: ["ECTestSupport", "ECNN", "ECTensor"]),
        .testTarget(name: "ECOptimTests", dependencies: ["ECTestSupport", "ECOptim", "ECNN", "ECTensor"]),
        .testTarget(name: "ECCollectiveTests", dependencies: ["ECTestSupport", "ECCollective", "ECTensor"]),
        .testTarget(name: "ECCheckpointTests", dependencies: ["ECTestSupport", "ECCheckpoint", "ECTensor"]),
        .testTarget(name: "ECCompressionTests", dependencies: ["ECTestSupport", "ECCompression", "ECTensor", "ECNN"]),
        .testTarget(name: "ECExportTests", dependencies: ["ECTestSupport", "ECExport", "ECCheckpoint", "ECCollective", "ECCompression", "ECNN", "ECTensor"]),
        .testTarget(name: "ECReportTests", dependencies: ["ECTestSupport", "ECReport"]),
        .testTarget(name: "ECTrainingTests", dependencies: ["ECTestSupport", "ECTraining", "EasyCompression"]),
        .testTarget(name: "easycompressTests", dependencies: ["ECTestSupport", "EasyCompression"]),
    ],
    swiftLanguageModes: [.v5]
)
