import ECCollective
import XCTest

/// `World.current()` picks MPI only when a launcher started the process.
final class WorldTests: XCTestCase {
    func testDetectsOpenMPIAndPMIxLaunchers() {
        XCTAssertTrue(World.isLaunchedByMPI(environment: ["OMPI_COMM_WORLD_SIZE": "2"]))
        XCTAssertTrue(World.isLaunchedByMPI(environment: ["PMIX_RANK": "0"]))
        XCTAssertTrue(World.isLaunchedByMPI(environment: ["PMI_RANK": "1", "PMI_SIZE": "4"]))
        XCTAssertFalse(World.isLaunchedByMPI(environment: [:]))
        XCTAssertFalse(World.isLaunchedByMPI(environment: ["SLURM_PROCID": "0", "HOME": "/root"]))
    }

    /// Single-node debug mode: the same binary without mpirun is a world of size 1.
    func testWithoutLauncherTheWorldIsASingleProcess() throws {
        try XCTSkipIf(World.isLaunchedByMPI(), "the test process itself runs under an MPI launcher")
        let world = try World.current()
        XCTAssertTrue(world is SingleProcessCommunicator)
        XCTAssertEqual(world.size, 1)
        XCTAssertTrue(try World.current(environment: ["PATH": "/usr/bin"]) is SingleProcessCommunicator)
    }
}
