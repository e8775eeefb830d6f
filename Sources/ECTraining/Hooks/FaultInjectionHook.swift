import Foundation

/// Test-only fault injection: with `EC_FAULT_INJECT=<rank>:<step>` in the environment, that
/// rank throws `TrainingError.injectedFault` after that step, so tests can prove a failure on
/// one rank ends the whole job instead of leaving the others hanging.
public final class FaultInjectionHook: SessionRunHook {
    public let rank: Int
    public let step: Int

    /// The hook the environment asks for, or nil (the normal case).
    public static func fromEnvironment(_ env: [String: String] = ProcessInfo.processInfo.environment) -> FaultInjectionHook? {
        guard let spec = env["EC_FAULT_INJECT"] else { return nil }
        let parts = spec.split(separator: ":").compactMap { Int($0) }
        guard parts.count == 2 else { return nil }
        return FaultInjectionHook(rank: parts[0], step: parts[1])
    }

    public init(rank: Int, step: Int) {
        self.rank = rank
        self.step = step
    }

    public func afterRun(_ context: RunContext, result: StepResult) throws {
        if result.step == step && context.session.communicator.rank == rank {
            throw TrainingError.injectedFault(rank: rank, step: step)
        }
    }
}
