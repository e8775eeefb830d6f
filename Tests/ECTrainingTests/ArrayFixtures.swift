import ECTestSupport
import ECTraining
import Foundation
import XCTest

/// Builders for small `.npy` files and ZIP (`.npz`) archives written byte by byte, so the
/// malformed-file and fuzz tests need no NumPy; `numpy(_:in:)` runs real NumPy for the rest.
enum ArrayFixtures {
    /// A `.npy` file: magic, version, padded header (`header` replaces the dict), data.
    static func npy(descr: String, shape: [Int], data: [UInt8], fortran: Bool = false, major: UInt8 = 1,
                    header: String? = nil) -> [UInt8] {
        let shapeText = shape.count == 1 ? "(\(shape[0]),)" : "(" + shape.map(String.init).joined(separator: ", ") + ")"
        var dict = header ?? "{'descr': '\(descr)', 'fortran_order': \(fortran ? "True" : "False"), 'shape': \(shapeText), }"
        let preamble = major == 1 ? 10 : 12
        while (preamble + dict.utf8.count + 1) % 64 != 0 { dict += " " }
        dict += "\n"
        var bytes: [UInt8] = [0x93] + Array("NUMPY".utf8) + [major, 0]
        let length = dict.utf8.count
        bytes += major == 1 ? [UInt8(length & 0xff), UInt8(length >> 8)]
                            : [UInt8(length & 0xff), UInt8(length >> 8 & 0xff), UInt8(length >> 16 & 0xff), UInt8(length >> 24)]
        return bytes + Array(dict.utf8) + data
    }

    static func npy(uint8 values: [UInt8], shape: [Int]) -> [UInt8] { npy(descr: "|u1", shape: shape, data: values) }

    static func npy(float32 values: [Float], shape: [Int]) -> [UInt8] {
        npy(descr: "<f4", shape: shape, data: values.flatMap { littleEndian(UInt64($0.bitPattern), 4) })
    }

    static func npy(int64 values: [Int64]) -> [UInt8] {
        npy(descr: "<i8", shape: [values.count], data: values.flatMap { littleEndian(UInt64(bitPattern: $0), 8) })
    }

    static func littleEndian(_ x: UInt64, _ count: Int) -> [UInt8] { (0..<count).map { UInt8(x >> (8 * UInt64($0)) & 0xff) } }

    /// Raw deflate (RFC 1951) of `data` in stored blocks: valid method-8 ZIP data without a compressor.
    static func storedDeflate(_ data: [UInt8]) -> [UInt8] {
        var out: [UInt8] = []
        var offset = 0
        repeat {
            let length = min(65_535, data.count - offset)
            out.append(offset + length == data.count ? 1 : 0)
            out += [UInt8(length & 0xff), UInt8(length >> 8), UInt8(~length & 0xff), UInt8(~length >> 8 & 0xff)]
            out += data[offset..<(offset + length)]
            offset += length
        } while offset < data.count
        return out
    }

    /// A ZIP archive of `members` (method 0, or 8 with stored deflate blocks). `zip64` writes
    /// what a ZIP64 archive holds: saturated 32-bit sizes and offsets with ZIP64 extra fields in
    /// the central directory, and a ZIP64 end record with its locator.
    static func zip(_ members: [(name: String, data: [UInt8])], deflate: Bool = false, zip64: Bool = false) -> [UInt8] {
        func u16(_ x: Int) -> [UInt8] { littleEndian(UInt64(x), 2) }
        func u32(_ x: Int) -> [UInt8] { littleEndian(UInt64(x), 4) }
        func u64(_ x: Int) -> [UInt8] { littleEndian(UInt64(x), 8) }
        var out: [UInt8] = [], central: [UInt8] = []
        for (name, data) in members {
            let payload = deflate ? storedDeflate(data) : data
            let crc = u32(Int(DataFixtures.crc32(data)))
            let offset = out.count
            // Local header: ZIP64 extra with both sizes, as numpy's force_zip64 writes it.
            out += u32(0x0403_4b50) + u16(45) + u16(0) + u16(deflate ? 8 : 0) + u16(0) + u16(0) + crc
            out += u32(0xffff_ffff) + u32(0xffff_ffff) + u16(name.utf8.count) + u16(20) + Array(name.utf8)
            out += u16(1) + u16(16) + u64(data.count) + u64(payload.count)
            out += payload
            let extra = zip64 ? u16(1) + u16(24) + u64(data.count) + u64(payload.count) + u64(offset) : []
            central += u32(0x0201_4b50) + u16(45) + u16(45) + u16(0) + u16(deflate ? 8 : 0) + u16(0) + u16(0) + crc
            central += zip64 ? u32(0xffff_ffff) + u32(0xffff_ffff) : u32(payload.count) + u32(data.count)
            central += u16(name.utf8.count) + u16(extra.count) + u16(0) + u16(0) + u16(0) + u32(0)
            central += (zip64 ? u32(0xffff_ffff) : u32(offset)) + Array(name.utf8) + extra
        }
        let centralOffset = out.count
        out += central
        if zip64 {
            let record = out.count
            out += u32(0x0606_4b50) + u64(44) + u16(45) + u16(45) + u32(0) + u32(0)
            out += u64(members.count) + u64(members.count) + u64(central.count) + u64(centralOffset)
            out += u32(0x0706_4b50) + u32(0) + u64(record) + u32(1)
            out += u32(0x0605_4b50) + u16(0) + u16(0) + u16(0xffff) + u16(0xffff) + u32(0xffff_ffff) + u32(0xffff_ffff) + u16(0)
        } else {
            out += u32(0x0605_4b50) + u16(0) + u16(0) + u16(members.count) + u16(members.count)
            out += u32(central.count) + u32(centralOffset) + u16(0)
        }
        return out
    }

    /// Runs `script` with real NumPy, `sys.argv[1]` being `directory`; skips the test (or fails
    /// it under `EC_REQUIRE_PYTHON=1`) when NumPy is not there. Returns false when it failed.
    static func numpy(_ script: String, in directory: URL, file: StaticString = #filePath, line: UInt = #line) throws -> Bool {
        guard try PythonRunner.require("numpy", file: file, line: line) else { return false }
        let result = try PythonRunner.run("import sys, os, numpy as np\nos.chdir(sys.argv[1])\n" + script, [directory.path])
        XCTAssertEqual(result.status, 0, result.stderr, file: file, line: line)
        return result.status == 0
    }
}

/// Asserts that `expression` throws a `ConfigError` whose text is `expected`.
func assertConfigError<T>(_ expression: @autoclosure () throws -> T, _ expected: String,
                          file: StaticString = #filePath, line: UInt = #line) {
    XCTAssertThrowsError(try expression(), file: file, line: line) { error in
        XCTAssertTrue(error is ConfigError, "not a ConfigError: \(error)", file: file, line: line)
        XCTAssertEqual("\(error)", expected, file: file, line: line)
    }
}
