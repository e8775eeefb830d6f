import ArgumentParser
import EasyCompression
import Foundation

/// `easycompress`: argument parsing only; each subcommand calls one library function.
struct EasyCompress: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "easycompress",
        abstract: "Train neural networks while compressing them, on one process or many MPI ranks.",
        discussion: """
        Examples:
          easycompress train --config examples/fmnist-cnn.yaml
          launch/run -n 2 examples/fmnist-cnn.yaml      # the same job on 2 MPI ranks
          easycompress eval --config examples/fmnist-cnn.yaml \\
              --checkpoint runs/fmnist-cnn
          easycompress train --config examples/fmnist-cnn-prune.yaml   # prune 50%
          easycompress finetune --from runs/fmnist-cnn-pruned \\
              --config examples/fmnist-cnn-finetune.yaml
          easycompress export --format onnx --from runs/fmnist-cnn \\
              --config examples/fmnist-cnn.yaml --out fmnist-cnn.onnx
          easycompress inspect runs/fmnist-cnn-pruned   # per tensor
          easycompress report runs/fmnist-cnn-pruned    # → DIR/report.html
        See docs/getting-started.md.
        """,
        version: (["easycompress (EasyCompression for Swift)"] + SystemReport.lines).joined(separator: "\n"),
        subcommands: [Train.self, Finetune.self, Eval.self, Export.self, Inspect.self, Report.self])

    /// The subcommands' names, for "did you mean".
    static var commandNames: [String] { configuration.subcommands.map { $0._commandName } + ["help"] }
}

struct Train: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Train a model described by a YAML/JSON job file.",
        discussion: """
        Writes save_dir/summary.json, metrics.jsonl, config.json, checkpoints/ and \
        report.html (unless the job says report: false). Job keys: docs/training.md.

        Examples:
          easycompress train --config job.yaml
          easycompress train --config job.yaml --debug     # cross-rank checks
          easycompress train --config job.yaml --resume    # from the last checkpoint
          easycompress train --config job.yaml --overwrite # replace the run in save_dir
          mpirun -np 2 easycompress train --config job.yaml
        """)

    @Option(name: .long, help: "Job file (YAML or JSON).")
    var config: String

    @Flag(name: .long, help: "Check every 10 steps that all ranks hold identical parameters.")
    var debug = false

    @Flag(name: .long, help: "Continue from the newest checkpoint in save_dir (weights, optimizer, step, data position); the job key `resume: true` does the same.")
    var resume = false

    @Flag(name: .long, help: "Replace the run save_dir already holds (its checkpoints, metrics, summary, config, report); without --resume or --overwrite such a save_dir is refused.")
    var overwrite = false

    @Flag(name: .long, help: "Print nothing but errors.")
    var quiet = false

    func run() throws {
        try runJob(quiet: quiet) { world, log in
            var job = try JobConfig.load(file: config)
            if debug && job.debugCheckEvery == 0 { job.debugCheckEvery = 10 }
            _ = try TrainJob.run(job, communicator: world, log: log, resume: resume || job.resume, overwrite: overwrite)
        }
    }
}

struct Finetune: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Extract the physically smaller model from a pruned save_dir (GapFinetune) and fine-tune it.",
        discussion: """
        Prints parameters, FLOPs, test accuracy and inference speed before and after.

        Examples:
          easycompress finetune --from runs/fmnist-cnn-pruned \\
              --config examples/fmnist-cnn-finetune.yaml
          launch/run -n 2 -- .build/release/easycompress finetune \\
              --from runs/pruned --config job.yaml
        """)

    @Option(name: .long, help: "The save_dir of a pruning job.")
    var from: String

    @Option(name: .long, help: "Job file (YAML or JSON): model (the pruned one), data, optimizer, length, save_dir.")
    var config: String

    @Flag(name: .long, help: "Continue from the newest checkpoint in the job's save_dir.")
    var resume = false

    @Flag(name: .long, help: "Replace the run the job's save_dir already holds; without --resume or --overwrite such a save_dir is refused.")
    var overwrite = false

    @Flag(name: .long, help: "Print nothing but errors.")
    var quiet = false

    func run() throws {
        try runJob(quiet: quiet) { world, log in
            let job = try JobConfig.load(file: config)
            _ = try FinetuneJob.run(job, from: from, communicator: world, log: log, resume: resume || job.resume,
                                    overwrite: overwrite)
        }
    }
}

struct Eval: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Evaluate the weights of a checkpoint (or save_dir) on the job's test set.",
        discussion: """
        Examples:
          easycompress eval --config job.yaml --checkpoint runs/job
          easycompress eval --config job.yaml --checkpoint runs/job/checkpoints/step-00002814
          easycompress eval --config imported.yaml      # model: {onnx: FILE}: the file's own weights
        """)

    @Option(name: .long, help: "Job file (YAML or JSON) naming the model and dataset.")
    var config: String

    @Option(name: .long, help: "Checkpoint directory, save_dir, or .safetensors weights file (default: an imported model's own weights, else the job's save_dir).")
    var checkpoint: String?

    @Flag(name: .long, help: "Print the result as JSON on stdout.")
    var json = false

    func run() throws {
        try runJob(quiet: false) { world, log in
            let job = try JobConfig.load(file: config)
            let result = try EvalJob.run(job, weights: checkpoint, communicator: world, log: log)
            if world.isChief {
                if json {
                    let data = try JSONEncoder().encode(result)
                    print(String(decoding: data, as: UTF8.self))
                } else {
                    print(String(format: "test accuracy %.4f, test loss %.4f (%d samples)", result.accuracy, result.loss, result.samples))
                }
            }
        }
    }
}

struct Export: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Export a run as ONNX, int8 weights + scales, or block-sparse (BSR) kernels.",
        discussion: """
        onnx: FP32 runs as they are, pruning runs as the extracted (physically \
        smaller) model, fine-tuned extracted models, and quantization-aware \
        training runs as QDQ (int8 initializers, QuantizeLinear/DequantizeLinear \
        on activations), opset 13, input NHWC. int8: real int8 weights and \
        scales (Winograd-domain codes for int8_winograd layers); also runs the \
        integer path on the test set. bsr: a sparsity run's kernels in BSR form. \
        Each prints the test accuracy of what was exported.

        Without --config, the job is read from the run's own record, \
        <from>/config.json.

        Examples:
          easycompress export --format onnx --from runs/fmnist-cnn \\
              --out runs/fmnist-cnn.onnx
          easycompress export --format onnx --from runs/fmnist-cnn \\
              --config examples/fmnist-cnn.yaml --out runs/fmnist-cnn.onnx
          easycompress export --format int8 --from runs/fmnist-cnn-qat \\
              --config examples/fmnist-cnn-qat.yaml \\
              --out runs/fmnist-cnn-qat/int8.safetensors
          easycompress export --format bsr --from runs/fmnist-cnn-sparse \\
              --config examples/fmnist-cnn-sparse.yaml \\
              --out runs/fmnist-cnn-sparse/bsr.safetensors
        """)

    @Option(name: .long, help: "Export format: int8 (weights + scales for the engine), onnx (FP32, pruned or QDQ), bsr (block-sparse kernels).")
    var format: ExportJob.Format

    @Option(name: .long, help: "The save_dir of the job (training, pruning, fine-tuning, quantization-aware or sparsity).")
    var from: String

    @Option(name: .long, help: "That job's file (model, data; for QDQ/int8 the quantizer's plan); default: the job the run recorded, <from>/config.json.")
    var config: String?

    @Option(name: .long, help: "The file to write.")
    var out: String

    func run() throws {
        try runJob(quiet: false) { _, log in
            let job = try config.map { try JobConfig.load(file: $0) } ?? JobConfig.load(savedIn: from)
            switch format {
            case .int8: _ = try ExportJob.runInt8(job, from: from, output: out, log: log)
            case .onnx: _ = try ExportJob.runONNX(job, from: from, output: out, log: log)
            case .bsr: _ = try ExportJob.runBlockSparse(job, from: from, output: out, log: log)
            }
        }
    }
}

struct Report: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Write DIR/report.html: a training run's curves, per-layer compression and before/after figures.",
        discussion: """
        One self-contained HTML file (inline SVG, no script, no network), drawn \
        from the save_dir's summary.json, metrics.jsonl and config.json. train and \
        finetune write it at the end of every run unless the job says report: false.

        Examples:
          easycompress report runs/fmnist-cnn-pruned
          chromium --headless --screenshot=report.png --window-size=900,3000 \\
              runs/fmnist-cnn-pruned/report.html
        """)

    @Argument(help: "The save_dir of a training or finetune run.")
    var dir: String

    func run() throws {
        do {
            print(try RunReport(saveDir: URL(fileURLWithPath: dir)).write().path)
        } catch {
            FileHandle.standardError.write(Data("error: \(error)\n".utf8))
            throw ExitCode(1)
        }
    }
}

struct Inspect: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Print what a checkpoint, save_dir or .safetensors file holds, per tensor.",
        discussion: """
        Shape, dtype, elements and sparsity (fraction of exact zeros) of every tensor; channels kept
        when a pruner part exists, bit widths and step sizes when a quantizer part exists; totals.
        Examples:
          easycompress inspect runs/fmnist-cnn-pruned
          easycompress inspect runs/fmnist-cnn-qat/checkpoints/step-00000938 --json
          easycompress inspect runs/fmnist-cnn-qat/int8.safetensors
        """)

    @Argument(help: "A checkpoint directory, a save_dir (its newest checkpoint) or a .safetensors file.")
    var path: String

    @Flag(name: .long, help: "Print JSON instead of a table.")
    var json = false

    func run() throws {
        do {
            let inspection = try CheckpointInspection.read(path)
            if json {
                let encoder = JSONEncoder()
                encoder.outputFormatting = [.sortedKeys, .prettyPrinted]
                print(String(decoding: try encoder.encode(inspection), as: UTF8.self))
            } else {
                print(inspection.table)
            }
        } catch {
            FileHandle.standardError.write(Data("error: \(error)\n".utf8))
            throw ExitCode(1)
        }
    }
}

/// Runs `body` with the MPI world (or a world of one), turning errors into a clear message and
/// a non-zero exit; in a multi-rank job an error on any rank aborts the whole job.
func runJob(quiet: Bool, _ body: (Communicator, Logger) throws -> Void) throws {
    let world: Communicator
    do {
        world = try World.current()
    } catch {
        FileHandle.standardError.write(Data("error: \(error)\n".utf8))
        throw ExitCode(1)
    }
    let log = Logger(rank: world.rank, worldSize: world.size, quiet: quiet)
    if let note = BLASCoreSelection.note { log.info(note) }  // the chief, once
    do {
        try body(world, log)
        try (world as? MPICommunicator)?.finalize()
    } catch {
        if world.size > 1 { failJob(error, comm: world) }
        log.error("\(error)")
        throw ExitCode(error is ConfigError ? 2 : 1)
    }
}

extension ExportJob.Format: ExpressibleByArgument {}

/// A first argument that is neither an option nor a subcommand: a usage error with the closest
/// subcommand suggested (`easycompress trian` → "did you mean 'train'?"), exit 64 as the
/// argument parser's other usage errors.
func refuseUnknownCommand(_ arguments: [String]) {
    guard let first = arguments.first, !first.hasPrefix("-"), !EasyCompress.commandNames.contains(first) else { return }
    let suggestion = ConfigNode.closest(to: first, in: EasyCompress.commandNames).map { " (did you mean '\($0)'?)" } ?? ""
    let commands = EasyCompress.commandNames.filter { $0 != "help" }.joined(separator: ", ")
    FileHandle.standardError.write(Data(("error: unknown command '\(first)'\(suggestion)\n"
                                         + "commands: \(commands); see 'easycompress --help'\n").utf8))
    exit(64)
}

// Before anything else — MPI above all: with a generic OpenBLAS core on an AVX2/AVX-512 CPU
// this re-executes the process with the right OPENBLAS_CORETYPE (every rank does, itself).
BLASCoreSelection.ensureSuitableCore()
refuseUnknownCommand(Array(CommandLine.arguments.dropFirst()))
EasyCompress.main()
