import ECTensor
import ECTestSupport
import ECTraining
import Foundation
import XCTest

/// `.npy` files: written by real NumPy (every dtype, both byte orders, Fortran order, format
/// versions 1–3) and read back equal; each malformed case a `DataError.badNPY` saying what is
/// wrong; hostile bytes never trap.
final class NPYReaderTests: XCTestCase {
    private func parse(_ bytes: [UInt8], path: String = "a.npy") throws -> NPYArray {
        try NPYReader.parse(bytes[...], path: path)
    }

    func testReadsEveryDTypeNumPyWrites() throws {
        let dir = try DataFixtures.temporaryDirectory(for: self)
        // Each file holds [[0, 1, 2], [3, 4, 5]] (or its bool/negative variant) in another
        // dtype, byte order or memory order.
        guard try ArrayFixtures.numpy("""
            base = np.arange(6).reshape(2, 3)
            for t in ['u1', 'i1', 'u2', 'i2', 'u4', 'i4', 'u8', 'i8', 'f4', 'f8']:
                np.save(f'{t}.npy', base.astype('<' + t))
                np.save(f'{t}-big.npy', base.astype('>' + t))
                np.save(f'{t}-fortran.npy', np.asfortranarray(base.astype('<' + t)))
            np.save('neg.npy', (-base).astype(np.int16))
            np.save('bool.npy', base % 2 == 1)
            np.save('scalar.npy', np.float64(2.5))
            np.save('empty.npy', np.zeros((0, 4), dtype=np.float32))
            for v in [(1, 0), (2, 0), (3, 0)]:
                with open(f'v{v[0]}.npy', 'wb') as f:
                    np.lib.format.write_array(f, np.float32(base) / 4, version=v)
            """, in: dir) else { return }
        func read(_ name: String) throws -> NPYArray { try NPYReader.read(path: dir.appendingPathComponent(name).path) }
        for (code, dtype) in [("u1", NPYArray.DType.uint8), ("i1", .int8), ("u2", .uint16), ("i2", .int16), ("u4", .uint32),
                              ("i4", .int32), ("u8", .uint64), ("i8", .int64), ("f4", .float32), ("f8", .float64)] {
            for variant in ["", "-big", "-fortran"] {
                let array = try read("\(code)\(variant).npy")
                XCTAssertEqual(array.dtype, dtype, code + variant)
                XCTAssertEqual(array.shape, [2, 3], code + variant)
                XCTAssertEqual(array.fortranOrder, variant == "-fortran", code + variant)
                // Element [i, j] lies at i·strides[0] + j·strides[1] in storage order.
                let values = array.doubles()
                let logical = (0..<2).flatMap { i in (0..<3).map { j in values[i * array.strides[0] + j * array.strides[1]] } }
                XCTAssertEqual(logical, [0, 1, 2, 3, 4, 5], code + variant)
                XCTAssertEqual((0..<6).map { array.integer(at: $0) }, values.map { Int($0) }, code + variant)
            }
        }
        XCTAssertEqual(try read("f4-big.npy").floats(), [0, 1, 2, 3, 4, 5])
        XCTAssertEqual(try read("neg.npy").doubles(), [0, -1, -2, -3, -4, -5])
        XCTAssertEqual(try read("bool.npy").dtype, .bool)
        XCTAssertEqual((0..<6).map { try? read("bool.npy").integer(at: $0) }, [0, 1, 0, 1, 0, 1])
        XCTAssertEqual(try read("scalar.npy").shape, [])
        XCTAssertEqual(try read("scalar.npy").doubles(), [2.5])
        XCTAssertEqual(try read("empty.npy").shape, [0, 4])
        for version in 1...3 {
            XCTAssertEqual(try read("v\(version).npy").floats(), [0, 0.25, 0.5, 0.75, 1, 1.25], "version \(version)")
        }
        XCTAssertNil(try parse(ArrayFixtures.npy(float32: [1.5], shape: [1])).integer(at: 0), "1.5 is no integer")
    }

    func testSwiftBuiltFilesReadBack() throws {
        let array = try parse(ArrayFixtures.npy(uint8: [1, 2, 3, 4, 5, 6], shape: [1, 2, 3]))
        XCTAssertEqual(array.dtype, .uint8)
        XCTAssertEqual(array.shape, [1, 2, 3])
        XCTAssertEqual(Array(array.bytes), [1, 2, 3, 4, 5, 6])
        XCTAssertEqual(array.strides, [6, 3, 1])
        let v2 = try parse(ArrayFixtures.npy(descr: "<i8", shape: [2], data: ArrayFixtures.littleEndian(7, 8) + ArrayFixtures.littleEndian(9, 8), major: 2))
        XCTAssertEqual(v2.doubles(), [7, 9])
        // Python 2 wrote shapes with the long suffix; double quotes are Python too.
        let old = try parse(ArrayFixtures.npy(descr: "", shape: [], data: [5, 6],
                                              header: "{\"descr\": \"|u1\", \"fortran_order\": False, \"shape\": (2L,)}"))
        XCTAssertEqual(old.shape, [2])
    }

    /// Every malformed case names the file and says what is wrong.
    func testMalformedFilesSayWhatIsWrong() {
        let good = ArrayFixtures.npy(uint8: [1, 2, 3, 4], shape: [2, 2])
        func header(_ dict: String, data: [UInt8] = [1, 2, 3, 4]) -> [UInt8] {
            ArrayFixtures.npy(descr: "", shape: [], data: data, header: dict)
        }
        var badVersion = good
        badVersion[6] = 4
        var badMinor = good
        badMinor[7] = 1
        let cases: [(String, [UInt8], String)] = [
            ("empty", [], "truncated: the preamble needs 10 bytes, the file has 0"),
            ("short and wrong", [1, 2, 3], "bad magic: expected 93 4e 55 4d 50 59 (\\x93NUMPY), found 01 02 03"),
            ("bad magic", Array("PK\u{3}\u{4}hello".utf8), "bad magic: expected 93 4e 55 4d 50 59 (\\x93NUMPY), found 50 4b 03 04 68 65 6c 6c"),
            ("cut preamble", Array(good.prefix(9)), "truncated: the preamble needs 10 bytes, the file has 9"),
            ("cut header", Array(good.prefix(40)), "truncated: the header needs 128 bytes, the file has 40"),
            ("version", badVersion, "format version 4.0 is not supported (1.0, 2.0 and 3.0 are)"),
            ("minor version", badMinor, "format version 1.1 is not supported"),
            ("not a dict", header("['descr', 'shape']"), "bad header: the header is a list, not a dict"),
            ("garbage", header("descr: u1"), "bad header: unexpected character 'd' at header byte 0"),
            ("unterminated", header("{'descr': '|u1', 'shape': (2,"), "bad header: unterminated sequence"),
            ("no shape", header("{'descr': '|u1', 'fortran_order': False}"), "bad header: the header dict has no 'shape'"),
            ("extra key", header("{'descr': '|u1', 'fortran_order': False, 'shape': (4,), 'x': 1}"),
             "bad header: unexpected key 'x' in the header dict"),
            ("duplicate key", header("{'descr': '|u1', 'descr': '|u1', 'fortran_order': False, 'shape': (4,)}"),
             "bad header: the key 'descr' appears twice"),
            ("fortran not bool", header("{'descr': '|u1', 'fortran_order': 0, 'shape': (4,)}"),
             "bad header: 'fortran_order' is an integer, not True or False"),
            ("shape not tuple", header("{'descr': '|u1', 'fortran_order': False, 'shape': 4}"),
             "bad header: 'shape' is an integer, not a tuple"),
            ("text after", header("{'descr': '|u1', 'fortran_order': False, 'shape': (4,)} x"),
             "bad header: unexpected text after the dict"),
            ("deep", header(String(repeating: "(", count: 40)), "bad header: values nested more than 16 deep"),
            ("huge int", header("{'descr': '|u1', 'fortran_order': False, 'shape': (99999999999999999999,)}"),
             "bad header: the integer 99999999999999999999 is too large"),
            ("negative", header("{'descr': '|u1', 'fortran_order': False, 'shape': (2, -2)}"),
             "bad shape (2, -2): a dimension is negative"),
            ("overflow", header("{'descr': '<f8', 'fortran_order': False, 'shape': (4611686018427387904, 4)}"),
             "bad shape (4611686018427387904, 4): its size overflows"),
            ("overflow beside 0", header("{'descr': '|u1', 'fortran_order': False, 'shape': (0, 4294967296, 4294967296)}", data: []),
             "bad shape (0, 4294967296, 4294967296): its size overflows"),
            ("half floats", header("{'descr': '<f2', 'fortran_order': False, 'shape': (2,)}"),
             "unsupported dtype '<f2': only float32 (f4) and float64 (f8) floats are supported"),
            ("objects", header("{'descr': '|O', 'fortran_order': False, 'shape': (2,)}"),
             "unsupported dtype '|O': object arrays hold pickled Python objects"),
            ("strings", header("{'descr': '<U3', 'fortran_order': False, 'shape': (2,)}"), "unsupported dtype '<U3': string arrays"),
            ("structured", header("{'descr': [('a', '<f4')], 'fortran_order': False, 'shape': (2,)}"),
             "unsupported dtype a list: structured dtypes are not supported"),
            ("truncated data", Array(good.dropLast()), "shape (2, 2) of uint8 needs 4 data bytes, the file has 3 (truncated)"),
            ("trailing data", good + [9], "shape (2, 2) of uint8 needs 4 data bytes, the file has 5 (trailing bytes)"),
            ("float data size", header("{'descr': '<f4', 'fortran_order': False, 'shape': (2,)}"),
             "shape (2,) of float32 needs 8 data bytes, the file has 4 (truncated)"),
        ]
        for (name, bytes, expected) in cases {
            assertDataError(try parse(bytes, path: "/d/x.npy"), name) { error in
                guard case .badNPY("/d/x.npy", _) = error else { return false }
                return error.description.hasPrefix("/d/x.npy: not a valid .npy array: ")
                    && error.description.contains(expected) && error.description.contains("Hint: ")
            }
        }
    }

    func testMissingFile() throws {
        let dir = try DataFixtures.temporaryDirectory(for: self)
        assertDataError(try NPYReader.read(path: dir.path + "/none.npy")) { $0 == .missingFile(path: dir.path + "/none.npy", isDefaultDataset: false) }
    }

    /// Every truncation and 3,000 seeded random byte flips of a valid file: each outcome is a
    /// `DataError` naming the file, or an array whose data are exactly its shape's bytes.
    func testHostileBytesNeverTrap() throws {
        let good = ArrayFixtures.npy(descr: "<f4", shape: [2, 3], data: (0..<24).map { UInt8($0) }, fortran: true)
        for length in 0..<good.count {
            assertDataError(try parse(Array(good.prefix(length)), path: "cut.npy"), "\(length) bytes") {
                $0.description.contains("cut.npy")
            }
        }
        var rng = RNG(seed: 17)
        var decoded = 0, refused = 0
        for trial in 0..<3000 {
            var bad = good
            let positions = (0...(trial % 3)).map { _ in Int(rng.next() % UInt64(good.count)) }
            for p in positions { bad[p] ^= UInt8(1 + rng.next() % 255) }
            do {
                let array = try parse(bad, path: "flipped.npy")
                decoded += 1
                XCTAssertEqual(array.doubles().count, array.shape.reduce(1, *), "trial \(trial)")
                XCTAssertEqual(array.strides.count, array.shape.count, "trial \(trial)")
                _ = (0..<array.count).compactMap(array.integer(at:)).count
                if array.dtype == .float32 { XCTAssertEqual(array.floats().count, array.count) }
            } catch let error as DataError {
                refused += 1
                XCTAssertTrue(error.description.contains("flipped.npy"), "trial \(trial): \(error)")
            } catch {
                XCTFail("trial \(trial): not a DataError: \(error)")
            }
        }
        XCTAssertGreaterThan(refused, 0, "flips in the header are refused")
        XCTAssertGreaterThan(decoded, 0, "flips in the data decode (.npy has no checksum)")
    }
}
