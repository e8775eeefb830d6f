import ECCollective
import Foundation

/// A failed expectation of a scenario.
struct CheckFailure: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}

/// Throws `CheckFailure(message)` unless `condition` holds.
func check(_ condition: Bool, _ message: @autoclosure () -> String) throws {
    if !condition { throw CheckFailure(message()) }
}

/// Throws unless `actual == expected` element-wise, naming the first differing index.
func checkEqual<T: Equatable>(_ actual: [T], _ expected: [T], _ what: @autoclosure () -> String) throws {
    try check(actual.count == expected.count, "\(what()): count \(actual.count), expected \(expected.count)")
    if let i = actual.indices.first(where: { actual[$0] != expected[$0] }) {
        throw CheckFailure("\(what()): element \(i) is \(actual[i]), expected \(expected[i])")
    }
}

/// Element counts used by the scenarios: `large` crosses many MPI chunks when
/// `maxCountPerCall` is lowered, so the chunked run uses a smaller one.
struct Sizes {
    var large: Int
    static let normal = Sizes(large: (1 << 18) + 3)
    static let chunked = Sizes(large: 503)
    var lengths: [Int] { [0, 1, 17, large] }
}

/// A deterministic byte pattern, different for each `(seed, index)`.
func pattern(_ seed: Int, _ count: Int) -> [UInt8] {
    (0..<count).map { UInt8(truncatingIfNeeded: $0 &* 31 &+ seed &* 7 &+ count) }
}

/// The roots a scenario exercises: 0 and (if it exists) 1.
func roots(_ comm: Communicator) -> [Int] { comm.size > 1 ? [0, 1] : [0] }

/// The last rank as a root (differs from 0 and 1 on 3 ranks).
func lastRoot(_ comm: Communicator) -> Int { comm.size - 1 }
