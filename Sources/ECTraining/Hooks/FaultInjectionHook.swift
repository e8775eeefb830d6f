import Foundation

/// Test-only fault injection, so tests can prove the failure paths:
/// - `EC_FAULT_INJECT=<rank>:<step>`: that rank throws `TrainingError.injectedFault` after that
///   step — a failure on one rank must end the whole job, never leave the others hanging;
/// - `EC_FAULT_DIVERGE=<rank>:<step>`: that rank nudges one element of its first parameter (in
///   name order) after that step — `--debug` must then report the replicas diverged;
/// - `EC_FAULT_KILL=<rank>:<step>`: that rank SIGKILLs itself after that step (after the
///   step's checkpoint, if any, is written: the kill hook runs last) — no error path, no
///   cleanup, as when a node dies: the job must end promptly and the last checkpoint survive.
public final class FaultInjectionHook: SessionRunHook {
    public enum Fault: Equatable { case fail, diverge, kill }
    public let fault: Fault
    public let rank: Int
    public let step: Int

    /// The hooks the environment asks for (none in the normal case).
    public static func fromEnvironment(_ env: [String: String] = ProcessInfo.processInfo.environment) -> [FaultInjectionHook] {
        [("EC_FAULT_INJECT", Fault.fail), ("EC_FAULT_DIVERGE", .diverge), ("EC_FAULT_KILL", .kill)].compactMap { variable, fault in
            let parts = env[variable]?.split(separator: ":").compactMap { Int($0) } ?? []
            return parts.count == 2 ? FaultInjectionHook(fault, rank: parts[0], step: parts[1]) : nil
        }
    }

    public init(_ fault: Fault, rank: Int, step: Int) {
        self.fault = fault
        self.rank = rank
        self.step = step
    }

    public func afterRun(_ context: RunContext, result: StepResult) throws {
        guard result.step == step, context.session.communicator.rank == rank else { return }
        switch fault {
        case .fail:
            throw TrainingError.injectedFault(rank: rank, step: step)
        case .diverge:
            if let p = context.session.model.parameters.first { p.value[flat: 0] += 1e-3 }
        case .kill:
            kill(getpid(), SIGKILL)
        }
    }
}
