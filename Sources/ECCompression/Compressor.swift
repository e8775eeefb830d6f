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

    /// On every rank after the optimizer update of `step` (1-based). Each trainable
    /// parameter's `grad` still holds the (allreduced) gradient used for that update. The chief
    /// updates its statistics; at a decision step the chief decides and broadcasts through
    /// `channel`, and every rank applies the decision to the parameters.
    func afterStep(_ step: Int, model: Model, channel: PayloadChannel) throws

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
