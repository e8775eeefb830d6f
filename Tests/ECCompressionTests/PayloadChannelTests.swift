import ECCollective
@testable import ECCompression
import ECTensor
import ECTestSupport
import XCTest

/// The channel in a world of size 1 (the chief alone); the multi-rank behaviour is in
/// PayloadMPITests.
final class PayloadChannelTests: XCTestCase {
    func testBroadcastReturnsTheVerifiedEntriesAndCounts() throws {
        let channel = PayloadChannel(communicator: SingleProcessCommunicator(), environment: [:])
        let entries = sampleEntries()
        let payload = try channel.broadcast(kind: .masks, step: 10, entries: entries)
        XCTAssertEqual(payload.entries, Payload.canonical(entries))
        XCTAssertEqual(bitPatterns(payload["scale/awkward"]), awkwardFloats.map(\.bitPattern))
        let bytes = try PayloadCodec.encode(kind: .masks, step: 10, entries: entries)
        let body = try PayloadBody.encode(Payload.canonical(entries))
        _ = try channel.broadcast(kind: .scales, step: 11, entries: [:])

        let metrics = channel.metrics
        XCTAssertEqual(metrics.calls, 2)
        XCTAssertEqual(metrics.bytesSent, bytes.count + 40 + 13)  // an empty body: 4 bytes, 13 in a frame
        XCTAssertEqual(metrics.uncompressedBytes, body.count + 4)
        XCTAssertEqual(metrics.compressionRatio, Double(body.count + 4) / Double(bytes.count + 53), accuracy: 1e-12)
        XCTAssertGreaterThan(metrics.seconds, 0)
        channel.resetMetrics()
        XCTAssertEqual(channel.metrics, PayloadChannelMetrics())
        XCTAssertEqual(channel.metrics.compressionRatio, 0)
    }

    /// `EC_FAULT_CORRUPT_PAYLOAD=<this rank>` flips a bit of every received payload, which
    /// verification catches; another rank's number changes nothing.
    func testFaultInjectionCorruptsOnlyTheNamedRank() throws {
        let entries: [String: PayloadValue] = ["conv1/weight": .mask(Mask([true, false, true]))]
        let other = PayloadChannel(communicator: SingleProcessCommunicator(),
                                   environment: [PayloadChannel.corruptPayloadVariable: "1"])
        XCTAssertEqual(try other.broadcast(kind: .masks, step: 3, entries: entries).entries, Payload.canonical(entries))

        let corrupting = PayloadChannel(communicator: SingleProcessCommunicator(),
                                        environment: [PayloadChannel.corruptPayloadVariable: "0"])
        let error = payloadError { try corrupting.broadcast(kind: .masks, step: 3, entries: entries) }
        guard case .checksumMismatch(let found, let declared)? = error else {
            return XCTFail("expected a checksum mismatch, got \(String(describing: error))")
        }
        XCTAssertEqual(found ^ declared, 1)
        XCTAssertEqual(corrupting.metrics.calls, 0, "a rejected payload is not counted")
    }

    /// A rejected payload is named: its kind, step, the compressor it serves and the rank.
    func testErrorsNameThePayload() throws {
        let channel = PayloadChannel(communicator: SingleProcessCommunicator(), sender: "sparsifier",
                                     environment: [PayloadChannel.corruptPayloadVariable: "0"])
        let error = thrownError(PayloadChannelError.self) {
            try channel.broadcast(kind: .masks, step: 42, entries: ["fc1/weight": .mask(Mask([true, false]))])
        }
        XCTAssertEqual(error?.kind, .masks)
        XCTAssertEqual(error?.step, 42)
        XCTAssertEqual(error?.sender, "sparsifier")
        XCTAssertEqual(error?.stage, .verify)
        XCTAssertTrue(String(describing: error!).hasPrefix("the sparsifier's masks payload of step 42 was rejected on rank 0: "
                                                          + "payload checksum mismatch: header says 0x"), "\(error!)")
        let encoding = thrownError(PayloadChannelError.self) {
            try PayloadChannel(communicator: SingleProcessCommunicator(), sender: "quantizer", environment: [:])
                .broadcast(kind: .scales, step: 3, entries: ["": .floats(Tensor(scalar: 1))])
        }
        XCTAssertEqual(encoding?.stage, .encode)
        XCTAssertTrue(String(describing: encoding!).hasPrefix("the quantizer's scales payload of step 3 could not be encoded on rank 0: "),
                      "\(encoding!)")
    }

    /// Whatever happens to the bytes in transit, the receiver's verification names it.
    func testReceivedBytesAreVerifiedAgainstTheExpectedKindAndStep() throws {
        let channel = PayloadChannel(communicator: SingleProcessCommunicator(), environment: [:])
        channel.corruptOnReceipt = { bytes in bytes[8] = 121 }  // the step field
        XCTAssertEqual(payloadError { try channel.broadcast(kind: .scales, step: 120, entries: [:]) },
                       .stepMismatch(found: 121, expected: 120))
        channel.corruptOnReceipt = { bytes in bytes.removeLast() }
        XCTAssertEqual(payloadError { try channel.broadcast(kind: .scales, step: 120, entries: [:]) },
                       .truncatedBody(found: 12, declared: 13))
    }
}
