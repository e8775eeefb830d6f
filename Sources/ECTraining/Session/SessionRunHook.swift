import ECTensor

/// What one training step produced, as every rank sees it.
public struct StepResult {
    /// The global step number just completed (1-based).
    public let step: Int
    /// This rank's shard's contribution to the global mean loss (Σ shard losses / global batch);
    /// summing it over ranks gives the global-batch loss.
    public let localLoss: Float
    /// This rank's shard size and the global batch size.
    public let localSamples: Int
    public let globalSamples: Int
    /// Wall time of the step on this rank, seconds.
    public let seconds: Double
}

/// Per-step handle given to hooks: lets them ask the session to stop after this step.
public final class RunContext {
    public unowned let session: MonitoredSession
    /// The step about to run / just run (1-based).
    public let step: Int
    public private(set) var stopRequested = false

    init(session: MonitoredSession, step: Int) {
        self.session = session
        self.step = step
    }

    /// Ends training after the current step (every rank must request it at the same step).
    public func requestStop() { stopRequested = true }
}

/// Observer of a `MonitoredSession`, as TensorFlow's `tf.train.SessionRunHook`.
///
/// Every rank runs every hook at the same points, so a hook may use collectives; hooks that
/// write files or logs do so on the chief only (`session.communicator.isChief`).
public protocol SessionRunHook: AnyObject {
    /// Before the session is set up (parameters may still change, e.g. be broadcast).
    func begin(_ session: MonitoredSession) throws
    /// After parameters are final and identical on every rank, before the first step.
    func afterCreateSession(_ session: MonitoredSession) throws
    /// Before each step's forward pass.
    func beforeRun(_ context: RunContext) throws
    /// After each step's optimizer update. Each parameter's `grad` still holds the gradient
    /// used for the update (allreduced across ranks).
    func afterRun(_ context: RunContext, result: StepResult) throws
    /// When the session closes (normally, or after a stop request).
    func end(_ session: MonitoredSession) throws
}

extension SessionRunHook {
    public func begin(_ session: MonitoredSession) throws {}
    public func afterCreateSession(_ session: MonitoredSession) throws {}
    public func beforeRun(_ context: RunContext) throws {}
    public func afterRun(_ context: RunContext, result: StepResult) throws {}
    public func end(_ session: MonitoredSession) throws {}
}
