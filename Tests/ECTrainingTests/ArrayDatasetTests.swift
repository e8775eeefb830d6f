import EasyCompression
import ECTensor
import ECTestSupport
import Foundation
import XCTest
@testable import ECTraining

/// `JobData.load` on `.npz` and `.npy` data: arrays written by NumPy read back equal in every
/// layout and dtype, normalisation, layout inference, class counts, and every data error.
final class ArrayDatasetTests: XCTestCase {
    var dir: URL!

    override func setUpWithError() throws {
        dir = try DataFixtures.temporaryDirectory(for: self)
    }

    private func file(_ name: String) -> String { dir.appendingPathComponent(name).path }

    private func npz(train: String = "train.npz", test: String = "test.npz", _ edit: (inout JobConfig.DatasetConfig) -> Void = { _ in })
        -> JobConfig.DatasetConfig {
        var c = JobConfig.DatasetConfig()
        c.format = .npz
        c.train = file(train)
        c.test = file(test)
        edit(&c)
        return c
    }

    /// Writes an `.npz` of Swift-built arrays.
    private func writeNPZ(_ name: String, x: [UInt8], y: [UInt8], deflate: Bool = false) throws {
        try Data(ArrayFixtures.zip([("x.npy", x), ("y.npy", y)], deflate: deflate)).write(to: URL(fileURLWithPath: file(name)))
    }

    /// Image `n` of an N×H×W×C reference: pixel (h, w, c) = (n·37 + h·11 + w·5 + c·3) % 256.
    private static func pixel(_ n: Int, _ h: Int, _ w: Int, _ c: Int) -> Int { (n * 37 + h * 11 + w * 5 + c * 3) % 256 }

    private static func referenceNHWC(count: Int, h: Int, w: Int, c: Int) -> [Float] {
        (0..<count).flatMap { n in (0..<h).flatMap { y in (0..<w).flatMap { x in (0..<c).map { Float(pixel(n, y, x, $0)) } } } }
    }

    func testNumPyArraysReadBackInEveryLayoutAndDType() throws {
        guard try ArrayFixtures.numpy("""
            n, h, w, c = 6, 5, 4, 3
            idx = np.indices((n, h, w, c))
            nhwc = (idx[0] * 37 + idx[1] * 11 + idx[2] * 5 + idx[3] * 3) % 256
            y = np.array([0, 1, 2, 3, 4, 5], dtype=np.int64)
            np.savez('u8-nhwc.npz', x=nhwc.astype(np.uint8), y=y)
            np.savez_compressed('f32-nchw.npz', x=nhwc.transpose(0, 3, 1, 2).astype(np.float32), y=y.astype(np.int32))
            np.savez('f64-nhw.npz', x=nhwc[..., 0].astype(np.float64), y=y.astype(np.float32))
            np.savez('u8-fortran-nchw.npz', x=np.asfortranarray(nhwc.transpose(0, 3, 1, 2).astype(np.uint8)), y=y.astype(np.uint8))
            np.savez('u8-big-f32.npz', x=nhwc.astype('>f4'), y=y.astype('>i8'))
            np.save('x.npy', nhwc[:, :, :, :1].astype(np.uint8))
            np.save('y.npy', y.reshape(6, 1).astype(np.int16))
            """, in: dir) else { return }
        let rgb = Self.referenceNHWC(count: 6, h: 5, w: 4, c: 3)
        let gray = stride(from: 0, to: rgb.count, by: 3).map { rgb[$0] }
        for (name, expected, shape, note) in [("u8-nhwc", rgb.map { $0 / 255 }, [5, 4, 3], "uint8 pixels kept as bytes (NHWC inferred"),
                                              ("f32-nchw", rgb, [5, 4, 3], "float32 pixels (NCHW inferred"),
                                              ("f64-nhw", gray, [5, 4, 1], "float64 pixels stored as float32 (N×H×W, one channel"),
                                              ("u8-fortran-nchw", rgb.map { $0 / 255 }, [5, 4, 3], "NCHW inferred from the shape, Fortran order"),
                                              ("u8-big-f32", rgb, [5, 4, 3], "float32 pixels (NHWC inferred from the shape, big-endian")] {
            let data = try JobData.load(npz(train: "\(name).npz", test: "\(name).npz"))
            XCTAssertEqual(data.signature.imageShape, shape, name)
            XCTAssertEqual(data.signature.classes, 6, name)
            XCTAssertEqual(data.train?.images.shape, [6] + shape, name)
            XCTAssertEqual(data.train?.images.scalars, expected, name)
            XCTAssertEqual(data.test.labels, [0, 1, 2, 3, 4, 5], name)
            XCTAssertTrue(data.summary.contains(note), "\(name): \(data.summary)")
        }
        var npy = JobConfig.DatasetConfig()
        npy.format = .npy
        (npy.trainX, npy.trainY, npy.testX, npy.testY) = (file("x.npy"), file("y.npy"), file("x.npy"), file("y.npy"))
        let data = try JobData.load(npy)
        XCTAssertEqual(data.test.images.shape, [6, 5, 4, 1])
        XCTAssertEqual(data.test.images.scalars, gray.map { $0 / 255 })
        XCTAssertEqual(data.test.labels, [0, 1, 2, 3, 4, 5], "(N, 1) labels")
    }

    func testUInt8DefaultIsExactlyPixelsOver255() throws {
        let table = try PixelNormalization().byteTable(channels: 3, images: "x")
        XCTAssertEqual(table, Dataset.byteToUnit, "one table for all channels, bit for bit the IDX path's")
    }

    func testNormalisationScaleMeanStd() throws {
        let pixels: [UInt8] = [0, 255, 51, 102, 0, 255, 10, 20]  // 2 images of 1×2×2 (NHWC)
        try writeNPZ("rgb.npz", x: ArrayFixtures.npy(uint8: pixels, shape: [2, 1, 2, 2]), y: ArrayFixtures.npy(int64: [0, 1]))
        let bytes = try JobData.load(npz(train: "rgb.npz", test: "rgb.npz") {
            $0.layout = .nhwc
            $0.normalization = PixelNormalization(mean: [0.5, 0.25], std: [0.5, 0.25])
        })
        let expected = pixels.enumerated().map { i, p in (Float(p) / 255 - [0.5, 0.25][i % 2]) / [0.5, 0.25][i % 2] }
        XCTAssertEqual(bytes.test.images.scalars.count, 8)
        for (a, b) in zip(bytes.test.images.scalars, expected) { XCTAssertEqual(a, b, accuracy: 1e-6) }
        guard case let .bytes(_, _, table) = bytes.test.storage else { return XCTFail("uint8 data stay bytes") }
        XCTAssertEqual(table.count, 512, "one table per channel")

        let scaled = try JobData.load(npz(train: "rgb.npz", test: "rgb.npz") {
            $0.layout = .nhwc
            $0.normalization = PixelNormalization(scale: 2, mean: [10], std: [4])
        })
        XCTAssertEqual(scaled.test.images.scalars, pixels.map { (Float($0) * 2 - 10) / 4 })

        let floats: [Float] = [1, 2, 3, 4, 5, 6, 7, 8]
        try writeNPZ("f.npz", x: ArrayFixtures.npy(float32: floats, shape: [2, 2, 2]), y: ArrayFixtures.npy(int64: [1, 0]))
        XCTAssertEqual(try JobData.load(npz(train: "f.npz", test: "f.npz")).test.images.scalars, floats, "floats as they are")
        let normalised = try JobData.load(npz(train: "f.npz", test: "f.npz") { $0.normalization = PixelNormalization(scale: 0.5, mean: [1], std: [2]) })
        XCTAssertEqual(normalised.test.images.scalars, floats.map { ($0 * 0.5 - 1) / 2 })

        assertConfigError(try JobData.load(npz(train: "rgb.npz", test: "rgb.npz") {
            $0.layout = .nhwc
            $0.normalization = PixelNormalization(mean: [0.1, 0.2, 0.3])
        }), "dataset.mean: 3 values for images with 2 channels (\(file("rgb.npz")) x is 1×2×2); give one number, or one per channel")
        assertConfigError(try JobData.load(npz(train: "f.npz", test: "f.npz") { $0.normalization = PixelNormalization(std: [1, 2]) }),
                          "dataset.std: 2 values for images with 1 channel (\(file("f.npz")) x is 2×2×1); give one number, or one per channel")
        try writeNPZ("nan.npz", x: ArrayFixtures.npy(float32: [1, 2, 3, 4, 5, 6, .infinity, 8], shape: [2, 2, 2]),
                     y: ArrayFixtures.npy(int64: [1, 0]))
        assertDataError(try JobData.load(npz(train: "nan.npz", test: "nan.npz"))) {
            $0 == .nonFiniteValue(path: self.file("nan.npz") + " (member x.npy)", sample: 1)
        }
    }

    func testLayoutInferenceAndTheAmbiguousShapeError() throws {
        for (shape, layout, image) in [([2, 3, 4, 5], ImageLayout?.none, [4, 5, 3]), ([2, 4, 5, 3], nil, [4, 5, 3]),
                                       ([2, 1, 4, 5], nil, [4, 5, 1]), ([2, 4, 5, 1], nil, [4, 5, 1]),
                                       ([2, 3, 4, 3], .nhwc, [3, 4, 3]), ([2, 3, 4, 3], .nchw, [4, 3, 3]),
                                       ([2, 4, 4, 4], .nchw, [4, 4, 4])] {
            let count = shape.reduce(1, *)
            try writeNPZ("s.npz", x: ArrayFixtures.npy(uint8: (0..<count).map { UInt8($0 % 256) }, shape: shape),
                         y: ArrayFixtures.npy(int64: [0, 1]))
            let data = try JobData.load(npz(train: "s.npz", test: "s.npz") { $0.layout = layout })
            XCTAssertEqual(data.signature.imageShape, image, "\(shape) \(String(describing: layout))")
        }
        for shape in [[2, 3, 4, 3], [2, 1, 1, 1], [2, 4, 5, 6]] {
            try writeNPZ("a.npz", x: ArrayFixtures.npy(uint8: Array(repeating: 0, count: shape.reduce(1, *)), shape: shape),
                         y: ArrayFixtures.npy(int64: [0, 1]))
            assertDataError(try JobData.load(npz(train: "a.npz", test: "a.npz"))) {
                $0 == .ambiguousLayout(path: self.file("a.npz") + " (member x.npy)", shape: shape)
                    && $0.description.contains("`layout: nhwc` (N×H×W×C) or `layout: nchw` (N×C×H×W)")
            }
        }
    }

    func testClassesFromTheDataOrTheJob() throws {
        let x = ArrayFixtures.npy(uint8: Array(repeating: 7, count: 12), shape: [3, 2, 2])
        try writeNPZ("train.npz", x: x, y: ArrayFixtures.npy(int64: [0, 4, 2]))
        try writeNPZ("test.npz", x: x, y: ArrayFixtures.npy(int64: [6, 1, 0]))
        let inferred = try JobData.load(npz())
        XCTAssertEqual(inferred.signature.classes, 7, "largest label of both splits + 1")
        XCTAssertEqual(inferred.signature.classesSource, "labels 0…6 in \(file("test.npz")) y")
        XCTAssertEqual(inferred.train?.classes, 7)
        XCTAssertEqual(try JobData.load(npz { $0.classes = 10 }).signature.classes, 10)
        assertDataError(try JobData.load(npz { $0.classes = 5 })) {
            $0 == .labelOutOfRange(path: self.file("test.npz") + " (member y.npy)", index: 0, label: 6, classes: 5)
        }
        // Labels only (eval, export): the training labels still count.
        let labelsOnly = try JobData.load(npz(train: "test.npz", test: "train.npz"), train: .labelsOnly)
        XCTAssertNil(labelsOnly.train)
        XCTAssertEqual(labelsOnly.signature.classes, 7)
        XCTAssertEqual(try JobData.load(npz(), train: .first(2)).train?.count, 2)
        XCTAssertEqual(try JobData.load(npz { $0.limitTrain = 1; $0.limitTest = 2 }).test.count, 2)
    }

    func testLimitKeepsBytesAsBytes() throws {
        try writeNPZ("u.npz", x: ArrayFixtures.npy(uint8: (0..<12).map(UInt8.init), shape: [3, 2, 2]), y: ArrayFixtures.npy(int64: [0, 1, 2]))
        let data = try JobData.load(npz(train: "u.npz", test: "u.npz") { $0.limitTrain = 2 })
        guard case let .bytes(pixels, shape, _) = try XCTUnwrap(data.train).storage else { return XCTFail("bytes") }
        XCTAssertEqual(pixels, (0..<8).map(UInt8.init))
        XCTAssertEqual(shape, [2, 2, 2, 1])
        guard case .bytes = data.test.prefix(1).storage else { return XCTFail("prefix keeps bytes") }
        XCTAssertEqual(data.test.prefix(1).images.scalars, [0, 1, 2, 3].map { Float($0) / 255 })
    }

    func testEveryDataErrorNamesTheFile() throws {
        let x = ArrayFixtures.npy(uint8: Array(repeating: 1, count: 12), shape: [3, 2, 2])
        let y = ArrayFixtures.npy(int64: [0, 1, 2])
        try writeNPZ("good.npz", x: x, y: y)
        func check(_ name: String, x: [UInt8], y: [UInt8], _ matches: @escaping (DataError) -> Bool) throws {
            try writeNPZ("bad.npz", x: x, y: y)
            assertDataError(try JobData.load(npz(train: "bad.npz", test: "good.npz")), name, matches: matches)
        }
        let member = file("bad.npz") + " (member x.npy)", labels = file("bad.npz") + " (member y.npy)"
        try check("int pixels", x: ArrayFixtures.npy(descr: "<i8", shape: [3, 1], data: Array(repeating: 0, count: 24)), y: y) {
            $0 == .unsuitableArray(path: member, shape: [3, 1], dtype: "int64",
                                   expected: "images of shape N×H×W, N×H×W×C or N×C×H×W with dtype uint8, float32 or float64")
        }
        try check("no images", x: ArrayFixtures.npy(uint8: [], shape: [0, 2, 2]), y: ArrayFixtures.npy(int64: [])) {
            $0 == .unsuitableArray(path: member, shape: [0, 2, 2], dtype: "uint8", expected: "at least one image")
        }
        try check("zero columns", x: ArrayFixtures.npy(uint8: [], shape: [3, 2, 0]), y: y) {
            if case .unsuitableArray(member, [3, 2, 0], "uint8", _) = $0 { return true }
            return false
        }
        try check("count", x: x, y: ArrayFixtures.npy(int64: [0, 1])) {
            $0 == .countMismatch(imagesPath: member, imageCount: 3, labelsPath: labels, labelCount: 2)
        }
        try check("one-hot", x: x, y: ArrayFixtures.npy(float32: [1, 0, 0, 1, 0, 0], shape: [3, 2])) {
            $0 == .unsuitableArray(path: labels, shape: [3, 2], dtype: "float32", expected: "labels of shape (N,) or (N, 1), one class index per image")
        }
        try check("negative", x: x, y: ArrayFixtures.npy(int64: [0, -1, 2])) {
            $0 == .invalidLabel(path: labels, index: 1, value: "-1", reason: "is negative")
        }
        try check("fraction", x: x, y: ArrayFixtures.npy(float32: [0, 1, 2.5], shape: [3])) {
            $0 == .invalidLabel(path: labels, index: 2, value: "2.5", reason: "is not an integer")
                && $0.description.contains("np.argmax(y, axis=1)")
        }
        try check("huge", x: x, y: ArrayFixtures.npy(int64: [0, 1, 1 << 40])) {
            $0 == .invalidLabel(path: labels, index: 2, value: "\(1 << 40)", reason: "is beyond the 100000 classes a job may have")
        }
        try check("uint64", x: x, y: ArrayFixtures.npy(descr: "<u8", shape: [3], data: Array(repeating: 0xff, count: 24))) {
            $0 == .invalidLabel(path: labels, index: 0, value: "18446744073709551615", reason: "is beyond the 100000 classes a job may have")
        }
        try check("shape", x: ArrayFixtures.npy(uint8: Array(repeating: 1, count: 27), shape: [3, 3, 3]), y: y) {
            $0 == .imageShapeMismatch(trainPath: self.file("bad.npz") + " x", trainShape: [3, 3, 1],
                                      testPath: self.file("good.npz") + " x", testShape: [2, 2, 1])
                && $0.description.contains("training images are 3×3×1")
        }
        try Data(ArrayFixtures.zip([("x.npy", x)])).write(to: URL(fileURLWithPath: file("bad.npz")))
        assertDataError(try JobData.load(npz(train: "bad.npz", test: "good.npz"))) {
            $0 == .missingMember(path: self.file("bad.npz"), member: "y.npy", found: ["x.npy"])
        }
        assertDataError(try JobData.load(npz(train: "none.npz", test: "good.npz"))) {
            $0 == .missingDataFile(path: self.file("none.npz"), key: "train")
                && $0.description.contains("none.npz: file not found (dataset.train)")
        }
        var npy = JobConfig.DatasetConfig()
        npy.format = .npy
        (npy.trainX, npy.trainY, npy.testX, npy.testY) = (file("a.npy"), file("b.npy"), file("c.npy"), file("d.npy"))
        assertDataError(try JobData.load(npy)) { $0 == .missingDataFile(path: self.file("b.npy"), key: "train_y") }
    }

    func testTheModelIsBuiltForTheDataOrCheckedAgainstIt() throws {
        try writeNPZ("rgb.npz", x: ArrayFixtures.npy(uint8: Array(repeating: 9, count: 2 * 16 * 16 * 3), shape: [2, 16, 16, 3]),
                     y: ArrayFixtures.npy(int64: [0, 99]))
        let data = try JobData.load(npz(train: "rgb.npz", test: "rgb.npz"))
        var job = JobConfig()
        for name in ["mlp", "lenet5", "fmnist-cnn", "resnet-mini"] {
            job.model = name
            let model = try job.makeModel(for: data.signature)
            XCTAssertEqual(model.inputShape, [16, 16, 3], name)
            XCTAssertEqual(model.classes, 100, name)
            let logits = model(Variable(try XCTUnwrap(data.train).images), .inference())
            XCTAssertEqual(logits.shape, [2, 100], name)
        }
        let source = file("rgb.npz")
        assertConfigError(try data.signature.requireFits(modelNamed: "fmnist-cnn", inputShape: [28, 28, 1], classes: 10),
                          "dataset: images are 16×16×3 (\(source) x), model fmnist-cnn expects 28×28×1; "
                          + "100 classes (labels 0…99 in \(source) y), model fmnist-cnn expects 10")
        assertConfigError(try data.signature.requireFits(modelNamed: "m", inputShape: [16, 16, 3], classes: 10),
                          "dataset: 100 classes (labels 0…99 in \(source) y), model m expects 10")
        XCTAssertNoThrow(try data.signature.requireFits(modelNamed: "zoo", inputShape: nil, classes: nil))

        try writeNPZ("tiny.npz", x: ArrayFixtures.npy(uint8: Array(repeating: 9, count: 2 * 64), shape: [2, 8, 8]),
                     y: ArrayFixtures.npy(int64: [0, 1]))
        job.model = "lenet5"
        assertConfigError(try job.makeModel(for: JobData.load(npz(train: "tiny.npz", test: "tiny.npz")).signature),
                          "dataset: images are 8×8×1 (\(file("tiny.npz")) x), model lenet5 needs at least 12×12")
    }

    /// A model of fixed shape that the data do not fit stops `TrainJob` before it writes anything.
    func testTrainJobRefusesAFixedModelBeforeWritingAnything() throws {
        try writeNPZ("rgb.npz", x: ArrayFixtures.npy(uint8: Array(repeating: 9, count: 4 * 8 * 8 * 3), shape: [4, 8, 8, 3]),
                     y: ArrayFixtures.npy(int64: [0, 1, 2, 3]))
        var job = JobConfig()
        job.dataset = npz(train: "rgb.npz", test: "rgb.npz")
        job.saveDir = file("run")
        job.steps = 1
        let fixed = try XCTUnwrap(ModelZoo.make("fmnist-cnn", seed: 1))  // 28×28×1, 10 classes
        assertConfigError(try TrainJob.run(job, communicator: SingleProcessCommunicator(), log: Logger(quiet: true), model: { fixed }),
                          "dataset: images are 8×8×3 (\(file("rgb.npz")) x), model fmnist-cnn expects 28×28×1; "
                          + "4 classes (labels 0…3 in \(file("rgb.npz")) y), model fmnist-cnn expects 10")
        XCTAssertFalse(FileManager.default.fileExists(atPath: file("run")), "nothing written")
    }

    func testIDXStaysTheDefault() throws {
        var c = JobConfig.DatasetConfig()
        c.limitTrain = 5
        c.limitTest = 3
        let data = try JobData.load(c)
        XCTAssertEqual(data.signature.imageShape, [28, 28, 1])
        XCTAssertEqual(data.signature.classes, 10)
        XCTAssertEqual(data.train?.images, try Dataset.load(.train, limit: 5).images)
        XCTAssertEqual(data.test.labels, [9, 2, 1])
        c.normalization = PixelNormalization(mean: [0.5], std: [0.5])
        let normalised = try JobData.load(c).test.images.scalars, plain = try Dataset.load(.test, limit: 3).images.scalars
        XCTAssertEqual(normalised.count, plain.count)
        for (a, b) in zip(normalised, plain) { XCTAssertEqual(a, (b - 0.5) / 0.5, accuracy: 1e-6) }
    }

    /// examples/fmnist-cnn-npz.yaml on the archives examples/fmnist-to-npz.py writes trains
    /// exactly as the same job on the IDX files: same pixels, same normalisation, same weights.
    func testTheNPZExampleTrainsAsTheIDXFilesDo() throws {
        let script = TestPaths.repository.appendingPathComponent("examples/fmnist-to-npz.py").path
        guard try ArrayFixtures.numpy("""
            import runpy
            sys.argv = ['fmnist-to-npz.py', 'data', '--limit', '320']
            runpy.run_path('\(script)', run_name='__main__')
            """, in: dir) else { return }
        var npz = try JobConfig.load(file: TestPaths.repository.appendingPathComponent("examples/fmnist-cnn-npz.yaml").path)
        XCTAssertEqual(npz.dataset.format, .npz)
        XCTAssertEqual(npz.dataset.normalization, PixelNormalization(mean: [0.286], std: [0.353]))
        npz.dataset.train = file("data/fmnist-train.npz")
        npz.dataset.test = file("data/fmnist-test.npz")
        (npz.steps, npz.batchSize, npz.report, npz.saveDir) = (6, 64, false, file("npz-run"))
        var idx = npz
        idx.dataset.format = .idx
        (idx.dataset.limitTrain, idx.dataset.limitTest, idx.saveDir) = (320, 320, file("idx-run"))
        let log = Logger(quiet: true)
        let a = try TrainJob.run(npz, communicator: SingleProcessCommunicator(), log: log)
        let b = try TrainJob.run(idx, communicator: SingleProcessCommunicator(), log: log)
        XCTAssertEqual(a.summary.testAccuracy, b.summary.testAccuracy)
        XCTAssertEqual(a.model.stateDict(), b.model.stateDict(), "bit for bit the IDX run")
    }
}
