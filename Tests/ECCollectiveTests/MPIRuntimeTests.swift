@testable import ECCollective
import XCTest

/// The C boundary funnel: MPI return codes become `CollectiveError.mpi` with MPI's own text.
final class MPIRuntimeTests: XCTestCase {
    func testSuccessDoesNotThrow() throws {
        var called = false
        try mpiCall("MPI_Test") { called = true; return 0 }
        XCTAssertTrue(called)
    }

    /// The test process never starts MPI, so the text is the generic one (with MPI running it is
    /// `MPI_Error_string`'s; Open MPI aborts the process if that is called before `MPI_Init`).
    func testErrorCodeBecomesATypedError() {
        XCTAssertThrowsError(try mpiCall("MPI_Allreduce") { 2 }) { error in
            XCTAssertEqual(error as? CollectiveError,
                           .mpi(call: "MPI_Allreduce", code: 2,
                                message: "MPI error 2 (MPI is not running, so no error text is available)"))
            XCTAssertTrue("\(error)".hasPrefix("MPI_Allreduce failed with MPI error 2: "), "\(error)")
        }
    }

    func testErrorDescriptionsNameValueAndHint() {
        XCTAssertEqual("\(CollectiveError.finalized(operation: "barrier"))",
                       "barrier called after MPI was finalized; hint: call finalize() once, after the last collective")
        XCTAssertEqual("\(CollectiveError.invalidLength(what: "gather", length: 5))",
                       "gather: received length 5, which does not fit in memory on this rank")
    }
}
