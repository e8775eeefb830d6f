import EasyCompression
import Foundation

// ecbench — benchmarks of the engine and the distributed runtime. The one documented command
// is `launch/bench` (docs/benchmarks.md), which runs these modes, some under mpirun:
//   ecbench --mode train        fmnist-cnn training vs the raw GEMMs of a step, peak RSS
//   ecbench --mode inference    FP32 inference, batch 256 and batch 1
//   ecbench --mode dp-train     training on every rank of an MPI job (global batch 64)
//   ecbench --mode collectives  gradient allreduce (bucketed vs raw) and mask broadcast (raw vs zstd)
//   ecbench --mode bn           batch norm across ranks: running-statistics average, synchronised BN
//   ecbench --mode pruner       extracted-model inference vs original; the chief's pruning work
//   ecbench --mode pruner-decision  only the chief's decision cost on the ~12M MLP (no pruning run needed)
//   ecbench --mode qat          LSQ quantization-aware training step vs FP32 step, then int8 inference
//   ecbench --mode int8         int8 inference alone (TensorFlow's golden weights, W8A8) vs FP32
//   ecbench --mode sparse       block-sparse kernel vs dense sgemm; block-sparse fmnist-cnn inference
//   ecbench --mode onnx         exports fmnist-cnn (FP32, QDQ) for Tools/onnx_bench.py; engine FP32 reference
//   ecbench --mode imported     fmnist-cnn exported to ONNX and imported back vs the built-in model
//   ecbench --mode torchvision  torchvision architectures: import, output vs ONNX Runtime, a training step, 30% pruned
//   ecbench --mode scale        data-parallel step and communication time, overlapped or not (launch/bench scale)
//   ecbench --mode gemm         own FP32 GEMM kernels (every path) vs OpenBLAS on the training step's and inference's shapes
//   ecbench --mode products     the step's and inference's conv/dense products: own kernels vs im2col + own GEMM vs OpenBLAS, % of peak
//   ecbench --mode peer-train   the engine's rounds of `launch/bench peers` (TensorFlow/Keras and ONNX Runtime alternate with them)
//   ecbench --mode peer-inference
// Every figure is printed with the reference it is compared to, measured in the same run;
// lines starting with RESULT are read by launch/bench.

BLASCoreSelection.ensureSuitableCore()  // before MPI: a generic OpenBLAS core on an AVX CPU re-executes with the right one
let options = BenchOptions.parse(CommandLine.arguments.dropFirst())
TrainJob.configureThreads(options.threads)
do {
    let world = try World.current()
    if world.isChief && options.mode != "peer-kernels" {
        print("ecbench \(options.mode) — \(world.size) rank(s) × \(options.threads) thread(s), FP32 GEMM: \(FP32Kernels.path), \(Date())")
        print("CPU: \(CPUInfo.current.summary); BLAS core \(BLAS.coreName)")
        if let note = BLASCoreSelection.note { print(note) }
    }
    switch options.mode {
    case "train": try TrainingBenchmark(options: options).run()
    case "inference": try InferenceBenchmark(options: options).run()
    case "dp-train": try TrainingBenchmark(options: options).runDataParallel(world: world)
    case "collectives": try CollectivesBenchmark(options: options, world: world).run()
    case "bn": try BatchNormBenchmark(options: options, world: world).run()
    case "pruner": try PrunerBenchmark(options: options).run()
    case "pruner-decision": try PrunerBenchmark(options: options).chiefWork()
    case "qat": try QATBenchmark(options: options).run()
    case "int8": try QATBenchmark(options: options).runInt8Only()
    case "sparse": try SparseBenchmark(options: options).run()
    case "onnx": try ONNXBenchmark(options: options).run()
    case "imported": try ImportedModelBenchmark(options: options).run()
    case "torchvision": try TorchvisionCoverage(options: options).run()
    case "gemm": try GEMMBenchmark(options: options).run()
    case "scale": try ScaleBenchmark(options: options, world: world).run()
    case "products": try ProductsBenchmark(options: options).run()
    case "peer-kernels":
        print("kernels: \(FP32Kernels.path) (the engine's own GEMM\(FP32Kernels.active == .openblas ? "" : " and convolution") kernels; "
              + "OpenBLAS core \(BLAS.coreName) as reference and fallback)")
    case "peer-train": try PeerBenchmark(options: options).train()
    case "peer-inference": try PeerBenchmark(options: options).inference()
    default:
        try TrainingBenchmark(options: options).run()
        try InferenceBenchmark(options: options).run()
    }
    try (world as? MPICommunicator)?.finalize()
} catch {
    FileHandle.standardError.write(Data("ecbench: error: \(error)\n".utf8))
    exit(1)
}
