import Foundation

extension JobConfig {
    /// The job a run recorded in its save_dir (`save_dir/config.json`, written by `train` and
    /// `finetune` once their checks pass): what `export` uses when no `--config` is given.
    ///
    /// Paths inside it (`dataset.path`, `init_from`, `model.onnx`) are as the job gave them, so
    /// relative ones resolve against the current directory, as when the job ran from there.
    ///
    /// - Throws: `ConfigError.unreadable` naming the file and saying to pass `--config` when
    ///   the save_dir has none (a run of an older version, or not a save_dir); the parser's
    ///   errors for a file that no longer parses.
    public static func load(savedIn saveDir: String) throws -> JobConfig {
        let file = URL(fileURLWithPath: saveDir).appendingPathComponent("config.json").path
        guard FileManager.default.fileExists(atPath: file) else {
            throw ConfigError.unreadable(file: file, reason: "\(saveDir) has no config.json (is it the save_dir of a "
                                         + "train or finetune run?); hint: give the job file with --config")
        }
        return try load(file: file)
    }
}
