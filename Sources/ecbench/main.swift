import EasyCompression
import Foundation

// ecbench — benchmarks of the engine. One documented command (docs/benchmarks.md):
//   launch/bench                       (= swift run -c release ecbench)
// Every figure is printed with the reference it is compared to, measured in the same run.

let options = BenchOptions.parse(CommandLine.arguments.dropFirst())
TrainJob.configureThreads(options.threads)
if let s = ProcessInfo.processInfo.environment["EC_LOOP_THREADS"], let n = Int(s) { Parallel.workers = n }
print("ecbench — \(options.threads) thread(s), \(Date())")
try TrainingBenchmark(options: options).run()
try InferenceBenchmark(options: options).run()
print(String(format: "peak RSS of this process: %.0f MB", peakRSSMegabytes()))
