@testable import ECCompression
import ECNN
import ECTensor
import XCTest

/// `applyMasks` zeroes exactly the elements of pruned channels, in producers and consumers.
final class PrunerMasksTests: XCTestCase {
    /// conv1 channel 1, conv2 channel 2 and fc1 channel 3 pruned.
    private func prunedTinyNet() throws -> Pruner {
        let pruner = try preparedPruner(PrunerConfig(), model: TinyNet.model(), groups: TinyNet.groups)
        pruner.setKeep(["conv1": [true, false, true, true], "conv2": [true, true, false, true, true, true],
                        "fc1": [true, true, true, false, true]])
        return pruner
    }

    /// Whether element `e` of `parameter` must be zero, from the shapes alone (multi-indices).
    private func mustBeZero(_ parameter: String, _ e: Int) -> Bool {
        switch parameter {
        case "conv1/weight": return e % 4 == 1                                   // [3,3,1,4]: out 1
        case "conv1/bias": return e == 1
        case "conv2/weight": return e % 6 == 2 || (e / 6) % 4 == 1               // [3,3,4,6]: out 2 or in 1
        case "conv2/bias": return e == 2
        case "fc1/weight":                                                      // [24,5], rows (h, w, c) of [2,2,6]
            let row = e / 5, out = e % 5
            let (h, w, c) = (row / 12, (row / 6) % 2, row % 6)
            XCTAssertEqual((h * 2 + w) * 6 + c, row)
            return c == 2 || out == 3
        case "fc1/bias": return e == 3
        case "fc2/weight": return e / 3 == 3                                     // [5,3]: input 3
        default: return false                                                   // fc2/bias
        }
    }

    func testValuesAndOptimizerSlotsLoseExactlyThePrunedElements() throws {
        let pruner = try prunedTinyNet()
        let model = TinyNet.model()
        var rng = RNG(seed: 11)
        for parameter in model.parameters {
            for slot in 0..<2 {
                // Slot 0: the value; slot 1: an optimizer slot with NaNs and signed zeros.
                var tensor = slot == 0 ? parameter.value : Tensor.normal(shape: parameter.shape, rng: &rng)
                if slot == 1 {
                    tensor.withUnsafeMutableBufferPointer { $0[0] = Float.nan; $0[$0.count - 1] = -0.0 }
                }
                let before = tensor.scalars
                pruner.applyMasks(to: &tensor, parameter: parameter.name)
                XCTAssertEqual(tensor.shape, parameter.shape)
                var zeroed = 0
                for (e, (old, new)) in zip(before, tensor.scalars).enumerated() {
                    if mustBeZero(parameter.name, e) {
                        XCTAssertEqual(new.bitPattern, 0, "\(parameter.name)[\(e)] must be +0")
                        zeroed += 1
                    } else {
                        XCTAssertEqual(new.bitPattern, old.bitPattern, "\(parameter.name)[\(e)] must be unchanged")
                    }
                }
                let expected = ["conv1/weight": 9, "conv1/bias": 1, "conv2/weight": 36 + 54 - 9, "conv2/bias": 1,
                                "fc1/weight": 20 + 24 - 4, "fc1/bias": 1, "fc2/weight": 3, "fc2/bias": 0]
                XCTAssertEqual(zeroed, expected[parameter.name], parameter.name)
            }
        }
        XCTAssertEqual(pruner.removedParameterCount, 9 + 1 + 81 + 1 + 40 + 1 + 3)
    }

    func testAParameterWithNothingPrunedIsLeftAlone() throws {
        let pruner = try preparedPruner(PrunerConfig(), model: TinyNet.model(), groups: TinyNet.groups)
        var tensor = Tensor(shape: [3, 3, 1, 4], repeating: 2)
        pruner.applyMasks(to: &tensor, parameter: "conv1/weight")
        pruner.applyMasks(to: &tensor, parameter: "not/a/parameter")
        XCTAssertEqual(tensor, Tensor(shape: [3, 3, 1, 4], repeating: 2))
        XCTAssertTrue(pruner.masks.byParameter.isEmpty)
    }
}
