// The only file of ECTraining that imports CZlib (the single zlib door): gzip for IDX files, raw
// deflate and CRC-32 for the members of `.npz` archives. No zlib type leaves it.
import CZlib

/// Inflates gzip data in memory with zlib (RFC 1952).
///
/// `inflateInit2` with windowBits 15 + 32 (auto-detect gzip/zlib header) streams the output into
/// a buffer that doubles when full. zlib verifies each member's CRC-32 and length trailer.
/// Several concatenated members (what `cat a.gz b.gz` produces, valid per RFC 1952 §2.2) decode
/// to the concatenation of their contents, as `gunzip` does; bytes after a member that do not
/// start another member are an error, and so is a stream that ends before its trailer.
enum GzipInflater {
    /// Whether `bytes` start with the gzip magic `1f 8b`.
    static func isGzip(_ bytes: [UInt8]) -> Bool {
        bytes.count >= 2 && bytes[0] == 0x1f && bytes[1] == 0x8b
    }

    /// The inflated contents of the gzip data `bytes` read from `path` (named in errors).
    ///
    /// - Throws: `DataError.truncatedGzip` if the input ends inside a member,
    ///   `DataError.corruptGzip` for anything zlib rejects or for trailing garbage.
    static func inflate(_ bytes: [UInt8], path: String) throws -> [UInt8] {
        guard !bytes.isEmpty else { throw DataError.truncatedGzip(path: path) }
        var stream = z_stream()
        try zlibCall(inflateInit2_(&stream, 15 + 32, zlibVersion(), Int32(MemoryLayout<z_stream>.size)),
                     stream: &stream, path: path, operation: "inflateInit2")
        defer { inflateEnd(&stream) }

        var output = [UInt8](repeating: 0, count: max(bytes.count * 4, 1 << 16))
        var produced = 0
        var consumed = 0
        try bytes.withUnsafeBufferPointer { input in
            let inputBase = UnsafeMutablePointer(mutating: input.baseAddress!)
            while true {
                if stream.avail_in == 0 && consumed < input.count {
                    let chunk = min(input.count - consumed, Int(UInt32.max))
                    stream.next_in = inputBase + consumed
                    stream.avail_in = UInt32(chunk)
                    consumed += chunk
                }
                if produced == output.count {
                    output.append(contentsOf: repeatElement(0, count: output.count))
                }
                let status = output.withUnsafeMutableBufferPointer { out -> Int32 in
                    let room = min(out.count - produced, Int(UInt32.max))
                    stream.next_out = out.baseAddress! + produced
                    stream.avail_out = UInt32(room)
                    let status = CZlib.inflate(&stream, Z_NO_FLUSH)
                    produced += room - Int(stream.avail_out)
                    return status
                }
                let remaining = Int(stream.avail_in) + (input.count - consumed)
                if status == Z_STREAM_END {
                    guard remaining > 0 else { return }
                    let next = input.count - remaining
                    guard remaining >= 2, input[next] == 0x1f, input[next + 1] == 0x8b else {
                        throw DataError.corruptGzip(path: path,
                                                    reason: "\(remaining) trailing bytes after the gzip stream")
                    }
                    try zlibCall(inflateReset(&stream), stream: &stream, path: path, operation: "inflateReset")
                } else if status == Z_BUF_ERROR && remaining == 0 {
                    throw DataError.truncatedGzip(path: path)
                } else if status != Z_BUF_ERROR {
                    // Z_BUF_ERROR with input left means "no room": the loop grows the buffer.
                    try zlibCall(status, stream: &stream, path: path, operation: "inflate")
                }
            }
        }
        output.removeSubrange(produced...)
        return output
    }

    /// The funnel from zlib return codes to `DataError`: `Z_OK` passes, anything else throws
    /// `corruptGzip` with zlib's message when it gave one.
    private static func zlibCall(_ status: Int32, stream: inout z_stream, path: String,
                                 operation: String) throws {
        guard status != Z_OK else { return }
        let name: String
        switch status {
        case Z_DATA_ERROR: name = "Z_DATA_ERROR"
        case Z_MEM_ERROR: name = "Z_MEM_ERROR"
        case Z_NEED_DICT: name = "Z_NEED_DICT (a preset dictionary is not supported)"
        case Z_STREAM_ERROR: name = "Z_STREAM_ERROR"
        case Z_VERSION_ERROR: name = "Z_VERSION_ERROR"
        default: name = "code \(status)"
        }
        let message = stream.msg.map { ": " + String(cString: $0) } ?? ""
        throw DataError.corruptGzip(path: path, reason: "\(operation) failed with \(name)\(message)")
    }
}

/// Inflates one raw deflate stream (RFC 1951, no header or trailer): the data of a ZIP member
/// with compression method 8, as `np.savez_compressed` writes them.
///
/// `inflateInit2` with windowBits −15 (raw). The output may not exceed `expectedSize` (the size
/// the archive's directory gives) and must reach it exactly: the buffer starts small and doubles
/// up to that size, so a lying header costs at most the memory the data really inflate to.
enum RawInflater {
    /// Why zlib rejected a stream; the caller names the file and member.
    struct Failure: Error, Equatable {
        let reason: String
    }

    /// The `expectedSize` bytes that `input` inflates to.
    ///
    /// - Throws: `Failure` when zlib rejects the data, when the stream ends early (truncated) or
    ///   inflates to another size than `expectedSize`, or when bytes follow the end of the stream.
    static func inflate(_ input: ArraySlice<UInt8>, expectedSize: Int) throws -> [UInt8] {
        precondition(expectedSize >= 0, "expected size must be >= 0")
        var stream = z_stream()
        let initStatus = inflateInit2_(&stream, -15, zlibVersion(), Int32(MemoryLayout<z_stream>.size))
        guard initStatus == Z_OK else { throw Failure(reason: "inflateInit2 failed with code \(initStatus)") }
        defer { inflateEnd(&stream) }

        // One byte of room beyond the expected size detects a stream that inflates to more.
        let limit = expectedSize + 1
        var output = [UInt8](repeating: 0, count: min(limit, max(input.count * 4, 1 << 16)))
        var produced = 0
        var consumed = 0
        return try input.withUnsafeBufferPointer { inputBuffer -> [UInt8] in
            let inputBase = inputBuffer.baseAddress.map { UnsafeMutablePointer(mutating: $0) }
            while true {
                if stream.avail_in == 0 && consumed < inputBuffer.count, let inputBase {
                    let chunk = min(inputBuffer.count - consumed, Int(UInt32.max))
                    stream.next_in = inputBase + consumed
                    stream.avail_in = UInt32(chunk)
                    consumed += chunk
                }
                if produced == output.count {
                    guard output.count < limit else {
                        throw Failure(reason: "inflates to more than the \(expectedSize) bytes its header gives")
                    }
                    output.append(contentsOf: repeatElement(0, count: min(output.count, limit - output.count)))
                }
                let status = output.withUnsafeMutableBufferPointer { out -> Int32 in
                    let room = min(out.count - produced, Int(UInt32.max))
                    stream.next_out = out.baseAddress! + produced
                    stream.avail_out = UInt32(room)
                    let status = CZlib.inflate(&stream, Z_NO_FLUSH)
                    produced += room - Int(stream.avail_out)
                    return status
                }
                let remaining = Int(stream.avail_in) + (inputBuffer.count - consumed)
                switch status {
                case Z_STREAM_END:
                    guard remaining == 0 else {
                        throw Failure(reason: "\(remaining) bytes follow the end of the deflate stream")
                    }
                    guard produced == expectedSize else {
                        throw Failure(reason: "inflates to \(produced) bytes, its header gives \(expectedSize)")
                    }
                    output.removeSubrange(produced...)
                    return output
                case Z_OK:
                    continue
                case Z_BUF_ERROR where remaining == 0 && produced < output.count:
                    throw Failure(reason: "the deflate stream is truncated (ends before its last block)")
                case Z_BUF_ERROR:
                    continue  // no room left: the loop grows the buffer
                default:
                    let name = status == Z_DATA_ERROR ? "Z_DATA_ERROR" : status == Z_MEM_ERROR ? "Z_MEM_ERROR" : "code \(status)"
                    let message = stream.msg.map { ": " + String(cString: $0) } ?? ""
                    throw Failure(reason: "invalid deflate data (\(name)\(message))")
                }
            }
        }
    }
}

/// The CRC-32 of ZIP and gzip (zlib's `crc32`).
enum CRC32 {
    static func checksum(_ bytes: ArraySlice<UInt8>) -> UInt32 {
        bytes.withUnsafeBufferPointer { buffer in
            var crc = crc32(0, nil, 0)
            var offset = 0
            while offset < buffer.count {
                let chunk = min(buffer.count - offset, Int(UInt32.max))
                crc = crc32(crc, buffer.baseAddress! + offset, UInt32(chunk))
                offset += chunk
            }
            return UInt32(truncatingIfNeeded: crc)
        }
    }
}
