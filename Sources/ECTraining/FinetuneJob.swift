import ECReport
import Foundation
import ECCheckpoint
import ECCollective
import ECCompression
import ECNN

/// The before/after figures of a GapFinetune run (`summary.json`'s `gap_finetune` section).
public struct FinetuneReport: Codable {
    public let from: String
    public let paramsBefore: Int, paramsAfter: Int
    public let flopsBefore: Int, flopsAfter: Int
    /// The pruned (masked) model's test accuracy, which the extracted model equals before fine-tuning.
    public let accuracyPruned: Double
    public let accuracyExtractedBeforeFinetune: Double
    public let accuracyAfterFinetune: Double
    public let inferenceBefore: InferenceSpeed
    public let inferenceAfter: InferenceSpeed
    /// Channels per group, before → after.
    public let channels: [String: [Int]]
    /// Epochs of fine-tuning between the two accuracies (nil in summaries written before it was recorded).
    public var finetuneEpochs: Double?

    public init(from: String, paramsBefore: Int, paramsAfter: Int, flopsBefore: Int, flopsAfter: Int, accuracyPruned: Double,
                accuracyExtractedBeforeFinetune: Double, accuracyAfterFinetune: Double, inferenceBefore: InferenceSpeed,
                inferenceAfter: InferenceSpeed, channels: [String: [Int]], finetuneEpochs: Double? = nil) {
        self.from = from
        self.paramsBefore = paramsBefore
        self.paramsAfter = paramsAfter
        self.flopsBefore = flopsBefore
        self.flopsAfter = flopsAfter
        self.accuracyPruned = accuracyPruned
        self.accuracyExtractedBeforeFinetune = accuracyExtractedBeforeFinetune
        self.accuracyAfterFinetune = accuracyAfterFinetune
        self.inferenceBefore = inferenceBefore
        self.inferenceAfter = inferenceAfter
        self.channels = channels
        self.finetuneEpochs = finetuneEpochs
    }

    enum CodingKeys: String, CodingKey {
        case from, paramsBefore = "params_before", paramsAfter = "params_after", flopsBefore = "flops_before"
        case flopsAfter = "flops_after", accuracyPruned = "accuracy_pruned"
        case accuracyExtractedBeforeFinetune = "accuracy_extracted_before_finetune"
        case accuracyAfterFinetune = "accuracy_after_finetune", inferenceBefore = "inference_before"
        case inferenceAfter = "inference_after", channels, finetuneEpochs = "finetune_epochs"
    }

    /// The table printed at the end of `easycompress finetune`. The "before" column is the
    /// pruned model as the pruning run left it — masked: dense shapes, pruned channels zeroed but
    /// still computed, so the dense model's parameter count, FLOPs and speed — which the
    /// extracted model equals before fine-tuning. The accuracy change includes the fine-tuning
    /// epochs, which a dense model trained as long would get too (docs/benchmarks.md has that
    /// control; `launch/demo` measures it).
    public var table: String {
        func change(_ a: Double, _ b: Double) -> String { String(format: "%+.1f%%", (b / max(a, 1e-12) - 1) * 100) }
        let epochs = finetuneEpochs.map { String(format: " after %g epoch%@ of fine-tuning", $0, $0 == 1 ? "" : "s") } ?? ""
        return TextTable.render([
            ["", "pruned (masked)", "extracted", "change"],
            ["parameters", "\(paramsBefore)", "\(paramsAfter)", change(Double(paramsBefore), Double(paramsAfter))],
            ["FLOPs / sample", "\(flopsBefore)", "\(flopsAfter)", change(Double(flopsBefore), Double(flopsAfter))],
            ["test accuracy", String(format: "%.4f", accuracyPruned),
             String(format: "%.4f", accuracyAfterFinetune),
             String(format: "%+.2f pt", (accuracyAfterFinetune - accuracyPruned) * 100) + epochs],
            ["samples/s at batch 256", String(format: "%.0f", inferenceBefore.batch256SamplesPerSecond),
             String(format: "%.0f", inferenceAfter.batch256SamplesPerSecond),
             change(inferenceBefore.batch256SamplesPerSecond, inferenceAfter.batch256SamplesPerSecond)],
            ["µs at batch 1", String(format: "%.1f", inferenceBefore.batch1Microseconds),
             String(format: "%.1f", inferenceAfter.batch1Microseconds),
             change(inferenceBefore.batch1Microseconds, inferenceAfter.batch1Microseconds)],
        ]) + "\npruned (masked): the pruning run's model, pruned channels zeroed in the dense shapes (dense parameters, "
            + "FLOPs and speed); the extracted model scores the same before fine-tuning ("
            + String(format: "%.4f", accuracyExtractedBeforeFinetune) + ")."
            + (epochs.isEmpty ? "" : "\nThe accuracy change includes the fine-tuning; a dense model trained as long gains too "
                + "(see launch/demo's dense control, docs/benchmarks.md).")
    }
}

/// `easycompress finetune --from DIR --config job.yaml`: extracts the physically smaller model
/// from a pruned save_dir (`GapFinetune`), fine-tunes it with the job's optimizer, data and
/// length, and reports params, FLOPs, accuracy and inference speed before and after.
public enum FinetuneJob {
    /// The job's save_dir is checked as `train` checks it (`--resume`, `--overwrite`; nothing is
    /// written before every check passed), and must not be the pruned run's own.
    public static func run(_ config: JobConfig, from pruned: String, communicator: Communicator, log: Logger,
                           resume: Bool = false, overwrite: Bool = false) throws -> (outcome: TrainOutcome, report: FinetuneReport) {
        TrainJob.configureThreads(config.threads)
        guard config.initFrom == nil else {
            throw ConfigError.invalid(path: "init_from", reason: "finetune starts from --from; remove init_from")
        }
        guard !config.hasCompressors else {
            throw ConfigError.invalid(path: "compression", reason: "finetune trains the extracted model without compressors")
        }
        let source = URL(fileURLWithPath: pruned).standardizedFileURL.resolvingSymlinksInPath()
        guard URL(fileURLWithPath: config.saveDir).standardizedFileURL.resolvingSymlinksInPath() != source else {
            throw ConfigError.invalid(path: "save_dir", reason: "\(config.saveDir) is the pruned run given by --from; the "
                                      + "fine-tuned model needs a save_dir of its own (e.g. \(pruned)-small)")
        }
        // Before the slow part (evaluating both models): a save_dir holding a run is refused now.
        try JobChecks.checkSaveDir(config.saveDir, communicator: communicator, resume: resume, overwrite: overwrite)
        let data = try JobData.load(config.dataset)
        let ft = try GapFinetune(modelDir: pruned, inputShape: data.signature.imageShape, classes: data.signature.classes, log: log)
        guard ft.original.name == config.model else {
            throw ConfigError.invalid(path: "model", reason: "\(pruned) holds a \(ft.original.name), the job names \(config.model)")
        }
        try data.signature.requireFits(ft.model)
        let test = data.test
        let pruneAccuracy = try Evaluator.evaluate(ft.original, on: test, communicator: communicator).accuracy
        let extractedAccuracy = try Evaluator.evaluate(ft.model, on: test, communicator: communicator).accuracy
        log.info(String(format: "extracted %@ from %@: %d → %d parameters; test accuracy %.4f (masked model %.4f)",
                        ft.model.name, pruned, ft.original.parameterCount, ft.model.parameterCount,
                        extractedAccuracy, pruneAccuracy))

        var job = config
        job.initFrom = nil
        job.report = false  // written below, once the summary has its gap_finetune section
        let outcome = try TrainJob.run(job, communicator: communicator, log: log, resume: resume, overwrite: overwrite, data: data,
                                       model: { ft.model })

        let dense = try config.makeModel(for: data.signature)
        // Inference speed is measured by the chief alone (the other ranks wait at a barrier,
        // so two ranks do not share the cores while it times).
        let unmeasured = InferenceSpeed(batch256SamplesPerSecond: 0, batch1Microseconds: 0)
        let speeds = communicator.isChief
            ? (InferenceSpeed.measure(ft.original, on: test), InferenceSpeed.measure(outcome.model, on: test))
            : (unmeasured, unmeasured)
        try communicator.barrier()
        let report = FinetuneReport(
            from: pruned, paramsBefore: dense.parameterCount, paramsAfter: ft.model.parameterCount,
            flopsBefore: dense.flops, flopsAfter: ft.model.flops, accuracyPruned: pruneAccuracy,
            accuracyExtractedBeforeFinetune: extractedAccuracy, accuracyAfterFinetune: outcome.summary.testAccuracy,
            inferenceBefore: speeds.0, inferenceAfter: speeds.1,
            channels: Dictionary(uniqueKeysWithValues: ft.groups.map { g in
                (g.id, [g.channels, ft.keep[g.id]?.filter { $0 }.count ?? g.channels])
            }), finetuneEpochs: outcome.summary.epochs)
        if communicator.isChief {
            let url = outcome.saveDir.appendingPathComponent("summary.json")
            var object = try JSONSerialization.jsonObject(with: Data(contentsOf: url)) as! [String: Any]
            let encoder = JSONEncoder()
            object["gap_finetune"] = try JSONSerialization.jsonObject(with: encoder.encode(report))
            try AtomicFile.write(JSONSerialization.data(withJSONObject: object, options: [.prettyPrinted, .sortedKeys]), to: url)
            log.info(report.table)
            if config.report { RunReport.write(saveDir: outcome.saveDir, log: log) }
        }
        return (outcome, report)
    }
}
