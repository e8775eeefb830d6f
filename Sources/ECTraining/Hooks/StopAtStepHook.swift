/// Requests a stop once `lastStep` steps have run (as `tf.train.StopAtStepHook`).
public final class StopAtStepHook: SessionRunHook {
    public let lastStep: Int
    public init(lastStep: Int) { self.lastStep = lastStep }

    public func afterCreateSession(_ session: MonitoredSession) throws {
        if session.globalStep >= lastStep { session.requestStop() }
    }

    public func afterRun(_ context: RunContext, result: StepResult) throws {
        if result.step >= lastStep { context.requestStop() }
    }
}
