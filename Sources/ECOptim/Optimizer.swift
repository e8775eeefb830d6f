import ECNN
import ECTensor

/// Updates parameters from their accumulated gradients, one step at a time.
///
/// An optimizer keeps per-parameter state tensors ("slots": SGD's `momentum`, Adam's `m` and
/// `v`), keyed by parameter name and created as zeros the first time a parameter is stepped.
/// The state exports to and imports from `NamedTensors` for checkpoints:
///
///     optimizer/<parameter name>/<slot>   the slot, shaped like the parameter
///                                         (e.g. `optimizer/conv1/weight/momentum`)
///     optimizer/step                      [high, low], step count = high·2^24 + low
///
/// The step count is split in two so that it round-trips exactly through Float32 (a single
/// Float is exact only up to 2^24 steps).
///
/// Optimizers are used from one thread at a time (the training loop's).
public protocol Optimizer: AnyObject {
    /// The number of steps taken so far; the next `step` uses `learningRate(at: stepCount)`.
    var stepCount: Int { get }
    /// The learning-rate schedule this optimizer follows.
    var schedule: LRSchedule { get }
    /// The rate the next `step` will use: `schedule.learningRate(at: stepCount)`.
    var learningRate: Float { get }
    /// Names of the per-parameter state tensors, in a fixed order (empty for plain SGD).
    var slotNames: [String] { get }

    /// Applies one update to every trainable parameter from its `grad` at the current
    /// learning rate, then increments `stepCount`. Non-trainable parameters (running
    /// statistics) are skipped and get no state.
    /// - Precondition: each trainable parameter's `grad` has the shape of its `value`, and an
    ///   existing slot has that shape too.
    func step(_ parameters: [Parameter])

    /// The state as `optimizer/<parameter>/<slot>` tensors plus `optimizer/step`. The tensors
    /// share storage with the optimizer's (copy-on-write), so exporting is cheap.
    func exportState() -> NamedTensors

    /// Replaces the state with `state`, validated against `parameters` (the model the
    /// optimizer will step). Entries outside the `optimizer/` namespace (a checkpoint's
    /// weights and masks) are ignored. Nothing changes if validation fails.
    /// - Throws: `OptimizerError.missingState` for a slot absent while the step count is
    ///   above 0, or an absent `optimizer/step`; `.shapeMismatch` for a slot shaped unlike its
    ///   parameter; `.unexpectedState` for an unknown slot or parameter;
    ///   `.invalidStepCount` for a malformed `optimizer/step`.
    func importState(_ state: NamedTensors, for parameters: [Parameter]) throws

    /// Calls `body` on each existing slot of `parameterName` (none if the parameter was never
    /// stepped or the optimizer keeps no slots), so that a compressor can mask the state of a
    /// pruned parameter. `body` must keep the tensor's shape.
    func forEachSlot(of parameterName: String, _ body: (inout Tensor) -> Void)
}

extension Optimizer {
    public var learningRate: Float { schedule.learningRate(at: stepCount) }
}
