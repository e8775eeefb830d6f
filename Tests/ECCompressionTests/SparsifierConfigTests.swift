import XCTest
@testable import ECCompression

final class SparsifierConfigTests: XCTestCase {
    func testDefaultsAreTheSeeds() throws {
        let c = try JSONDecoder().decode(SparsifierConfig.self, from: Data("{}".utf8))
        XCTAssertEqual(c, SparsifierConfig())
        XCTAssertEqual(c.targetSparseRatio, 0.6)
        XCTAssertEqual(c.sparseBlockShape, [1, 1])
        XCTAssertEqual(c.stepInterval, 1000)
        XCTAssertEqual(c.numTrials, 10)
        XCTAssertEqual(c.sortRange, .local)
        XCTAssertNil(c.pattern)
        let p = try JSONDecoder().decode(SparsifierConfig.self, from: Data(#"{"pattern": "2:4", "sort_range": "global"}"#.utf8))
        XCTAssertEqual(p.pattern, NMPattern(n: 2, m: 4))
        XCTAssertEqual(p.finalSparsity, 0.5)
    }

    func testBadValuesNameTheKey() {
        let cases: [(SparsifierConfig, String)] = [
            (SparsifierConfig(targetSparseRatio: 1.5), "sparsifier.target_sparse_ratio must be in [0, 1], got 1.5"),
            (SparsifierConfig(targetSparseRatio: 1), "sparsifier.target_sparse_ratio = 1: that would zero every weight of "
                + "the sparsified kernels; use a fraction below 1, e.g. 0.9"),
            (SparsifierConfig(sparseBlockShape: [0, 16]), "sparsifier.sparse_block_shape must be > 0 in both dimensions (found 0), got [0, 16]"),
            (SparsifierConfig(sparseBlockShape: [4]), "sparsifier.sparse_block_shape must be two integers [rows, columns], got [4]"),
            (SparsifierConfig(stepInterval: 0), "sparsifier.step_interval must be > 0, got 0"),
            (SparsifierConfig(numTrials: -1), "sparsifier.num_trials must be > 0, got -1"),
            (SparsifierConfig(sortRange: "galactic"), "sparsifier.sort_range must be \"local\" or \"global\", got \"galactic\""),
            (SparsifierConfig(excludeScopes: ["fc1", ""]), "sparsifier.exclude_scopes[1] is an empty scope; hint: scopes are \"/\"-separated paths such as \"block1/conv2\""),
            (SparsifierConfig(sparseBlockShape: [1, 16], pattern: NMPattern(n: 2, m: 4)),
             "sparsifier.sparse_block_shape must be [1, 1] with a pattern (N:M groups are of single weights), got [1, 16]"),
        ]
        for (config, text) in cases {
            XCTAssertThrowsError(try config.validate()) { XCTAssertEqual("\($0)", text) }
        }
        for bad in ["4:2", "2:2", "0:4", "2-4", "a:b", "2:4:8", "1:65"] {
            XCTAssertNil(NMPattern(parsing: bad), bad)
        }
        XCTAssertEqual(NMPattern(parsing: "1:8"), NMPattern(n: 1, m: 8))
    }
}
