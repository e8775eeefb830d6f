import CMPI
import Foundation

/// The one funnel from MPI return codes to `CollectiveError` (tier 3 → tier 2).
///
/// Runs `body` (one MPI call) and throws `CollectiveError.mpi` with `MPI_Error_string`'s text
/// when it does not return `MPI_SUCCESS`. MPI only returns codes (instead of aborting) on a
/// communicator whose error handler is `MPI_ERRORS_RETURN`, which `MPICommunicator` sets.
///
/// - Parameters:
///   - what: the MPI function's name, e.g. `"MPI_Allreduce"`, reported in the error.
///   - body: performs the call and returns its code.
/// Every call holds `MPIRuntime.callLock`: the world runs at `MPI_THREAD_SERIALIZED`, and
/// besides the thread that trains, the progress thread of a `NonBlockingAllreduce` and thread
/// replicas (synchronised batch norm, gradient buckets started during backward) call MPI —
/// one at a time through this funnel.
func mpiCall(_ what: String, _ body: () -> Int32) throws {
    let code = MPIRuntime.callLock.withLock { body() }
    guard code != cmpi_success() else { return }
    throw CollectiveError.mpi(call: what, code: code, message: mpiErrorString(code))
}

/// `MPI_Error_string`'s text for `code`, or a generic text while MPI is not running (Open MPI
/// aborts the process if `MPI_Error_string` is called before `MPI_Init` or after finalization).
func mpiErrorString(_ code: Int32) -> String {
    var initialized: Int32 = 0
    var finalized: Int32 = 0
    guard MPI_Initialized(&initialized) == cmpi_success(), initialized != 0,
          MPI_Finalized(&finalized) == cmpi_success(), finalized == 0 else {
        return "MPI error \(code) (MPI is not running, so no error text is available)"
    }
    var text = [CChar](repeating: 0, count: Int(cmpi_max_error_string()) + 1)
    var length: Int32 = 0
    guard MPI_Error_string(code, &text, &length) == cmpi_success() else { return "unknown MPI error \(code)" }
    return String(decoding: text.prefix(Int(length)).map { UInt8(bitPattern: $0) }, as: UTF8.self)
}

/// Process-wide MPI life cycle: `MPI_Init_thread` at most once, `MPI_Finalize` at most once.
///
/// MPI cannot be initialized twice nor restarted after finalization; several
/// `MPICommunicator` values share this state, so the second `init` reuses the running library.
final class MPIRuntime: @unchecked Sendable {
    static let shared = MPIRuntime()

    /// The thread level we ask for: any thread may call MPI, one at a time (Swift code may hop
    /// threads between collectives, so `FUNNELED` would be too weak).
    static let requiredThreadLevel = Int32(MPI_THREAD_SERIALIZED)

    /// Held around every MPI call (`mpiCall`), so that calls from several threads never overlap.
    static let callLock = NSLock()

    /// Non-blocking sums whose progress threads must stop before `MPI_Finalize`.
    private var streams: [WeakStream] = []
    private struct WeakStream { weak var stream: MPINonBlockingAllreduce? }

    /// Remembers `stream`, so that `finalize()` stops its progress thread first.
    func register(_ stream: MPINonBlockingAllreduce) {
        lock.withLock {
            streams.removeAll { $0.stream == nil }
            streams.append(WeakStream(stream: stream))
        }
    }

    private let lock = NSLock()
    private var initializedHere = false
    private var finalizedHere = false

    /// Whether `finalize()` has run (collectives after it throw `CollectiveError.finalized`).
    var isFinalized: Bool { lock.withLock { finalizedHere } }

    /// Initializes MPI unless it already runs; throws if it was finalized.
    func initializeIfNeeded() throws {
        try lock.withLock {
            if finalizedHere { throw CollectiveError.finalized(operation: "MPICommunicator.init") }
            var initialized: Int32 = 0
            try mpiCall("MPI_Initialized") { MPI_Initialized(&initialized) }
            if initialized != 0 {
                var finalized: Int32 = 0
                try mpiCall("MPI_Finalized") { MPI_Finalized(&finalized) }
                if finalized != 0 { throw CollectiveError.finalized(operation: "MPICommunicator.init") }
                return
            }
            var provided: Int32 = 0
            try mpiCall("MPI_Init_thread") { MPI_Init_thread(nil, nil, MPIRuntime.requiredThreadLevel, &provided) }
            initializedHere = true
            if provided < MPIRuntime.requiredThreadLevel {
                throw CollectiveError.insufficientThreadSupport(required: MPIRuntime.requiredThreadLevel,
                                                                provided: provided)
            }
        }
    }

    /// Finalizes MPI if this process initialized it and has not finalized it yet.
    func finalize() throws {
        let running = lock.withLock { streams.compactMap(\.stream) }
        for stream in running { stream.close() }
        try lock.withLock {
            guard initializedHere, !finalizedHere else { return }
            finalizedHere = true
            try mpiCall("MPI_Finalize") { MPI_Finalize() }
        }
    }
}
