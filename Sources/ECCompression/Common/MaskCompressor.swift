import ECCheckpoint
import ECCollective
import ECNN
import ECTensor
import Foundation

/// What the compressors that decide masks (`Pruner`, `Sparsifier`) share: a gradual schedule,
/// decisions the chief alone makes and every rank adopts from one broadcast payload, and
/// element masks that keep removed weights at zero.
///
/// A decision step runs the same skeleton for both (`decideOnSchedule`):
/// 1. every step, the chief updates its statistics (`observe`, e.g. the pruner's importance);
/// 2. at the step of trial k, the chief decides (`decide(trial:)`, a name → `Mask` entry list);
/// 3. the entries travel as one verified zstd `.masks` payload (`PayloadChannel.broadcast`);
/// 4. every rank, the chief included, adopts the *decoded* payload (`adopt`), which checks it
///    and rebuilds the element masks — so the masks are bit-identical on every rank;
/// 5. the decision is returned as a `CompressionEvent`.
/// Zeroing is not part of the decision: the training side (`CompressionHook`) calls
/// `applyMasks` on every parameter and each of its optimizer slots after every step, which
/// covers the decision step too — one pass, not two.
///
/// **Delayed decisions** (`decisionDelay` = 1, which `CompressionHook` sets): the decision of
/// trial step s is computed by the chief on a background thread while step s + 1 trains — from
/// the state at the start of step s + 1 (`beforeStep`: the statistics after step s, the weights
/// with step s's masks applied, exactly what a checkpoint of step s holds) — and every rank
/// applies it after the update of step s + 1 (steps 3–5 there). Deterministic on every rank
/// and for a run resumed from any checkpoint (one of step s restarts the same computation), and
/// the decision no longer stalls a step: the chief's sort and mask building run beside the
/// training threads, at low priority. A decision at the run's last step (`finalStep`), or with
/// `step_interval` 1, is made at once.
package protocol MaskCompressor: Compressor {
    /// When decisions happen and how much they remove.
    var schedule: GradualSchedule { get }
    /// Trials done so far (restored on resume).
    var progress: TrialProgress { get set }
    /// The current decisions as element masks.
    var masks: ElementMasks { get }
    /// The world given to `prepare`; nil before.
    var communicator: Communicator? { get }
    /// The delay of decisions and the chief's decision in flight.
    var timing: DecisionTiming { get set }
    /// The chief's statistics after every step while trials remain (default: none).
    func observe()
    /// The chief's decision for `trial` as work that may run on another thread while training
    /// goes on: it reads only what it captures now (statistics, keep flags, weight values).
    func decision(trial: Int) -> @Sendable () -> [String: PayloadValue]
    /// Checks a decoded decision against the current one and adopts it (every rank).
    func adopt(_ payload: Payload) throws
    /// The numbers describing the decision just adopted (`target_ratio`, `sparsity`…).
    func eventValues(trial: Int) -> [String: Double]
    /// The compressor's error for `operation` called before `prepare`.
    func notPrepared(_ operation: String) -> Error
}

/// When a mask compressor's decisions take effect (`MaskCompressor`, "Delayed decisions").
package struct DecisionTiming {
    /// 0: a decision is applied after the update of its own step; 1: after the next step's.
    package var delay = 0 {
        didSet { precondition((0...1).contains(delay), "decisionDelay must be 0 or 1, got \(delay)") }
    }
    /// The run's last step, when known: a decision there is applied at once.
    package var finalStep: Int?
    /// The chief's decision being computed in the background.
    package var pending: BackgroundDecision?

    package init() {}

    /// The delay of a decision made at `step` under `schedule`.
    func delay(ofDecisionAt step: Int, schedule: GradualSchedule) -> Int {
        delay > 0 && schedule.stepInterval > delay && step != finalStep ? delay : 0
    }
}

/// A decision computed on a thread of its own, at low priority (nice 10: the training threads
/// keep the cores; the decision runs beside them and in their idle moments).
package final class BackgroundDecision: @unchecked Sendable {
    package let trial: Int
    package let step: Int
    private let done = DispatchSemaphore(value: 0)
    private var result: [String: PayloadValue] = [:]

    init(trial: Int, step: Int, work: @escaping @Sendable () -> [String: PayloadValue]) {
        self.trial = trial
        self.step = step
        let thread = Thread { [self] in
            _ = setpriority(__priority_which_t(PRIO_PROCESS.rawValue), 0, 10)  // on Linux: this thread only
            result = work()
            done.signal()
        }
        thread.name = "ec-decision"
        thread.stackSize = 8 << 20
        thread.start()
    }

    /// The decision, once computed (waits for it).
    package func join() -> [String: PayloadValue] {
        done.wait()
        done.signal()
        return result
    }
}

extension MaskCompressor {
    package func observe() {}

    /// The chief's decision for `trial`, computed now.
    package func decide(trial: Int) -> [String: PayloadValue] { decision(trial: trial)() }

    /// The chief's decision of `trial`, made at `decisionStep` and applied now: the one computed
    /// in the background when it is that one (taken, so it is joined once), else made here.
    private func delayedDecision(trial: Int, decisionStep: Int) -> [String: PayloadValue] {
        let pending = timing.pending
        timing.pending = nil
        guard let pending, pending.trial == trial, pending.step == decisionStep else { return decide(trial: trial) }
        return pending.join()
    }

    /// Steps 1–5 of the type's documentation; nil at steps without a decision. With a delay,
    /// a decision of step − 1 is applied first (the chief's background result, or computed now
    /// if `beforeStep` did not start it), then statistics are observed, then a decision due at
    /// this step is made at once or left for the next step.
    package func decideOnSchedule(_ step: Int, channel: PayloadChannel) throws -> CompressionEvent? {
        guard let communicator else { throw notPrepared("afterStep") }
        precondition(channel.communicator === communicator, "the payload channel must use the world given to prepare")
        var event: CompressionEvent?
        if let (trial, decisionStep) = delayedTrial(appliedAt: step) {
            event = try conclude(trial: trial, decisionStep: decisionStep, appliedAt: step,
                                 entries: communicator.isChief ? delayedDecision(trial: trial, decisionStep: decisionStep) : nil,
                                 channel: channel)
        }
        if communicator.isChief && progress.trialsDone < schedule.numTrials { observe() }
        if let trial = schedule.trial(atStep: step), trial > progress.trialsDone,
           timing.delay(ofDecisionAt: step, schedule: schedule) == 0 {
            event = try conclude(trial: trial, decisionStep: step, appliedAt: step,
                                 entries: communicator.isChief ? decide(trial: trial) : nil, channel: channel)
        }
        return event
    }

    /// When training ends after `step`: a delayed decision of `step` (one no later step will
    /// apply) is applied now, on every rank.
    package func concludeDelayed(lastStep step: Int, channel: PayloadChannel) throws -> CompressionEvent? {
        guard let communicator else { throw notPrepared("afterLastStep") }
        guard let (trial, decisionStep) = delayedTrial(appliedAt: step + 1) else { return nil }
        return try conclude(trial: trial, decisionStep: decisionStep, appliedAt: step,
                            entries: communicator.isChief ? delayedDecision(trial: trial, decisionStep: decisionStep) : nil,
                            channel: channel)
    }

    /// Before step `step` trains: the chief starts the delayed decision of step − 1, if one is
    /// due, from the state now (`MaskCompressor`, "Delayed decisions").
    package func startDelayedDecision(beforeStep step: Int) {
        guard communicator?.isChief == true, timing.pending == nil,
              let (trial, decisionStep) = delayedTrial(appliedAt: step) else { return }
        timing.pending = BackgroundDecision(trial: trial, step: decisionStep, work: decision(trial: trial))
    }

    /// The trial decided at step − 1 and applied after `step`, if any.
    private func delayedTrial(appliedAt step: Int) -> (trial: Int, decisionStep: Int)? {
        let decisionStep = step - 1
        guard let trial = schedule.trial(atStep: decisionStep), trial > progress.trialsDone,
              timing.delay(ofDecisionAt: decisionStep, schedule: schedule) == 1 else { return nil }
        return (trial, decisionStep)
    }

    /// Steps 3–5 for `trial`: broadcast the chief's entries, adopt them on every rank.
    private func conclude(trial: Int, decisionStep: Int, appliedAt step: Int, entries: [String: PayloadValue]?,
                          channel: PayloadChannel) throws -> CompressionEvent {
        try adopt(try channel.broadcast(kind: .masks, step: decisionStep, entries: entries))
        progress = TrialProgress(trialsDone: trial, lastDecisionStep: decisionStep)
        var values = eventValues(trial: trial)
        if step != decisionStep { values["decision_step"] = Double(decisionStep) }
        return CompressionEvent(kind: kind, step: step, trial: trial, values: values)
    }

    /// Zeroes the removed elements of `tensor` (parameter `parameter`'s value or an optimizer
    /// slot of the same shape); a no-op for a parameter with nothing removed.
    package func applyElementMasks(to tensor: inout Tensor, parameter: String) {
        masks.apply(to: &tensor, parameter: parameter)
    }

    /// The compressor's `summary.json` section: `summary` as pretty, key-sorted JSON.
    package func summaryJSON<S: Encodable>(_ summary: () -> S) throws -> Data {
        guard communicator != nil else { throw notPrepared("summarySection") }
        return try VersionedJSON.encode(summary(), pretty: true)
    }
}

/// How far a gradual compressor's schedule has run: saved with its checkpoint state.
package struct TrialProgress: Equatable, Sendable {
    package var trialsDone = 0
    /// The step of the last decision, nil before the first.
    package var lastDecisionStep: Int?

    package init(trialsDone: Int = 0, lastDecisionStep: Int? = nil) {
        self.trialsDone = trialsDone
        self.lastDecisionStep = lastDecisionStep
    }

    /// Why a saved progress cannot belong to a schedule of `numTrials` trials, nil when it can.
    package func problem(numTrials: Int) -> String? {
        guard (0...numTrials).contains(trialsDone) else { return "trials_done is \(trialsDone), expected 0...\(numTrials)" }
        guard (trialsDone == 0) == (lastDecisionStep == nil) else {
            return "trials_done \(trialsDone) and last_decision_step \(lastDecisionStep.map(String.init) ?? "null") disagree"
        }
        return nil
    }
}

/// Per parameter with removed elements, the bit pattern ANDed into its Float storage: kept
/// elements keep their exact bits (NaN included), removed ones become +0.
package struct ElementMasks: Sendable {
    package private(set) var byParameter: [String: [UInt32]] = [:]

    package init(_ byParameter: [String: [UInt32]] = [:]) { self.byParameter = byParameter }

    /// The AND pattern of a flag list: all ones where kept, zero where removed.
    package static func pattern(_ keep: [Bool]) -> [UInt32] { keep.map { $0 ? ~0 : 0 } }

    /// Applies the mask of `parameter` to `tensor` in one pass (a no-op without one).
    package func apply(to tensor: inout Tensor, parameter: String) {
        guard let mask = byParameter[parameter] else { return }
        Self.and(&tensor, mask: mask)
    }

    /// ANDs `mask` into `tensor`'s storage.
    package static func and(_ tensor: inout Tensor, mask: [UInt32]) {
        precondition(tensor.count == mask.count, "tensor of \(tensor.count) elements for a mask of \(mask.count)")
        tensor.withUnsafeMutableBufferPointer { values in
            values.withMemoryRebound(to: UInt32.self) { bits in
                mask.withUnsafeBufferPointer { m in
                    for i in 0..<bits.count { bits[i] &= m[i] }
                }
            }
        }
    }
}
