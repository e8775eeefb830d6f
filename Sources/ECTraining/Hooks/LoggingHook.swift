import Foundation
import ECCollective

/// Reports training progress on the chief: a live progress bar (steps, loss, samples/s, ETA)
/// when stderr is a terminal, plain log lines otherwise, and a `train` line in the metrics log
/// every `every` steps. The logged loss is the global-batch loss (allreduced over ranks, at
/// logging steps only, so every rank takes part in the same collective calls).
public final class LoggingHook: SessionRunHook {
    public let every: Int
    public let totalSteps: Int
    let metrics: MetricsLog?
    let log: Logger
    private var windowLoss = 0.0, windowSteps = 0, windowSamples = 0
    private var windowStart = DispatchTime.now()
    private var trainStart = DispatchTime.now()
    private var stepsThisRun = 0
    /// Samples per second over the whole run so far (all ranks together).
    public private(set) var samplesPerSecond = 0.0
    /// Steady-state samples/s: measured after the first `warmupSteps` steps.
    public private(set) var steadySamplesPerSecond = 0.0
    private var steadyStart: DispatchTime?
    private var steadySamples = 0
    private let warmupSteps = 10
    private var totalSamples = 0

    public init(every: Int, totalSteps: Int, metrics: MetricsLog?, log: Logger) {
        self.every = max(1, every)
        self.totalSteps = totalSteps
        self.metrics = metrics
        self.log = log
    }

    public func afterCreateSession(_ session: MonitoredSession) throws {
        trainStart = DispatchTime.now()
        windowStart = trainStart
    }

    public func afterRun(_ context: RunContext, result: StepResult) throws {
        stepsThisRun += 1
        totalSamples += result.globalSamples
        windowLoss += Double(result.localLoss)
        windowSteps += 1
        windowSamples += result.globalSamples
        if stepsThisRun == warmupSteps { steadyStart = DispatchTime.now(); steadySamples = 0 }
        else if steadyStart != nil { steadySamples += result.globalSamples }
        let now = DispatchTime.now()
        let elapsed = seconds(trainStart, now)
        samplesPerSecond = Double(totalSamples) / max(elapsed, 1e-9)
        if let s = steadyStart { steadySamplesPerSecond = Double(steadySamples) / max(seconds(s, now), 1e-9) }
        guard result.step % every == 0 || result.step == totalSteps else { return }
        var lossSum = [windowLoss]
        try lossSum.withUnsafeMutableBufferPointer { try context.session.communicator.allreduce($0, op: .sum) }
        let loss = lossSum[0] / Double(windowSteps)
        let rate = Double(windowSamples) / max(seconds(windowStart, now), 1e-9)
        let eta = Double(totalSteps - result.step) * elapsed / Double(stepsThisRun)
        log.progress(step: result.step, total: totalSteps, loss: loss, samplesPerSecond: rate, etaSeconds: eta)
        metrics?.write("train", step: result.step, ["loss": loss, "samples_per_second": rate,
                                                   "lr": Double(context.session.optimizer.learningRate)])
        windowLoss = 0; windowSteps = 0; windowSamples = 0; windowStart = now
    }

    public func end(_ session: MonitoredSession) throws { log.endProgress() }

    private func seconds(_ a: DispatchTime, _ b: DispatchTime) -> Double {
        Double(b.uptimeNanoseconds - a.uptimeNanoseconds) / 1e9
    }
}
