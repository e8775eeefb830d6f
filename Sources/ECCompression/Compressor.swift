import ECCollective
import ECNN
import ECTensor
import Foundation

/// A compression algorithm driven during training (the seed's `Compressor`): `Pruner`,
/// `LSQQuantizer`, `Sparsifier`. The training side (`CompressionHook` in ECTraining) calls it
/// on every rank at the same points; the chief alone computes decisions and broadcasts them
/// through the `PayloadChannel`, so every rank applies bit-identical decisions.
public protocol Compressor: AnyObject {
    /// The job file's section name: `pruner`, `quantizer`, `sparsifier`.
    var kind: String { get }

    /// Once on every rank, after parameters are identical across ranks and before step 1.
    func prepare(model: Model, communicator: Communicator) throws

    /// On every rank before the forward pass of `step` (1-based). A compressor whose decisions
    /// are delayed (`MaskCompressor`) starts the chief's background decision here.
    func beforeStep(_ step: Int, model: Model) throws

    /// On every rank after the optimizer update of `step` (1-based). Each trainable
    /// parameter's `grad` still holds the (allreduced) gradient used for that update. The chief
    /// updates its statistics; at a decision step the chief decides and broadcasts through
    /// `channel`, and every rank applies the decision to the parameters. Returns the decision
    /// made at this step (identical on every rank), nil at steps without one.
    @discardableResult
    func afterStep(_ step: Int, model: Model, channel: PayloadChannel) throws -> CompressionEvent?

    /// On every rank when training ends after `step` (the session closes): a decision still
    /// waiting to be applied (a delayed one, `MaskCompressor`) is applied now. Returns it.
    @discardableResult
    func afterLastStep(_ step: Int, model: Model, channel: PayloadChannel) throws -> CompressionEvent?

    /// Re-applies the current decisions to `tensor`, which is parameter `parameter`'s value or
    /// one of its optimizer slots (same shape): zeroes pruned or sparsified elements. A no-op
    /// for parameters the compressor does not touch.
    func applyMasks(to tensor: inout Tensor, parameter: String)

    /// The compressor's `summary.json` section (a JSON object).
    func summarySection(model: Model) throws -> Data

    /// Rows of the readable per-layer table printed at the end of a run (first row: headers).
    func summaryRows(model: Model) -> [[String]]

    /// The decisions every rank must hold bit-identically (masks, step sizes), by name; the
    /// `--debug` consistency check compares them across ranks with the parameters.
    var decisionTensors: NamedTensors { get }

    /// Tensors to store in a checkpoint (names prefixed with `kind/`), and the JSON state
    /// (trial counter, schedule position) beside them.
    func checkpointTensors() -> NamedTensors
    func checkpointState() throws -> Data
    /// Restores what `checkpointTensors`/`checkpointState` saved (resume).
    func restore(tensors: NamedTensors, state: Data) throws
}

extension Compressor {
    public func beforeStep(_ step: Int, model: Model) throws {}
    @discardableResult
    public func afterLastStep(_ step: Int, model: Model, channel: PayloadChannel) throws -> CompressionEvent? { nil }
}

/// A decision a compressor made at a step — a pruning trial, a sparsity increase, a step-size
/// update — written to `metrics.jsonl` as a `compression` line and marked on the run report.
public struct CompressionEvent: Equatable, Sendable {
    /// The compressor's `kind` (`pruner`, `quantizer`, `sparsifier`).
    public var kind: String
    public var step: Int
    /// 1-based index of the decision (trial / update number).
    public var trial: Int
    /// Numbers describing the decision, by snake_case name (`target_ratio`, `achieved_ratio`,
    /// `sparsity`, `mean_step_change`…).
    public var values: [String: Double]

    public init(kind: String, step: Int, trial: Int, values: [String: Double]) {
        self.kind = kind
        self.step = step
        self.trial = trial
        self.values = values
    }
}
