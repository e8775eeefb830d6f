import Foundation
import ECCheckpoint
import ECCollective
import ECCompression
import ECNN
import ECTensor

/// Drives a `Compressor` from a `MonitoredSession`, as the seed's
/// `CompressionHook(compressor, save_dir=...)` for `tf.train.MonitoredSession`:
///
/// ```swift
/// let pruner = try Pruner(config: PrunerConfig(compressionRatio: 0.5, stepInterval: 1000, numTrials: 10))
/// let hook = CompressionHook(pruner, saveDir: "output")
/// let session = try MonitoredSession(model: model, optimizer: sgd, communicator: world, hooks: [hook])
/// ```
///
/// On every rank: prepares the compressor once parameters are identical across ranks, calls it
/// after each optimizer update (the chief decides and broadcasts through a `PayloadChannel`),
/// then re-applies its masks to every parameter and to the optimizer's state for it, so pruned
/// or sparsified elements stay zero. At the end the chief writes `saveDir/<kind>.json` (the
/// compressor's summary section), `saveDir/model.json` (the architecture) and
/// `saveDir/<kind>.safetensors` (the weights and the compressor's decisions) — enough for
/// `GapFinetune(modelDir: saveDir)` without any other hook.
public final class CompressionHook: SessionRunHook {
    public let compressor: Compressor
    public let saveDir: URL?
    /// The channel the chief's decisions travel through (bytes sent, compression ratio).
    public private(set) var channel: PayloadChannel?
    /// State from a checkpoint, restored right after `prepare` (resume).
    public var pendingRestore: CheckpointHook.CompressorState?
    /// Every decision the compressor made in this session, in step order.
    public private(set) var events: [CompressionEvent] = []
    let metrics: MetricsLog?

    /// - Parameters:
    ///   - metrics: where each decision is written as a `compression` line (chief only).
    ///   - decisionDelay: for the pruner and the sparsifier, 1 (the default): the chief computes
    ///     the decision of a trial step in the background while the next step trains, and every
    ///     rank applies it after that step's update; 0: at once, stalling the step
    ///     (docs/distributed.md, "Decisions computed while training goes on").
    ///   - finalStep: the run's last step, when known: a decision there is applied at once (else
    ///     when the session closes, `end`).
    public init(_ compressor: Compressor, saveDir: String? = nil, metrics: MetricsLog? = nil, decisionDelay: Int = 1,
                finalStep: Int? = nil) {
        self.compressor = compressor
        self.saveDir = saveDir.map { URL(fileURLWithPath: $0) }
        self.metrics = metrics
        if let delayed = compressor as? any MaskCompressor {
            delayed.timing.delay = decisionDelay  // 0 or 1 (`DecisionTiming.delay` checks)
            delayed.timing.finalStep = finalStep
        }
    }

    public func afterCreateSession(_ session: MonitoredSession) throws {
        channel = PayloadChannel(communicator: session.communicator, sender: compressor.kind)
        try compressor.prepare(model: session.model, communicator: session.communicator)
        if let saved = pendingRestore {
            try compressor.restore(tensors: saved.tensors, state: saved.state)
            pendingRestore = nil
        }
        applyMasks(session)
    }

    public func beforeRun(_ context: RunContext) throws {
        try compressor.beforeStep(context.step, model: context.session.model)
    }

    public func afterRun(_ context: RunContext, result: StepResult) throws {
        guard let channel else { return }
        record(try compressor.afterStep(result.step, model: context.session.model, channel: channel))
        applyMasks(context.session)
    }

    /// Applies a decision still waiting (delayed from the last step), then writes the outputs.
    public func end(_ session: MonitoredSession) throws {
        if let channel, let event = try compressor.afterLastStep(session.globalStep, model: session.model, channel: channel) {
            record(event)
            applyMasks(session)
        }
        guard session.communicator.isChief, let saveDir else { return }
        try FileManager.default.createDirectory(at: saveDir, withIntermediateDirectories: true)
        try AtomicFile.write(compressor.summarySection(model: session.model),
                             to: saveDir.appendingPathComponent("\(compressor.kind).json"))
        var tensors = session.model.stateDict()
        for (name, t) in compressor.checkpointTensors().sorted { tensors[name] = t }
        try SavedRun.writeModel(session.model, tensors: (compressor.kind, tensors), to: saveDir)
    }

    private func record(_ event: CompressionEvent?) {
        guard let event else { return }
        events.append(event)
        var line: [String: Any] = event.values
        line["compressor"] = event.kind
        line["trial"] = event.trial
        metrics?.write("compression", step: event.step, line)
    }

    /// Zeroes what the compressor removed, in every parameter and its optimizer slots.
    func applyMasks(_ session: MonitoredSession) {
        for p in session.model.parameters {
            compressor.applyMasks(to: &p.value, parameter: p.name)
            session.optimizer.inner.forEachSlot(of: p.name) { compressor.applyMasks(to: &$0, parameter: p.name) }
        }
    }
}
