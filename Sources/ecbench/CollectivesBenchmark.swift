import EasyCompression
import Foundation

/// Under mpirun: (a) the trainer's bucketed gradient allreduce of fmnist-cnn's gradients vs one
/// raw MPI_Allreduce of the same total bytes, for several bucket sizes; (c) broadcasting the
/// masks of a ~10M-parameter model as raw bytes (one byte per weight) vs the zstd payload.
struct CollectivesBenchmark {
    let options: BenchOptions
    let world: Communicator

    func run() throws {
        try allreduce()
        try maskBroadcast()
    }

    func allreduce() throws {
        let model = ModelZoo.make("fmnist-cnn", seed: 1)!
        var grads = model.parameters.filter(\.isTrainable).sorted { $0.name < $1.name }.map { $0.grad }
        for i in grads.indices { grads[i].makeUnique() }  // separate from the trainer's flat buffer below
        let total = grads.reduce(0) { $0 + $1.count }
        var flat = [Float](repeating: 1, count: total)
        let iterations = 200
        func raw() throws -> Double {
            try world.barrier()
            return try time { for _ in 0..<iterations { try world.allreduce(&flat, op: .sum) } } / Double(iterations)
        }
        func bucketed(_ bytes: Int) throws -> Double {
            let bucketer = GradientBucketer(bucketBytes: bytes)
            try world.barrier()
            return try time { for _ in 0..<iterations { try bucketer.allreduce(&grads, op: .sum, comm: world) } }
                / Double(iterations)
        }
        // The trainer's path: DistributedOptimizer with every gradient in one flat buffer.
        let trainer = DistributedOptimizer(try SGD(learningRate: 0.1), communicator: world)
        trainer.attachFlatGradients(model.parameters)
        func trainerSync() throws -> Double {
            try world.barrier()
            return try time { for _ in 0..<iterations { try trainer.synchronizeGradients(model.parameters) } }
                / Double(iterations)
        }
        let sizes = [0, 256 << 10, 1 << 20, 4 << 20, 16 << 20]
        var rawTimes: [Double] = [], bucketTimes: [Int: [Double]] = [:], flatTimes: [Double] = []
        for _ in 0..<options.repeats {
            for size in sizes {  // alternate raw and each bucket size
                rawTimes.append(try raw())
                bucketTimes[size, default: []].append(try bucketed(size))
            }
            rawTimes.append(try raw())
            flatTimes.append(try trainerSync())
        }
        guard world.isChief else { return }
        let r = median(rawTimes), bytes = Double(total * 4)
        print("")
        print("== gradient allreduce: fmnist-cnn, \(grads.count) tensors, \(total * 4) bytes, \(world.size) ranks")
        print(String(format: "raw MPI_Allreduce of one buffer: %8.1f µs  %.2f GB/s", r * 1e6, bytes / r / 1e9))
        for size in sizes {
            let b = median(bucketTimes[size]!)
            let label = size == 0 ? "unfused (one call per tensor)" : "buckets of \(size >> 10) KiB"
            print(String(format: "%-32@ %8.1f µs  %.2f GB/s  %.0f%% of raw bandwidth", label as NSString, b * 1e6,
                         bytes / b / 1e9, r / b * 100))
        }
        let f = median(flatTimes)
        print(String(format: "%-32@ %8.1f µs  %.2f GB/s  %.0f%% of raw bandwidth  (%d flat calls)",
                     "trainer: flat gradient buffer" as NSString, f * 1e6, bytes / f / 1e9, r / f * 100, trainer.flatCalls))
        let best = sizes.filter { $0 > 0 }.min { median(bucketTimes[$0]!) < median(bucketTimes[$1]!) }!
        print(String(format: "RESULT allreduce_trainer_of_raw=%.3f allreduce_default_bucket_of_raw=%.3f best_bucket_kib=%d",
                     r / f, r / median(bucketTimes[DistributedOptimizer.defaultBucketBytes]!), best >> 10))
    }

    /// Channel-pruning masks of a 10M-parameter model: 20 layers of [kh·kw·cin = 4608, cout = 108]
    /// whose pruned output channels are whole columns (half of them kept).
    func maskBroadcast() throws {
        let layers = 20, rows = 4608, cols = 108
        var rng = RNG(seed: 7)
        var entries: [String: PayloadValue] = [:]
        var rawBytes = [UInt8](repeating: 0, count: layers * rows * cols)
        for l in 0..<layers {
            let keep = (0..<cols).map { _ in rng.nextUniform() < 0.5 }
            var values = [Bool](repeating: false, count: rows * cols)
            for i in 0..<rows { for j in 0..<cols where keep[j] { values[i * cols + j] = true; rawBytes[(l * rows + i) * cols + j] = 1 } }
            entries[String(format: "layer%02d/weight", l)] = .mask(Mask(shape: [rows, cols], values: values))
        }
        let channel = PayloadChannel(communicator: world)
        var rawTimes: [Double] = [], zstdTimes: [Double] = []
        for step in 0..<(options.repeats * 3) {
            var copy = rawBytes
            try world.barrier()
            rawTimes.append(try time { try world.broadcast(&copy, root: 0) })
            try world.barrier()
            zstdTimes.append(try time {
                _ = try channel.broadcast(kind: .masks, step: step, entries: world.isChief ? entries : nil)
            })
        }
        guard world.isChief else { return }
        let m = channel.metrics
        let sent = Double(m.bytesSent) / Double(m.calls)
        print("")
        print("== mask broadcast: \(layers * rows * cols) weights (~10M), channel-pruning masks, \(world.size) ranks")
        print(String(format: "raw (one byte per weight): %10d bytes  %8.2f ms", rawBytes.count, median(rawTimes) * 1e3))
        print(String(format: "payload (bits + zstd -1): %10.0f bytes  %8.2f ms (encode + send + decode + verify)  %.0f× fewer bytes",
                      sent, median(zstdTimes) * 1e3, Double(rawBytes.count) / sent))
        print(String(format: "RESULT mask_bytes_ratio=%.1f mask_time_ratio=%.2f", Double(rawBytes.count) / sent,
                     median(rawTimes) / median(zstdTimes)))
    }
}
