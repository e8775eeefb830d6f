import ECReport
import Foundation
import ECCheckpoint
import ECCollective
import ECCompression
import ECNN
import ECOptim
import ECTensor

/// The training loop behind `trainAndEvaluate` and `easycompress train`: builds the hooks,
/// restores a checkpoint when resuming, runs the steps, evaluates, checkpoints and writes the
/// summary.
struct TrainLoop {
    let estimator: Estimator
    let trainSpec: TrainSpec
    let evalSpec: EvalSpec
    let compressors: [Compressor]

    func run() throws -> TrainOutcome {
        let rc = estimator.config, comm = rc.communicator, log = rc.log
        let model = try estimator.modelFn()
        try trainSpec.data.checkFits(model)
        if rc.syncBatchNorm, !model.graph.allModules.contains(where: { $0 is BatchNorm }) {
            throw ConfigError.invalid(path: "sync_batch_norm", reason: "\(model.name) has no batch norm layer to synchronise; "
                                      + "hint: remove the key")
        }
        let schedule = try BatchSchedule(dataset: trainSpec.data, batchSize: trainSpec.batchSize, seed: trainSpec.seed)
        let totalSteps = trainSpec.maxSteps ?? trainSpec.epochs * schedule.stepsPerEpoch
        let optimizer = try estimator.optimizerFn(totalSteps)

        let saveDir = URL(fileURLWithPath: rc.saveDir)
        if comm.isChief { try FileManager.default.createDirectory(at: saveDir, withIntermediateDirectories: true) }
        let metrics = try MetricsLog(url: saveDir.appendingPathComponent("metrics.jsonl"), enabled: comm.isChief,
                                     append: rc.resume)
        let logging = LoggingHook(every: rc.logEvery, totalSteps: totalSteps, metrics: metrics, log: log)
        let evaluation = EvaluationHook(every: evalSpec.everySteps, data: evalSpec.data, metrics: metrics, log: log)
        let checkpoints = CheckpointHook(every: rc.checkpointEvery, saveDir: saveDir, keepLast: rc.keepCheckpoints,
                                         seed: trainSpec.seed, batchSize: trainSpec.batchSize,
                                         compressors: compressors, log: log)
        // Compression first: masks are re-applied before anything reads or saves the weights.
        let compressionHooks = compressors.map { CompressionHook($0, saveDir: nil, metrics: metrics) }
        var hooks: [SessionRunHook] = compressionHooks
        hooks += [StopAtStepHook(lastStep: totalSteps), logging, evaluation] as [SessionRunHook]
        if rc.debugCheckEvery > 0 { hooks.append(ConsistencyCheckHook(every: rc.debugCheckEvery, compressors: compressors)) }
        let faults = FaultInjectionHook.fromEnvironment()
        hooks += faults.filter { $0.fault != .kill } as [SessionRunHook]
        hooks.append(checkpoints)
        hooks += faults.filter { $0.fault == .kill } as [SessionRunHook]

        var start = (step: 0, position: BatchPosition(epoch: 0, stepInEpoch: 0))
        if rc.resume {
            if let restored = try checkpoints.restore(model: model, optimizer: optimizer, worldSize: comm.size) {
                start = (restored.step, restored.position)
                for hook in compressionHooks { hook.pendingRestore = restored.compressors[hook.compressor.kind] }
                checkpoints.position = restored.position
                metrics.discardLines(after: restored.step)
                log.info("resumed from step \(restored.step) of \(saveDir.path)")
            } else {
                // Nothing to resume (a run stopped before its first checkpoint): start over,
                // without the old run's metric lines.
                metrics.discardLines(after: -1)
                log.info("no checkpoint in \(saveDir.path) to resume from: starting at step 0")
            }
        }
        log.info("training \(model.name) (\(model.parameterCount) params) on \(trainSpec.data.count) samples, "
                 + "\(totalSteps) steps of global batch \(trainSpec.batchSize) on \(comm.size) rank(s); FP32 GEMM: \(FP32Kernels.path)")
        let session = try MonitoredSession(model: model, optimizer: optimizer, communicator: comm, hooks: hooks,
                                           bucketBytes: rc.bucketBytes, startStep: start.step)
        session.threadReplicas = rc.threadReplicas ?? Parallel.workers
        session.syncBatchNorm = rc.syncBatchNorm
        var batches = try schedule.makeIterator(startingAt: start.position, rank: comm.rank, worldSize: comm.size)
        let clock = DispatchTime.now()
        while !session.shouldStop {
            let batch = batches.next()
            checkpoints.position = batches.position
            try session.run(images: batch.images, labels: batch.labels, globalBatchSize: batch.globalCount)
            if evalSpec.everySteps == 0, batches.position.stepInEpoch == 0, !session.shouldStop {
                try evaluation.evaluate(session, step: session.globalStep)
            }
        }
        let seconds = Double(DispatchTime.now().uptimeNanoseconds - clock.uptimeNanoseconds) / 1e9
        let final = try evaluation.evaluate(session, step: session.globalStep)
        try checkpoints.save(session, step: session.globalStep)
        try session.close()

        let summary = TrainSummary(
            model: model.name, worldSize: comm.size, steps: session.globalStep,
            epochs: Double(session.globalStep) / Double(schedule.stepsPerEpoch), batchSize: trainSpec.batchSize,
            seed: trainSpec.seed, testAccuracy: final.accuracy, testLoss: final.loss, params: model.parameterCount,
            flops: model.flops, trainSamplesPerSecond: logging.steadySamplesPerSecond > 0
                ? logging.steadySamplesPerSecond : logging.samplesPerSecond,
            trainSeconds: seconds, layers: model.layerSummaries,
            evaluations: evaluation.history.map {
                .init(step: $0.step, testAccuracy: $0.result.accuracy, testLoss: $0.result.loss)
            })
        if comm.isChief {
            var sections: [String: Data] = [:]
            for c in compressors { sections[c.kind] = try c.summarySection(model: model) }
            try AtomicFile.write(summary.jsonData(sections: sections), to: saveDir.appendingPathComponent("summary.json"))
            log.info(summary.table)
            for c in compressors { log.info(TextTable.render(c.summaryRows(model: model))) }
            log.info("results in \(saveDir.path)/ (summary.json, metrics.jsonl, checkpoints/)")
        }
        return TrainOutcome(summary: summary, model: model, saveDir: saveDir)
    }
}

extension Dataset {
    /// Throws when this data's images or classes are not the model's (`DataSignature.requireFits`).
    func checkFits(_ model: Model) throws {
        try DataSignature(imageShape: imageShape, classes: classes, imagesSource: "the training data",
                          classesSource: "the training data").requireFits(model)
    }
}
