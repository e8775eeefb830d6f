/// Counters of a `PayloadChannel`, accumulated over its broadcasts until `resetMetrics()`.
/// Every rank counts the same bytes (the chief's sent bytes are the workers' received ones).
public struct PayloadChannelMetrics: Equatable, Sendable {
    /// Broadcasts that returned a verified payload (a rejected one is not counted).
    public var calls = 0
    /// Bytes on the wire: header plus zstd frame, summed over counted calls.
    public var bytesSent = 0
    /// Uncompressed body bytes, summed over calls.
    public var uncompressedBytes = 0
    /// Wall-clock seconds in `broadcast`: encoding, the collective and decoding.
    public var seconds = 0.0

    public init() {}

    /// `uncompressedBytes / bytesSent` (header included), or 0 before the first call.
    public var compressionRatio: Double {
        bytesSent == 0 ? 0 : Double(uncompressedBytes) / Double(bytesSent)
    }
}
