import EasyCompression
import Foundation

/// Under mpirun: what keeping batch norm identical across ranks costs on resnet-mini at global
/// batch 64 — the running statistics' average after every step (one allreduce of the
/// statistics, timed alone and against the step), and a step with synchronised batch norm
/// (three small allreduces per layer and step) against one without.
struct BatchNormBenchmark {
    let options: BenchOptions
    let world: Communicator

    func run() throws {
        let data = try Dataset.load(.train)
        func session(sync: Bool) throws -> (MonitoredSession, () throws -> Void) {
            let model = ModelZoo.make("resnet-mini", seed: 1)!
            let session = try MonitoredSession(model: model, optimizer: try SGD(learningRate: 0.05, momentum: 0.9),
                                               communicator: world)
            session.syncBatchNorm = sync
            var batches = try BatchSchedule(dataset: data, batchSize: 64, seed: 1).makeIterator(rank: world.rank,
                                                                                                worldSize: world.size)
            return (session, {
                let b = batches.next()
                try session.run(images: b.images, labels: b.labels, globalBatchSize: b.globalCount)
            })
        }
        let (plain, plainStep) = try session(sync: false)
        let (_, syncStep) = try session(sync: true)
        for _ in 0..<10 { try plainStep(); try syncStep() }
        let statistics = RunningStatistics(model: plain.model)
        let values = statistics.parameters.reduce(0) { $0 + $1.value.count }
        var plainTimes: [Double] = [], syncTimes: [Double] = [], averageTimes: [Double] = []
        for _ in 0..<options.repeats {  // alternated, so drift hits all alike
            try world.barrier()
            plainTimes.append(try time { for _ in 0..<options.steps { try plainStep() } } / Double(options.steps))
            try world.barrier()
            syncTimes.append(try time { for _ in 0..<options.steps { try syncStep() } } / Double(options.steps))
            try world.barrier()
            averageTimes.append(try time {
                for _ in 0..<options.steps { try statistics.average(localSamples: 32, communicator: world) }
            } / Double(options.steps))
        }
        var slowest = [median(plainTimes), median(syncTimes), median(averageTimes)]
        try world.allreduce(&slowest, op: .max)
        guard world.isChief else { return }
        let (step, syncedStep, average) = (slowest[0], slowest[1], slowest[2])
        print("")
        print("== batch norm across \(world.size) ranks: resnet-mini, global batch 64, \(options.threads) thread(s) per rank")
        print(String(format: "step, running statistics averaged every step: %8.2f ms", step * 1e3))
        print(String(format: "  of which the average (%d values, one allreduce): %8.1f µs  (%.2f%% of the step)",
                     values, average * 1e6, average / step * 100))
        print(String(format: "step, synchronised batch norm:                 %8.2f ms  (%.2f× the step above)",
                     syncedStep * 1e3, syncedStep / step))
        print(String(format: "RESULT bn_average_us=%.1f bn_average_share=%.4f sync_bn_step_ratio=%.3f",
                     average * 1e6, average / step, syncedStep / step))
    }
}
