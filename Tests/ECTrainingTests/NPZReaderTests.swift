import ECTensor
import ECTestSupport
import ECTraining
import Foundation
import XCTest

/// `.npz` archives: `np.savez` (stored) and `np.savez_compressed` (deflate) read back equal,
/// ZIP64 as NumPy writes it and in its end records, and every broken archive a typed error.
final class NPZReaderTests: XCTestCase {
    private let x = ArrayFixtures.npy(uint8: (0..<12).map { UInt8($0 * 20) }, shape: [3, 2, 2])
    private let y = ArrayFixtures.npy(int64: [2, 0, 1])

    private func open(_ bytes: [UInt8], path: String = "d.npz") throws -> NPZArchive {
        try NPZArchive(bytes: bytes, path: path)
    }

    func testReadsWhatNumPyWrites() throws {
        let dir = try DataFixtures.temporaryDirectory(for: self)
        guard try ArrayFixtures.numpy("""
            x = (np.arange(5 * 4 * 4 * 3) % 251).astype(np.uint8).reshape(5, 4, 4, 3)
            y = np.array([4, 0, 3, 1, 2])
            np.savez('stored.npz', x=x, y=y)
            np.savez_compressed('deflated.npz', x=x, y=y)
            np.savez_compressed('floats.npz', x=np.linspace(-1, 1, 40, dtype=np.float32).reshape(10, 2, 2), y=np.arange(10.0))
            """, in: dir) else { return }
        for name in ["stored", "deflated"] {
            let archive = try NPZArchive.open(path: dir.appendingPathComponent("\(name).npz").path)
            XCTAssertEqual(archive.members.map(\.name), ["x.npy", "y.npy"], name)
            XCTAssertEqual(archive.members.map(\.method), name == "stored" ? [0, 0] : [8, 8], name)
            let x = try archive.array("x"), y = try archive.array("y.npy")
            XCTAssertEqual(x.shape, [5, 4, 4, 3], name)
            XCTAssertEqual(Array(x.bytes), (0..<240).map { UInt8($0 % 251) }, name)
            XCTAssertEqual(y.dtype, .int64, name)
            XCTAssertEqual(y.doubles(), [4, 0, 3, 1, 2], name)
        }
        let floats = try NPZArchive.open(path: dir.appendingPathComponent("floats.npz").path)
        XCTAssertEqual(try floats.array("x").floats().first, -1)
        XCTAssertEqual(try floats.array("y").dtype, .float64)

        // NumPy forces ZIP64 on every member: the local headers carry saturated sizes and a
        // ZIP64 extra field (id 1), which the reader skips for the central directory's sizes.
        let bytes = try [UInt8](Data(contentsOf: dir.appendingPathComponent("deflated.npz")))
        XCTAssertEqual(Array(bytes[18..<26]), [0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff], "saturated local sizes")
        let nameLength = Int(bytes[26]) | Int(bytes[27]) << 8
        XCTAssertEqual(Array(bytes[(30 + nameLength)..<(32 + nameLength)]), [1, 0], "a ZIP64 extra field")
    }

    func testStoredDeflatedAndZip64ArchivesRead() throws {
        for (deflate, zip64) in [(false, false), (true, false), (false, true), (true, true)] {
            let archive = try open(ArrayFixtures.zip([("x.npy", x), ("y.npy", y)], deflate: deflate, zip64: zip64))
            XCTAssertEqual(archive.members.map(\.uncompressedSize), [x.count, y.count], "deflate \(deflate) zip64 \(zip64)")
            XCTAssertEqual(Array(try archive.array("x").bytes), (0..<12).map { UInt8($0 * 20) })
            XCTAssertEqual(try archive.array("y").doubles(), [2, 0, 1])
        }
    }

    func testMissingMemberListsTheMembers() throws {
        let archive = try open(ArrayFixtures.zip([("images.npy", x), ("y.npy", y)]))
        assertDataError(try archive.array("x")) {
            $0 == .missingMember(path: "d.npz", member: "x.npy", found: ["images.npy", "y.npy"])
                && $0.description.contains("the archive has no member x.npy (it has: images.npy, y.npy)")
                && $0.description.contains("np.savez(FILE, x=images, y=labels)")
        }
    }

    func testCRCMismatchNamesTheMember() throws {
        for deflate in [false, true] {
            var bytes = ArrayFixtures.zip([("x.npy", x), ("y.npy", y)], deflate: deflate)
            bytes[30 + 5 + 20 + (deflate ? 5 : 0) + x.count - 1] ^= 0x01  // the last pixel of x
            let archive = try open(bytes)
            assertDataError(try archive.array("x")) {
                guard case .crcMismatch("d.npz", "x.npy", _, _) = $0 else { return false }
                return $0.description.contains("member x.npy is corrupt: CRC-32")
            }
            XCTAssertEqual(try archive.array("y").doubles(), [2, 0, 1], "the other member is fine")
        }
    }

    func testBrokenArchivesSayWhatIsWrong() throws {
        let good = ArrayFixtures.zip([("x.npy", x), ("y.npy", y)])
        let deflated = ArrayFixtures.zip([("x.npy", x), ("y.npy", y)], deflate: true)
        func member(_ bytes: [UInt8], _ name: String = "x") throws { _ = try open(bytes).array(name) }
        func patched(_ bytes: [UInt8], _ offset: Int, _ values: [UInt8]) -> [UInt8] {
            var b = bytes
            b.replaceSubrange(offset..<(offset + values.count), with: values)
            return b
        }
        let centralX = x.count + y.count + 2 * (30 + 5 + 20)  // the central directory starts after both members
        let centralD = centralX + 2 * 5  // … after both deflated members (a 5-byte stored-block header each)
        let cases: [(String, () throws -> Void, String)] = [
            ("empty", { _ = try self.open([]) }, "not a ZIP archive (no end-of-central-directory record)"),
            ("npy instead", { _ = try self.open(self.x) }, "not a ZIP archive"),
            ("cut end", { _ = try self.open(Array(good.dropLast(3))) }, "truncated: the file ends before the end-of-central-directory record"),
            ("cut middle", { _ = try self.open(Array(good.prefix(centralX + 10)) + Array(good.suffix(22))) },
             "truncated: the file ends before the central directory"),
            ("multi-disk", { _ = try self.open(patched(good, good.count - 18, [1, 0])) }, "multi-disk archives are not supported"),
            ("too many entries", { _ = try self.open(patched(good, good.count - 12, [200, 0])) },
             "200 entries cannot fit a central directory"),
            ("bad entry", { _ = try self.open(patched(good, centralX, [0, 0, 0, 0])) }, "central directory entry 0 is missing or cut short"),
            ("zip64 without locator", { _ = try self.open(patched(good, good.count - 12, [0xff, 0xff])) },
             "saturated end-of-central-directory fields without a ZIP64 locator"),
            ("method", { try member(patched(good, centralX + 10, [12, 0])) },
             "member x.npy: compression method 12 is not supported (np.savez stores, np.savez_compressed deflates)"),
            ("encrypted", { try member(patched(good, centralX + 8, [1, 0])) }, "member x.npy: it is encrypted"),
            ("local header", { try member(patched(good, 0, [0, 0])) }, "member x.npy: no local header at offset 0"),
            ("bad deflate", { try member(patched(deflated, 30 + 5 + 20, [0x07])) }, "member x.npy: invalid deflate data (Z_DATA_ERROR"),
            ("short inflate", { try member(patched(deflated, centralD + 24, [0xff, 0x00])) },
             "member x.npy: inflates to \(self.x.count) bytes, its header gives 255"),
            ("lying size", { try member(patched(deflated, centralD + 24, [0xff, 0xff, 0xff, 0x7f])) },
             "compressed bytes cannot inflate to 2147483647"),
            ("stored sizes", { try member(patched(good, centralX + 24, [1])) }, "stored with"),
            ("data past end", { try member(patched(good, centralX + 20, [0xff, 0xff, 0xff, 0x00])) },
             "truncated: the file ends before the data of member x.npy"),
        ]
        for (name, body, expected) in cases {
            assertDataError(try body(), name) { error in
                guard case .badNPZ("d.npz", _) = error else { return false }
                return error.description.hasPrefix("d.npz: not a valid .npz archive: ") && error.description.contains(expected)
            }
        }
        // A member that is no .npy names the archive and the member.
        assertDataError(try member(ArrayFixtures.zip([("x.npy", Array("hello".utf8))]))) {
            if case .badNPY("d.npz (member x.npy)", .badMagic) = $0 { return true }
            return false
        }
    }

    /// Every truncation and 2,000 seeded random byte flips of a valid archive (stored and
    /// deflated, ZIP64): each outcome is a `DataError` naming the archive, or arrays whose
    /// bytes passed the CRC check — equal to the originals when no flip hit their data.
    func testHostileBytesNeverTrap() throws {
        for (deflate, zip64) in [(false, false), (true, true)] {
            let good = ArrayFixtures.zip([("x.npy", x), ("y.npy", y)], deflate: deflate, zip64: zip64)
            for length in 0..<good.count {
                assertDataError(try self.open(Array(good.prefix(length)), path: "cut.npz").array("y"), "\(length) bytes") {
                    $0.description.contains("cut.npz")
                }
            }
            var rng = RNG(seed: deflate ? 5 : 6)
            var decoded = 0, refused = 0
            for trial in 0..<2000 {
                var bad = good
                for _ in 0...(trial % 3) { bad[Int(rng.next() % UInt64(good.count))] ^= UInt8(1 + rng.next() % 255) }
                do {
                    let archive = try open(bad, path: "flipped.npz")
                    let arrays = try (archive.array("x"), archive.array("y"))
                    decoded += 1
                    // Whatever header bytes changed, the data passed their CRC-32: they are the originals.
                    XCTAssertEqual(Array(arrays.0.bytes), (0..<12).map { UInt8($0 * 20) }, "trial \(trial)")
                    XCTAssertEqual(arrays.1.doubles(), [2, 0, 1], "trial \(trial)")
                } catch let error as DataError {
                    refused += 1
                    XCTAssertTrue(error.description.contains("flipped.npz"), "trial \(trial): \(error)")
                } catch {
                    XCTFail("trial \(trial): not a DataError: \(error)")
                }
            }
            XCTAssertGreaterThan(refused, 1000, "deflate \(deflate): most flips are refused")
            XCTAssertGreaterThan(decoded, 0, "deflate \(deflate): flips in unused fields (times, versions) decode")
        }
    }
}
