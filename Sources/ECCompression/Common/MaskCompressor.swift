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
package protocol MaskCompressor: Compressor {
    /// When decisions happen and how much they remove.
    var schedule: GradualSchedule { get }
    /// Trials done so far (restored on resume).
    var progress: TrialProgress { get set }
    /// The current decisions as element masks.
    var masks: ElementMasks { get }
    /// The world given to `prepare`; nil before.
    var communicator: Communicator? { get }
    /// The chief's statistics after every step while trials remain (default: none).
    func observe()
    /// The chief's decision for `trial`: mask entries by name.
    func decide(trial: Int) -> [String: PayloadValue]
    /// Checks a decoded decision against the current one and adopts it (every rank).
    func adopt(_ payload: Payload) throws
    /// The numbers describing the decision just adopted (`target_ratio`, `sparsity`…).
    func eventValues(trial: Int) -> [String: Double]
    /// The compressor's error for `operation` called before `prepare`.
    func notPrepared(_ operation: String) -> Error
}

extension MaskCompressor {
    package func observe() {}

    /// Steps 1–5 of the type's documentation; nil at steps without a decision.
    package func decideOnSchedule(_ step: Int, channel: PayloadChannel) throws -> CompressionEvent? {
        guard let communicator else { throw notPrepared("afterStep") }
        precondition(channel.communicator === communicator, "the payload channel must use the world given to prepare")
        if communicator.isChief && progress.trialsDone < schedule.numTrials { observe() }
        guard let trial = schedule.trial(atStep: step), trial > progress.trialsDone else { return nil }
        let entries = communicator.isChief ? decide(trial: trial) : nil
        try adopt(try channel.broadcast(kind: .masks, step: step, entries: entries))
        progress = TrialProgress(trialsDone: trial, lastDecisionStep: step)
        return CompressionEvent(kind: kind, step: step, trial: trial, values: eventValues(trial: trial))
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
