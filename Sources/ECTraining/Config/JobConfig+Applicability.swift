/// Keys that are valid somewhere but mean nothing in the job at hand: an optimizer setting of
/// another optimizer (Adam's `momentum`, SGD's `beta1`) or a schedule setting of another
/// schedule (`step_size` with `cosine`). They would be silently ignored, so a job naming one
/// is refused with the reason (docs/training.md).
extension JobConfig {
    /// The longest training accepted, in steps or epochs: far beyond any real job, and small
    /// enough that step counts never overflow (`epochs × steps per epoch`).
    static let maxTrainingLength = 1_000_000_000

    /// Which optimizer (`optimizer.name`) each optimizer key applies to.
    static let optimizerKeyOwners: [String: [String]] = [
        "momentum": ["sgd"], "nesterov": ["sgd"],
        "beta1": ["adam", "adamw"], "beta2": ["adam", "adamw"], "epsilon": ["adam", "adamw"],
    ]

    /// Which schedule (`optimizer.schedule.name`) each schedule key applies to.
    static let scheduleKeyOwners: [String: [String]] = [
        "step_size": ["step"], "gamma": ["step"], "min_lr": ["cosine"],
    ]

    /// Throws for the first key of `node` (an `optimizer` or `optimizer.schedule` mapping) that
    /// does not apply to `name`, the optimizer or schedule the job chose.
    static func refuseInapplicableKeys(of node: ConfigNode, for name: String) throws {
        let isSchedule = node.path.hasSuffix("schedule")
        let owners = isSchedule ? scheduleKeyOwners : optimizerKeyOwners
        for key in node.keys where node.has(key) {
            guard let users = owners[key], !users.contains(name) else { continue }
            let what = isSchedule ? "schedule" : "optimizer"
            let alternatives = owners.filter { $0.value.contains(name) }.keys.sorted()
            let theirs = alternatives.isEmpty ? "" : " (\(name) has \(alternatives.joined(separator: ", ")))"
            throw ConfigError.invalid(
                path: node.keyPath(key),
                reason: "applies to the \(users.joined(separator: "/")) \(what) only, and this job's \(what) is "
                    + "\(name)\(theirs); hint: remove \(key), or set \(node.keyPath("name")): \(users[0])")
        }
    }
}
