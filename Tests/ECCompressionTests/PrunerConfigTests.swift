@testable import ECCompression
import ECTestSupport
import Foundation
import XCTest

/// PrunerConfig's seed defaults, its job-file keys and its validation messages (docs/pruning.md).
final class PrunerConfigTests: XCTestCase {
    func testDefaultsAreTheSeedsAndValid() throws {
        let config = PrunerConfig()
        XCTAssertEqual(config.compressionRatio, 0)
        XCTAssertEqual(config.stepInterval, 1)
        XCTAssertEqual(config.numTrials, 1)
        XCTAssertEqual(config.includeScopes, [])
        XCTAssertEqual(config.excludeScopes, [])
        XCTAssertEqual(config.pruneSortRange, .global)
        XCTAssertEqual(config.prunableOpTypes, ["Conv2D", "MatMul"])
        XCTAssertEqual(config.emaAlpha, 0.95)
        XCTAssertEqual(config.channelMultiple, 1)
        XCTAssertNoThrow(try config.validate())
    }

    func testBadValuesNameTheKeyTheValueAndTheRange() {
        assertInvalid(PrunerConfig(compressionRatio: 1.5), "pruner.compression_ratio must be in [0, 1], got 1.5")
        // In range but meaningless: a ratio of 1 would remove every prunable parameter.
        assertInvalid(PrunerConfig(compressionRatio: 1),
                      "pruner.compression_ratio = 1: that would remove every prunable parameter, which no model survives "
                      + "(the pruner keeps at least one channel per group, so it could never reach it); use a fraction "
                      + "below 1, e.g. 0.75")
        assertInvalid(PrunerConfig(compressionRatio: -0.25), "pruner.compression_ratio must be in [0, 1], got -0.25")
        assertInvalid(PrunerConfig(compressionRatio: .nan), "pruner.compression_ratio must be in [0, 1], got nan")
        assertInvalid(PrunerConfig(stepInterval: 0), "pruner.step_interval must be > 0, got 0")
        assertInvalid(PrunerConfig(numTrials: -3), "pruner.num_trials must be > 0, got -3")
        assertInvalid(PrunerConfig(prunableOpTypes: ["Conv2D", "Conv3D"]),
                      "pruner.prunable_op_types: unknown op type 'Conv3D' (allowed: Conv2D, MatMul)")
        assertInvalid(PrunerConfig(pruneSortRange: "galactic"),
                      "pruner.prune_sort_range must be \"global\" or \"local\", got \"galactic\"")
        assertInvalid(PrunerConfig(emaAlpha: 0), "pruner.ema_alpha must be in (0, 1], got 0")
        assertInvalid(PrunerConfig(emaAlpha: 1.5), "pruner.ema_alpha must be in (0, 1], got 1.5")
        assertInvalid(PrunerConfig(channelMultiple: 0), "pruner.channel_multiple must be in [1, 1024], got 0")
        assertInvalid(PrunerConfig(channelMultiple: 16, narrowChannelMultiple: 0),
                      "pruner.narrow_channel_multiple must be in [1, channel_multiple = 16], got 0")
        assertInvalid(PrunerConfig(channelMultiple: 8, narrowChannelMultiple: 16),
                      "pruner.narrow_channel_multiple must be in [1, channel_multiple = 8], got 16")
        assertInvalid(PrunerConfig(channelMultiple: 16, narrowChannelMultiple: 6),
                      "pruner.narrow_channel_multiple = 6: it must divide channel_multiple (16), so that the widths "
                      + "below one multiple lead up to it; e.g. 8 with 16")
        assertInvalid(PrunerConfig(sortCost: "latency"), "pruner.sort_cost must be \"params\" or \"flops\", got \"latency\"")
        assertInvalid(PrunerConfig(excludeScopes: ["fc2", ""]),
                      "pruner.exclude_scopes[1] is an empty scope; hint: scopes are \"/\"-separated paths such as "
                      + "\"block1/conv2\"")
    }

    func testBoundaryValuesAreAccepted() {
        for config in [PrunerConfig(compressionRatio: 0.999), PrunerConfig(compressionRatio: 0, emaAlpha: 1),
                       PrunerConfig(channelMultiple: 16, narrowChannelMultiple: 1),
                       PrunerConfig(channelMultiple: 16, narrowChannelMultiple: 16),
                       PrunerConfig(pruneSortRange: .local, prunableOpTypes: ["MatMul"], emaAlpha: 1e-6)] {
            XCTAssertNoThrow(try config.validate())
        }
    }

    func testThePrunerRefusesABadConfig() {
        let error = thrownError(CompressionConfigError.self) {
            try Pruner(config: PrunerConfig(stepInterval: 0), groups: [])
        }
        XCTAssertEqual(error, .outOfRange(key: "pruner.step_interval", value: "0", allowed: "> 0"))
    }

    func testJobFileKeysAreTheSeedsAndMissingKeysTakeDefaults() throws {
        let json = #"{"compression_ratio": 0.5, "num_trials": 4, "prune_sort_range": "galactic", "ema_alpha": 1, "#
            + #""channel_multiple": 16, "narrow_channel_multiple": 8}"#
        let config = try JSONDecoder().decode(PrunerConfig.self, from: Data(json.utf8))
        XCTAssertEqual(config, PrunerConfig(compressionRatio: 0.5, numTrials: 4, pruneSortRange: "galactic", emaAlpha: 1,
                                            channelMultiple: 16, narrowChannelMultiple: 8))
        // A wrong choice decodes, so that validation can name it.
        XCTAssertEqual(thrownError(CompressionConfigError.self) { try config.validate() }.map(String.init(describing:)),
                       "pruner.prune_sort_range must be \"global\" or \"local\", got \"galactic\"")
        let roundTrip = try JSONDecoder().decode(PrunerConfig.self, from: JSONEncoder().encode(config))
        XCTAssertEqual(roundTrip, config)
        let empty = try JSONDecoder().decode(PrunerConfig.self, from: Data("{}".utf8))
        XCTAssertEqual(empty, PrunerConfig())
    }

    private func assertInvalid(_ config: PrunerConfig, _ message: String,
                               file: StaticString = #filePath, line: UInt = #line) {
        let error = thrownError(CompressionConfigError.self, { try config.validate() }, file: file, line: line)
        XCTAssertEqual(error.map(String.init(describing:)), message, file: file, line: line)
    }
}
