import ECNN

/// Evaluates on the test set every `every` steps (all ranks; the chief logs the result).
public final class EvaluationHook: SessionRunHook {
    public let every: Int
    let data: Dataset
    let metrics: MetricsLog?
    let log: Logger
    /// Every evaluation so far, as `(step, result)`.
    public private(set) var history: [(step: Int, result: EvaluationResult)] = []

    public init(every: Int, data: Dataset, metrics: MetricsLog?, log: Logger) {
        self.every = every
        self.data = data
        self.metrics = metrics
        self.log = log
    }

    public func afterRun(_ context: RunContext, result: StepResult) throws {
        guard every > 0, result.step % every == 0 else { return }
        try evaluate(context.session, step: result.step)
    }

    /// Runs one evaluation now and records it.
    @discardableResult
    public func evaluate(_ session: MonitoredSession, step: Int) throws -> EvaluationResult {
        if let last = history.last, last.step == step { return last.result }
        let r = try Evaluator.evaluate(session.model, on: data, communicator: session.communicator)
        history.append((step, r))
        log.info(String(format: "step %d: test accuracy %.4f, test loss %.4f", step, r.accuracy, r.loss))
        metrics?.write("eval", step: step, ["test_accuracy": r.accuracy, "test_loss": r.loss])
        return r
    }
}
