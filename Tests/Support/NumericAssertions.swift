import ECTensor
import XCTest

/// The one numeric comparison of the test suite: every element of `actual` within
/// `absolute + relative·|expected|` of `expected` (NumPy's `allclose`), shapes equal; a failure
/// names the worst element, both values and the bound it broke.
public func assertClose(_ actual: Tensor, _ expected: Tensor, absolute: Double = 0, relative: Double = 0,
                        _ message: @autoclosure () -> String = "", file: StaticString = #filePath, line: UInt = #line) {
    guard actual.shape == expected.shape else {
        return XCTFail("shape \(actual.shape) vs expected \(expected.shape) \(message())", file: file, line: line)
    }
    actual.withUnsafeBufferPointer { a in
        expected.withUnsafeBufferPointer { e in
            assertClose(a, e.lazy.map(Double.init), absolute: absolute, relative: relative, message(), file: file, line: line)
        }
    }
}

/// `assertClose` for values against a Double-precision reference.
public func assertClose(_ actual: [Float], _ expected: [Double], absolute: Double = 0, relative: Double = 0,
                        _ message: @autoclosure () -> String = "", file: StaticString = #filePath, line: UInt = #line) {
    actual.withUnsafeBufferPointer {
        assertClose($0, expected, absolute: absolute, relative: relative, message(), file: file, line: line)
    }
}

/// `assertClose` for every tensor of two sets, which must hold the same names and shapes.
public func assertClose(_ actual: NamedTensors, _ expected: NamedTensors, absolute: Double = 0, relative: Double = 0,
                        _ message: @autoclosure () -> String = "", file: StaticString = #filePath, line: UInt = #line) {
    XCTAssertEqual(actual.names, expected.names, "tensor names \(message())", file: file, line: line)
    for name in actual.names {
        guard let a = actual[name], let e = expected[name] else { continue }
        assertClose(a, e, absolute: absolute, relative: relative, "\(name) \(message())", file: file, line: line)
    }
}

private func assertClose<E: Collection>(_ actual: UnsafeBufferPointer<Float>, _ expected: E, absolute: Double, relative: Double,
                                        _ message: @autoclosure () -> String, file: StaticString, line: UInt)
where E.Element == Double {
    guard actual.count == expected.count else {
        return XCTFail("\(actual.count) values vs \(expected.count) expected \(message())", file: file, line: line)
    }
    var worst: (index: Int, actual: Double, expected: Double, excess: Double)?
    for (i, (a, e)) in zip(actual.lazy.map(Double.init), expected).enumerated() {
        let excess = abs(a - e) - (absolute + relative * abs(e))
        if !(excess <= 0) && (worst == nil || !(excess <= worst!.excess)) { worst = (i, a, e, excess) }
    }
    if let w = worst {
        XCTFail("element \(w.index): \(w.actual) vs expected \(w.expected), bound \(absolute) + \(relative)·|expected| "
                + "exceeded by \(w.excess) \(message())", file: file, line: line)
    }
}

/// Every tensor of `actual` is `expected`'s bit for bit (names, shapes and each Float's bit
/// pattern, so −0 ≠ +0 and NaNs compare by payload); a failure names the tensor and the first
/// differing element.
public func assertBitIdentical(_ actual: NamedTensors, _ expected: NamedTensors, _ message: @autoclosure () -> String = "",
                               file: StaticString = #filePath, line: UInt = #line) {
    XCTAssertEqual(actual.names, expected.names, "tensor names \(message())", file: file, line: line)
    for name in actual.names {
        guard let a = actual[name], let e = expected[name] else { continue }
        guard a.shape == e.shape else {
            XCTFail("\(name): shape \(a.shape) vs \(e.shape) \(message())", file: file, line: line)
            continue
        }
        let x = a.scalars, y = e.scalars
        if let i = x.indices.first(where: { x[$0].bitPattern != y[$0].bitPattern }) {
            XCTFail("\(name): element \(i) is \(x[i]) vs \(y[i]) (not bit-identical) \(message())", file: file, line: line)
        }
    }
}
