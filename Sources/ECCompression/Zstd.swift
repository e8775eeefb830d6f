import CZstd

// The only Swift file that imports CZstd (STYLE: one importer per C library). Every zstd return
// code goes through `zstdCall`, which turns `ZSTD_isError` codes into `PayloadError.zstd`.

/// One-shot zstd compression and bounded decompression of byte arrays.
enum Zstd {
    /// The compression levels this libzstd accepts (`ZSTD_minCLevel()...ZSTD_maxCLevel()`).
    static var levels: ClosedRange<Int> { Int(ZSTD_minCLevel())...Int(ZSTD_maxCLevel()) }

    /// `source` as one zstd frame (content size recorded in the frame header) at `level`.
    static func compress(_ source: [UInt8], level: Int) throws -> [UInt8] {
        guard levels.contains(level) else { throw PayloadError.invalidLevel(found: level, supported: levels) }
        var frame = [UInt8](repeating: 0, count: ZSTD_compressBound(source.count))
        let written = try source.withUnsafeBytes { src in
            try frame.withUnsafeMutableBytes { dst in
                try zstdCall("ZSTD_compress") {
                    ZSTD_compress(dst.baseAddress, dst.count, src.baseAddress, src.count, Int32(level))
                }
            }
        }
        frame.removeSubrange(written...)
        return frame
    }

    /// The content size a frame's header declares: `.some(n)`, or `nil` when the header omits
    /// it. Throws `PayloadError.zstd` when `frame` does not start with a valid frame header.
    static func declaredContentSize(_ frame: ArraySlice<UInt8>) throws -> UInt64? {
        let size = frame.withUnsafeBytes { ZSTD_getFrameContentSize($0.baseAddress, $0.count) }
        switch size {
        case contentSizeUnknown: return nil
        case contentSizeError:
            throw PayloadError.zstd(operation: "ZSTD_getFrameContentSize",
                                    message: "not a zstd frame, or its header is truncated or invalid")
        default: return size
        }
    }

    /// Decompresses the single frame `frame` into at most `capacity` bytes and returns them
    /// (possibly fewer; the caller compares the count with what it expects). The caller has
    /// already bounded `capacity`, so a hostile frame cannot make this allocate more.
    static func decompress(_ frame: ArraySlice<UInt8>, capacity: Int) throws -> [UInt8] {
        var output = [UInt8](repeating: 0, count: capacity)
        let written = try frame.withUnsafeBytes { src in
            try output.withUnsafeMutableBytes { dst in
                try zstdCall("ZSTD_decompress") {
                    ZSTD_decompress(dst.baseAddress, dst.count, src.baseAddress, src.count)
                }
            }
        }
        output.removeSubrange(written...)
        return output
    }

    // ZSTD_CONTENTSIZE_UNKNOWN and ZSTD_CONTENTSIZE_ERROR are `(0ULL - 1)` / `(0ULL - 2)` macros,
    // which Swift does not import.
    private static let contentSizeUnknown = UInt64.max
    private static let contentSizeError = UInt64.max - 1
}

/// The zstd funnel: runs `body` (a libzstd call returning `size_t`) and returns its result, or
/// throws `PayloadError.zstd(operation:message:)` with `ZSTD_getErrorName`'s text when
/// `ZSTD_isError` says the result is an error code.
func zstdCall(_ operation: String, _ body: () -> Int) throws -> Int {
    let code = body()
    if ZSTD_isError(code) != 0 {
        throw PayloadError.zstd(operation: operation, message: String(cString: ZSTD_getErrorName(code)))
    }
    return code
}
