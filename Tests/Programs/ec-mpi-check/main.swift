// ec-mpi-check: distributed checks of ECCollective and of ECCompression's payload channel, run on
// every rank by the XCTest wrappers (Tests/ECCollectiveTests/MPIProgramTests.swift,
// Tests/ECCompressionTests/PayloadMPITests.swift) under `mpirun -np 2` and `-np 3`.
//
//   ec-mpi-check <scenario>...     scenarios: see `Scenarios.all`; `all` runs the standard set
//
// Each scenario computes its expected values locally on every rank, prints
// `OK <scenario> rank r/N` when it passes, and otherwise aborts the job through `failJob`
// (`[rank r/N] error: ...` on stderr, non-zero exit).
import ECCollective
import Foundation

let requested = Array(CommandLine.arguments.dropFirst())
if requested.isEmpty || requested.contains("-h") || requested.contains("--help") {
    let names = Scenarios.all.map(\.name).joined(separator: " ")
    fputs("usage: ec-mpi-check <scenario>...\nscenarios: all \(names)\n", stderr)
    exit(2)
}

let comm: any Communicator
do {
    comm = try World.current()
} catch {
    fputs("error: cannot start the world: \(error)\n", stderr)
    exit(1)
}

let names = requested.flatMap { $0 == "all" ? Scenarios.standard : [$0] }
for name in names {
    guard let scenario = Scenarios.all.first(where: { $0.name == name }) else {
        failJob(CheckFailure("unknown scenario '\(name)'; known: \(Scenarios.all.map(\.name))"), comm: comm)
    }
    do {
        try scenario.run(comm)
    } catch {
        failJob(CheckFailure("\(name): \(error)"), comm: comm)
    }
    print("OK \(name) rank \(comm.rank)/\(comm.size)")
    fflush(stdout)
}

do {
    try (comm as? MPICommunicator)?.finalize()
} catch {
    failJob(error, comm: comm)
}
