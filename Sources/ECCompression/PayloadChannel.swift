import ECCollective
import Foundation

/// The chief → all channel for compression decisions (docs/payload-format.md): the chief encodes masks or
/// scales with `PayloadCodec`, broadcasts the bytes, and every rank — the chief included —
/// decodes and verifies them against the kind and step it expects, so all ranks return
/// bit-identical entries or throw.
///
/// `broadcast` is collective: every rank calls it with the same kind and step, in the same
/// order. A throw on any rank must end the job (`failJob(_:comm:)`): a rank that cannot verify
/// the chief's decisions must never train on with different ones.
///
/// Fault injection for the distributed tests: when the environment variable
/// `EC_FAULT_CORRUPT_PAYLOAD` is this rank's number at `init`, every payload this rank receives
/// has one bit flipped (the first byte of the header's checksum field) before verification,
/// which then fails with `PayloadError.checksumMismatch`.
///
/// Failures are `PayloadChannelError`s naming the payload — kind, step, the compressor
/// (`sender`) and the rank — around the `PayloadError` that says what was wrong.
public final class PayloadChannel {
    /// The environment variable naming the rank that corrupts what it receives.
    public static let corruptPayloadVariable = "EC_FAULT_CORRUPT_PAYLOAD"
    /// The rank whose decisions are broadcast: the chief.
    public static let root = 0

    /// The communicator the payloads travel over.
    public let communicator: Communicator
    /// The zstd level the chief compresses with.
    public let level: Int
    /// The compressor whose decisions this channel carries (named in errors), if any.
    public let sender: String?
    /// The counters so far.
    public private(set) var metrics = PayloadChannelMetrics()

    /// Applied to the received bytes before verification (tests; see the type's documentation).
    var corruptOnReceipt: ((inout [UInt8]) -> Void)?
    private let clock = ContinuousClock()

    /// - Parameters:
    ///   - communicator: the world; rank 0 is the chief.
    ///   - level: the zstd level (1: on bit-packed masks level 9 is 5–10× slower for little gain, docs/payload-format.md).
    ///   - sender: the compressor whose decisions travel here (`pruner`…), named in errors.
    ///   - environment: where `EC_FAULT_CORRUPT_PAYLOAD` is read (the process's by default).
    public init(communicator: Communicator, level: Int = 1, sender: String? = nil,
                environment: [String: String] = ProcessInfo.processInfo.environment) {
        self.communicator = communicator
        self.level = level
        self.sender = sender
        if environment[Self.corruptPayloadVariable] == String(communicator.rank) {
            corruptOnReceipt = { bytes in
                if bytes.count > 32 { bytes[32] ^= 0x01 }
            }
        }
    }

    /// Broadcasts the chief's `entries` and returns the verified payload on every rank.
    ///
    /// - Parameters:
    ///   - kind: what the entries are; the same on every rank.
    ///   - step: the training step (≥ 0); the same on every rank.
    ///   - entries: on the chief, name → mask or Float32 tensor (required); ignored on workers
    ///     (pass `nil`).
    /// - Returns: the decoded payload, bit-identical on every rank; on the chief it equals
    ///   `entries` in canonical order.
    /// - Throws: on the chief, `PayloadChannelError` (stage `.encode`) from encoding (the
    ///   workers are then left waiting: end the job with `failJob`); on any rank,
    ///   `CollectiveError` from the broadcast and `PayloadChannelError` (stage `.verify`) from
    ///   verification.
    public func broadcast(kind: PayloadKind, step: Int, entries: [String: PayloadValue]?) throws -> Payload {
        let start = clock.now
        func named(_ stage: PayloadChannelError.Stage, _ body: () throws -> Void) throws {
            do { try body() } catch let error as PayloadError {
                throw PayloadChannelError(kind: kind, step: step, sender: sender, rank: communicator.rank, stage: stage, error: error)
            }
        }
        var bytes: [UInt8] = []
        if communicator.rank == Self.root {
            guard let entries else { preconditionFailure("the chief must pass the entries to broadcast") }
            try named(.encode) { bytes = try PayloadCodec.encode(kind: kind, step: step, entries: entries, level: level) }
        }
        try communicator.broadcast(&bytes, root: Self.root)
        corruptOnReceipt?(&bytes)
        var decoded: Payload?
        try named(.verify) { decoded = try PayloadCodec.decode(bytes, expectedKind: kind, expectedStep: step) }
        let payload = decoded!
        metrics.calls += 1
        metrics.bytesSent += bytes.count
        metrics.uncompressedBytes += Self.bodyLength(bytes)
        let elapsed = clock.now - start
        metrics.seconds += Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) * 1e-18
        return payload
    }

    /// Zeroes the metrics.
    public func resetMetrics() { metrics = PayloadChannelMetrics() }

    /// The header's uncompressed length field of verified payload bytes.
    private static func bodyLength(_ bytes: [UInt8]) -> Int {
        bytes.withUnsafeBytes { Int(UInt64(littleEndian: $0.loadUnaligned(fromByteOffset: 16, as: UInt64.self))) }
    }
}
