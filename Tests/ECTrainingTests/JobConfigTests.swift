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
            overlap_gradients: false
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
        XCTAssertFalse(c.overlapGradients)
        XCTAssertTrue(try parse("{}").overlapGradients, "gradients are summed during backward by default")
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
        assertError("compression: {quantizer: {unsigned_after_relu: 1}}",
                    "compression.quantizer.unsigned_after_relu must be true or false, got 1")
    }

    func testUnknownKeysSuggestTheClosest() {
        assertError("epocs: 3", "unknown config key 'epocs' (did you mean 'epochs'?)")
        assertError("optimizer: {momentun: 0.9}", "unknown config key 'optimizer.momentun' (did you mean 'optimizer.momentum'?)")
        assertError("zzzzzz: 1", "unknown config key 'zzzzzz'")
        assertError("repot: false", "unknown config key 'repot' (did you mean 'report'?)")
    }

    func testDatasetFormatsAndTheirKeys() throws {
        let idx = try parse("dataset: {path: /data, classes: 10, mean: 0.286, std: 0.353}").dataset
        XCTAssertEqual(idx.format, .idx)
        XCTAssertEqual(idx.path, "/data")
        XCTAssertEqual(idx.classes, 10)
        XCTAssertEqual(idx.normalization, PixelNormalization(mean: [0.286], std: [0.353]))

        let npz = try parse("""
            dataset:
              format: npz
              train: data/train.npz
              test: data/test.npz
              layout: nchw
              scale: 0.00392156862745098
              mean: [0.49, 0.48, 0.45]
              std: [0.25, 0.24, 0.26]
              limit_train: 640
            """).dataset
        XCTAssertEqual(npz.format, .npz)
        XCTAssertEqual(npz.train, "data/train.npz")
        XCTAssertEqual(npz.test, "data/test.npz")
        XCTAssertEqual(npz.layout, .nchw)
        XCTAssertEqual(npz.normalization.scale, 1 / 255.0)
        XCTAssertEqual(npz.normalization.mean, [0.49, 0.48, 0.45])
        XCTAssertEqual(npz.normalization.std, [0.25, 0.24, 0.26])
        XCTAssertEqual(npz.limitTrain, 640)
        XCTAssertNil(npz.classes, "from the data")

        let npy = try parse("dataset: {format: npy, train_x: a.npy, train_y: b.npy, test_x: c.npy, test_y: d.npy, layout: nhwc}").dataset
        XCTAssertEqual([npy.trainX, npy.trainY, npy.testX, npy.testY], ["a.npy", "b.npy", "c.npy", "d.npy"])
        XCTAssertEqual(npy.layout, .nhwc)
        XCTAssertNil(try parse("dataset: {format: npz, train: a, test: b}").dataset.layout, "inferred")
    }

    func testDatasetErrorsNameTheKey() {
        assertError("dataset: {format: csv}", "dataset.format must be one of \"idx\", \"npz\", \"npy\", got \"csv\"")
        assertError("dataset: {format: npz, test: b.npz}", "missing required config key 'dataset.train'")
        assertError("dataset: {format: npy, train_x: a, train_y: b, test_x: c}", "missing required config key 'dataset.test_y'")
        assertError("dataset: {path: /data, train: a.npz}",
                    "dataset.train: is a key of format npz, but the dataset is format idx (the default), which reads path; "
                    + "give format: npz and its keys, or remove train")
        assertError("dataset: {format: npz, path: /data, train: a.npz, test: b.npz}",
                    "dataset.path: is a key of format idx, but the dataset is format npz, which reads train, test; "
                    + "give format: idx and its keys, or remove path")
        assertError("dataset: {format: npy, train: a.npz}",
                    "dataset.train: is a key of format npz, but the dataset is format npy, which reads train_x, train_y, test_x, test_y; "
                    + "give format: npz and its keys, or remove train")
        assertError("dataset: {layout: nchw}", "dataset.layout: IDX images are N×H×W (one channel); layout is for format npz or npy")
        assertError("dataset: {format: npz, train: a, test: b, layout: chw}",
                    "dataset.layout must be one of \"nhwc\", \"nchw\" (leave it out to infer it from the shape), got \"chw\"")
        assertError("dataset: {classes: 0}", "dataset.classes must be in [1, 100000], got 0")
        assertError("dataset: {scale: 0}", "dataset.scale must be > 0, got 0")
        assertError("dataset: {std: 0}", "dataset.std must be > 0, got 0")
        assertError("dataset: {std: [0.5, -1, 0.5]}", "dataset.std[1] must be > 0, got -1")
        assertError("dataset: {mean: []}", "dataset.mean must be a number or a non-empty list of numbers, got an empty list")
        assertError("dataset: {mean: [0.5, red]}", "dataset.mean[1] must be a number or a list of numbers, got \"red\"")
        assertError("dataset: {mean: zero}", "dataset.mean must be a number or a list of numbers, got \"zero\"")
        assertError("dataset: {mean: [0.1, 0.2, 0.3], std: [0.2, 0.3]}",
                    "dataset.std: 2 values but mean has 3: give one per channel (or one number for all)")
        assertError("dataset: {format: npz, train: a, test: b, limt_test: 5}",
                    "unknown config key 'dataset.limt_test' (did you mean 'dataset.limit_test'?)")
        assertError("dataset: {format: npz, train: a, tset: b}", "missing required config key 'dataset.test'")
        assertError("dataset: {format: npy, train_x: a, train_y: b, test_x: c, test_y: d, trian_x: e}",
                    "unknown config key 'dataset.trian_x' (did you mean 'dataset.train_x'?)")
    }
}
