import Foundation

/// A checkpoint directory in a `CheckpointStore`: its step and location (`…/step-00000120`).
public struct CheckpointReference: Equatable, Sendable {
    /// The training step the checkpoint was saved at.
    public let step: Int
    /// The checkpoint's directory.
    public let url: URL

    /// A reference to the checkpoint of `step` in directory `url`.
    public init(step: Int, url: URL) {
        self.step = step
        self.url = url
    }
}
