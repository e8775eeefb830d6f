import ECTestSupport
import Foundation
import XCTest
@testable import ECTraining

/// metrics.jsonl stays valid JSON whatever the numbers.
final class MetricsLogTests: XCTestCase {
    var work: URL!
    override func setUpWithError() throws { work = try TestPaths.temporaryDirectory(name) }
    override func tearDownWithError() throws { try? FileManager.default.removeItem(at: work) }

    func testMetricsLogWritesNonFiniteNumbersAsNull() throws {
        let url = work.appendingPathComponent("metrics.jsonl")
        let log = try MetricsLog(url: url, enabled: true)
        log.write("train", step: 3, ["loss": Double.nan, "samples_per_second": 10.0])
        log.write("train", step: 4, ["loss": Double.infinity, "samples_per_second": 10.0])
        let lines = try String(contentsOf: url, encoding: .utf8).split(separator: "\n")
        XCTAssertEqual(lines, [#"{"event":"train","loss":null,"samples_per_second":10,"step":3}"#,
                               #"{"event":"train","loss":null,"samples_per_second":10,"step":4}"#])
    }
}
