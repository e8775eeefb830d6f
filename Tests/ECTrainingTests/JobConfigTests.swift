import XCTest
@testable import ECTraining

final class JobConfigTests: XCTestCase {
    func parse(_ yaml: String) throws -> JobConfig { try JobConfig.parse(ConfigNode.parse(yaml, file: "job.yaml")) }

    func assertError(_ yaml: String, _ expected: String, file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertThrowsError(try parse(yaml), file: file, line: line) { error in
            XCTAssertEqual("\(error)", expected, file: file, line: line)
        }
    }

    func testDefaultsAreTheReferenceJob() throws {
        let c = try parse("{}")
        XCTAssertEqual(c.model, "fmnist-cnn")
        XCTAssertEqual(c.epochs, 3)
        XCTAssertNil(c.steps)
        XCTAssertEqual(c.batchSize, 64)
        XCTAssertEqual(c.optimizer.name, "sgd")
        XCTAssertEqual(c.optimizer.lr, 0.05)
        XCTAssertEqual(c.optimizer.momentum, 0.9)
        XCTAssertEqual(c.dataset.path, "/usr/share/datasets/fashion-mnist")
    }

    func testEveryKeyIsRead() throws {
        let c = try parse("""
            model: resnet-mini
            dataset: {path: /data, limit_train: 100, limit_test: 50}
            epochs: 2
            steps: 30
            batch_size: 32
            optimizer:
              name: adamw
              lr: 0.001
              weight_decay: 0.01
              beta1: 0.8
              beta2: 0.99
              epsilon: 1.0e-7
              schedule: {name: cosine, warmup_steps: 5, min_lr: 0.0001}
            seed: 7
            eval_every: 10
            checkpoint_every: 15
            keep_checkpoints: 4
            log_every: 5
            save_dir: out
            init_from: runs/base
            threads: 1
            debug_check_every: 3
            bucket_bytes: 65536
            report: false
            """)
        XCTAssertEqual(c.model, "resnet-mini")
        XCTAssertEqual(c.dataset.limitTrain, 100)
        XCTAssertEqual(c.steps, 30)
        XCTAssertEqual(c.optimizer.name, "adamw")
        XCTAssertEqual(c.optimizer.schedule.name, "cosine")
        XCTAssertEqual(c.optimizer.schedule.warmupSteps, 5)
        XCTAssertEqual(c.seed, 7)
        XCTAssertEqual(c.initFrom, "runs/base")
        XCTAssertEqual(c.bucketBytes, 65536)
        XCTAssertFalse(c.report)
        XCTAssertTrue(try parse("{}").report, "the report is on by default")
        let json = try JobConfig.parse(ConfigNode.parse(#"{"model": "mlp", "batch_size": 8}"#, file: "job.json"))
        XCTAssertEqual(json.model, "mlp")
        XCTAssertEqual(json.batchSize, 8)
    }

    func testBadValuesNameKeyValueAndRange() {
        assertError("batch_size: 0", "batch_size must be ≥ 1, got 0")
        assertError("epochs: 1.5", "epochs must be an integer, got 1.5")
        assertError("optimizer: {lr: 0}", "optimizer.lr must be > 0, got 0")
        assertError("optimizer: {momentum: 1.5}", "optimizer.momentum must be in [0, 0.999999], got 1.5")
        assertError("optimizer: {schedule: {name: linear}}",
                    "optimizer.schedule.name must be one of \"constant\", \"step\", \"cosine\", got \"linear\"")
        assertError("dataset: 3", "dataset must be a mapping, got 3")
        assertError("save_dir: [a]", "save_dir must be a string, got a list")
        assertError("threads: 0", "threads must be in [1, 256], got 0")
        assertError("report: maybe", "report must be true or false, got \"maybe\"")
    }

    func testUnknownKeysSuggestTheClosest() {
        assertError("epocs: 3", "unknown config key 'epocs' (did you mean 'epochs'?)")
        assertError("optimizer: {momentun: 0.9}", "unknown config key 'optimizer.momentun' (did you mean 'optimizer.momentum'?)")
        assertError("zzzzzz: 1", "unknown config key 'zzzzzz'")
        assertError("repot: false", "unknown config key 'repot' (did you mean 'report'?)")
    }
}
