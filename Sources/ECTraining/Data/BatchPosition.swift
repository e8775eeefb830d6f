/// Where a training run is in its batch schedule: the epoch and the step within it.
///
/// Saved in checkpoints (`Codable`: `{"epoch": 2, "stepInEpoch": 17}`) so that a resumed run
/// continues with the very batch it would have taken next. Positions order by epoch, then step.
public struct BatchPosition: Codable, Hashable, Comparable, CustomStringConvertible {
    /// The epoch, from 0.
    public var epoch: Int
    /// The step within the epoch, in `0..<stepsPerEpoch` of the schedule it belongs to.
    public var stepInEpoch: Int

    /// A position; the default is the very start of training.
    public init(epoch: Int = 0, stepInEpoch: Int = 0) {
        self.epoch = epoch
        self.stepInEpoch = stepInEpoch
    }

    public static func < (lhs: BatchPosition, rhs: BatchPosition) -> Bool {
        (lhs.epoch, lhs.stepInEpoch) < (rhs.epoch, rhs.stepInEpoch)
    }

    public var description: String { "epoch \(epoch) step \(stepInEpoch)" }
}
