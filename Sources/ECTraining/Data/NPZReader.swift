import Foundation

/// A NumPy `.npz` file: a ZIP archive whose members are `.npy` files (`np.savez` stores them,
/// `np.savez_compressed` deflates them).
///
/// Opening reads the end-of-central-directory record (and its ZIP64 form when the 32-bit fields
/// are saturated) and every central-directory entry (with its ZIP64 extra field, which NumPy
/// writes into every local header). `array(_:)` then reads one member: its local header must
/// agree with the directory, its data are inflated with raw deflate (`RawInflater`, the zlib
/// door) and their CRC-32 checked before the `.npy` bytes are parsed. Any other compression
/// method, encryption and multi-disk archives are errors.
public struct NPZArchive {
    /// One member as the central directory describes it.
    public struct Member: Equatable {
        public let name: String
        /// 0 (stored) or 8 (deflate).
        public let method: Int
        public let crc32: UInt32
        public let compressedSize: Int
        public let uncompressedSize: Int
        /// Where the member's local header starts.
        let localHeaderOffset: Int
        let flags: Int
    }

    /// The archive's path (in errors).
    public let path: String
    /// The members in directory order.
    public let members: [Member]
    private let bytes: [UInt8]

    /// Reads the archive at `path` and its central directory.
    ///
    /// - Throws: `DataError.missingFile`, `.unreadableFile` or `.badNPZ`.
    public static func open(path: String) throws -> NPZArchive {
        try NPZArchive(bytes: IDXReader.readBytes(path: path), path: path)
    }

    /// An archive over `bytes` (`path` names it in errors).
    ///
    /// - Throws: `DataError.badNPZ` when there is no end-of-central-directory record, when the
    ///   directory lies outside the file or an entry is cut short, for duplicate member names,
    ///   and for multi-disk archives.
    public init(bytes: [UInt8], path: String) throws {
        self.bytes = bytes
        self.path = path
        members = try Self.centralDirectory(bytes, fail: { DataError.badNPZ(path: path, problem: $0) })
    }

    /// The member `name` (`"x"` or `"x.npy"`) parsed as a `.npy` array.
    ///
    /// - Throws: `DataError.missingMember`, `.badNPZ` (local header, method, inflate),
    ///   `.crcMismatch`, or `.badNPY` naming the archive and the member.
    public func array(_ name: String) throws -> NPYArray {
        let file = name.hasSuffix(".npy") ? name : name + ".npy"
        guard let member = members.first(where: { $0.name == file }) else {
            throw DataError.missingMember(path: path, member: file, found: members.map(\.name))
        }
        return try NPYReader.parse(data(of: member)[...], path: "\(path) (member \(file))")
    }

    /// The uncompressed, CRC-checked bytes of `member`.
    public func data(of member: Member) throws -> [UInt8] {
        func fail(_ reason: String) -> DataError { .badNPZ(path: path, problem: .badMember(name: member.name, reason: reason)) }
        guard member.flags & 1 == 0 else { throw fail("it is encrypted") }
        guard member.method == 0 || member.method == 8 else {
            throw fail("compression method \(member.method) is not supported (np.savez stores, np.savez_compressed deflates)")
        }
        let offset = member.localHeaderOffset
        guard offset <= bytes.count - 30, Self.u32(bytes, offset) == 0x0403_4b50 else {
            throw fail("no local header at offset \(offset)")
        }
        let nameLength = Int(Self.u16(bytes, offset + 26)), extraLength = Int(Self.u16(bytes, offset + 28))
        let dataStart = offset + 30 + nameLength + extraLength
        guard dataStart <= bytes.count else { throw fail("the local header runs past the end of the file") }
        guard bytes[(offset + 30)..<(offset + 30 + nameLength)].elementsEqual(member.name.utf8) else {
            throw fail("the local header names another file")
        }
        guard member.compressedSize <= bytes.count - dataStart else {
            throw DataError.badNPZ(path: path, problem: .truncated(what: "the data of member \(member.name)"))
        }
        let compressed = bytes[dataStart..<(dataStart + member.compressedSize)]
        let data: [UInt8]
        if member.method == 0 {
            guard member.compressedSize == member.uncompressedSize else {
                throw fail("stored with \(member.compressedSize) bytes but \(member.uncompressedSize) uncompressed")
            }
            data = Array(compressed)
        } else {
            // Deflate expands no block by more than 1032:1: a larger claim is a lie.
            guard member.uncompressedSize / 1032 <= member.compressedSize + 1 else {
                throw fail("\(member.compressedSize) compressed bytes cannot inflate to \(member.uncompressedSize)")
            }
            do {
                data = try RawInflater.inflate(compressed, expectedSize: member.uncompressedSize)
            } catch let failure as RawInflater.Failure {
                throw fail(failure.reason)
            }
        }
        let crc = CRC32.checksum(data[...])
        guard crc == member.crc32 else {
            throw DataError.crcMismatch(path: path, member: member.name, expected: member.crc32, computed: crc)
        }
        return data
    }

    // MARK: the central directory

    static func u16(_ b: [UInt8], _ o: Int) -> UInt16 { UInt16(b[o]) | UInt16(b[o + 1]) << 8 }
    static func u32(_ b: [UInt8], _ o: Int) -> UInt32 { UInt32(u16(b, o)) | UInt32(u16(b, o + 2)) << 16 }
    static func u64(_ b: [UInt8], _ o: Int) -> UInt64 { UInt64(u32(b, o)) | UInt64(u32(b, o + 4)) << 32 }

    private static func centralDirectory(_ b: [UInt8], fail: (NPZProblem) -> DataError) throws -> [Member] {
        // The end-of-central-directory record: 22 bytes and a comment of up to 65535.
        guard b.count >= 22 else {
            throw fail(b.starts(with: [0x50, 0x4b]) ? .truncated(what: "the end-of-central-directory record") : .notZip)
        }
        var eocd = -1
        for o in stride(from: b.count - 22, through: max(0, b.count - 22 - 65_535), by: -1)
        where u32(b, o) == 0x0605_4b50 && o + 22 + Int(u16(b, o + 20)) == b.count {
            eocd = o
            break
        }
        guard eocd >= 0 else {
            throw fail(b.starts(with: [0x50, 0x4b, 0x03, 0x04]) ? .truncated(what: "the end-of-central-directory record") : .notZip)
        }
        guard u16(b, eocd + 4) == 0, u16(b, eocd + 6) == 0 else { throw fail(.corrupt(reason: "multi-disk archives are not supported")) }
        var count = Int(u16(b, eocd + 10))
        var size = Int(u32(b, eocd + 12)), offset = Int(u32(b, eocd + 16))
        if count == 0xffff || size == 0xffff_ffff || offset == 0xffff_ffff {
            // ZIP64: a locator just before the record points at the ZIP64 end record.
            let locator = eocd - 20
            guard locator >= 0, u32(b, locator) == 0x0706_4b50 else {
                throw fail(.corrupt(reason: "saturated end-of-central-directory fields without a ZIP64 locator"))
            }
            guard let record = Int(exactly: u64(b, locator + 8)), record >= 0, record <= b.count - 56,
                  u32(b, record) == 0x0606_4b50 else {
                throw fail(.corrupt(reason: "the ZIP64 locator points at no ZIP64 end record"))
            }
            guard u32(b, record + 16) == 0, u32(b, record + 20) == 0 else {
                throw fail(.corrupt(reason: "multi-disk archives are not supported"))
            }
            guard let c = Int(exactly: u64(b, record + 32)), let s = Int(exactly: u64(b, record + 40)),
                  let o = Int(exactly: u64(b, record + 48)) else {
                throw fail(.corrupt(reason: "ZIP64 end record sizes out of range"))
            }
            (count, size, offset) = (c, s, o)
        }
        guard offset <= b.count, size <= b.count - offset else {
            throw fail(.truncated(what: "the central directory (offset \(offset), \(size) bytes)"))
        }
        guard count <= size / 46 else {
            throw fail(.corrupt(reason: "\(count) entries cannot fit a central directory of \(size) bytes"))
        }
        var members: [Member] = []
        var o = offset
        let end = offset + size
        for index in 0..<count {
            guard o <= end - 46, u32(b, o) == 0x0201_4b50 else {
                throw fail(.corrupt(reason: "central directory entry \(index) is missing or cut short"))
            }
            let nameLength = Int(u16(b, o + 28)), extraLength = Int(u16(b, o + 30)), commentLength = Int(u16(b, o + 32))
            let next = o + 46 + nameLength + extraLength + commentLength
            guard next <= end else { throw fail(.corrupt(reason: "central directory entry \(index) runs past the directory")) }
            let name = String(decoding: b[(o + 46)..<(o + 46 + nameLength)], as: UTF8.self)
            var compressed = UInt64(u32(b, o + 20)), uncompressed = UInt64(u32(b, o + 24))
            var local = UInt64(u32(b, o + 42))
            // The ZIP64 extra field (id 1) holds, in order, the 64-bit values of the saturated fields.
            var e = o + 46 + nameLength
            let extraEnd = e + extraLength
            while e + 4 <= extraEnd {
                let id = u16(b, e), length = Int(u16(b, e + 2))
                guard e + 4 + length <= extraEnd else { throw fail(.corrupt(reason: "a bad extra field in entry \(name)")) }
                if id == 1 {
                    var f = e + 4
                    let fieldEnd = e + 4 + length
                    func wide(_ value: UInt64) throws -> UInt64 {
                        guard value == 0xffff_ffff else { return value }
                        guard f + 8 <= fieldEnd else { throw fail(.corrupt(reason: "a short ZIP64 extra field in entry \(name)")) }
                        defer { f += 8 }
                        return u64(b, f)
                    }
                    uncompressed = try wide(uncompressed)
                    compressed = try wide(compressed)
                    local = try wide(local)
                }
                e += 4 + length
            }
            guard let c = Int(exactly: compressed), let u = Int(exactly: uncompressed), let l = Int(exactly: local) else {
                throw fail(.corrupt(reason: "sizes of entry \(name) out of range"))
            }
            guard !members.contains(where: { $0.name == name }) else { throw fail(.corrupt(reason: "member \(name) appears twice")) }
            members.append(Member(name: name, method: Int(u16(b, o + 10)), crc32: u32(b, o + 16), compressedSize: c,
                                  uncompressedSize: u, localHeaderOffset: l, flags: Int(u16(b, o + 8))))
            o = next
        }
        return members
    }
}

/// What is wrong with an `.npz` archive (see `DataError.badNPZ`).
public enum NPZProblem: Equatable, Sendable {
    /// No ZIP signature at all.
    case notZip
    /// The file ends before `what`.
    case truncated(what: String)
    /// The archive's structure is inconsistent.
    case corrupt(reason: String)
    /// One member cannot be read.
    case badMember(name: String, reason: String)

    var text: String {
        switch self {
        case .notZip: return "not a ZIP archive (no end-of-central-directory record)"
        case let .truncated(what): return "truncated: the file ends before \(what)"
        case let .corrupt(reason): return reason
        case let .badMember(name, reason): return "member \(name): \(reason)"
        }
    }
}
