import ECNN
import ECTensor

/// The checkpoint layout every optimizer shares (see `Optimizer`): naming, the exact step
/// encoding, and the validation of imported state. A slot table maps parameter name → tensor.
enum OptimizerState {
    static let prefix = "optimizer/"
    static let stepName = "optimizer/step"
    /// The step count is stored as [high, low] with step = high·radix + low; every integer
    /// below 2^24 is exact in Float32.
    static let stepRadix = 1 << 24

    static func slotName(parameter: String, slot: String) -> String {
        "\(prefix)\(parameter)/\(slot)"
    }

    /// The slot of `parameter` in `table`, created as zeros on first use.
    /// - Precondition: an existing slot has the parameter's shape, and so has its gradient.
    static func ensureSlot(_ table: inout [String: Tensor], for parameter: Parameter, slot: String) {
        precondition(parameter.grad.shape == parameter.value.shape,
                     "\(parameter.name): gradient \(parameter.grad.shape) vs value \(parameter.value.shape)")
        if let existing = table[parameter.name] {
            precondition(existing.shape == parameter.value.shape,
                         "\(slotName(parameter: parameter.name, slot: slot)): state \(existing.shape) "
                             + "vs parameter \(parameter.value.shape)")
        } else {
            table[parameter.name] = Tensor(shape: parameter.value.shape, repeating: 0)
        }
    }

    static func export(stepCount: Int, slots: [(name: String, table: [String: Tensor])]) -> NamedTensors {
        var out = NamedTensors()
        out[stepName] = Tensor(shape: [2], scalars: [Float(stepCount / stepRadix), Float(stepCount % stepRadix)])
        for (slot, table) in slots {
            for (parameter, tensor) in table { out[slotName(parameter: parameter, slot: slot)] = tensor }
        }
        return out
    }

    /// Validates `state` against `parameters` and returns the step count and one table per
    /// entry of `slotNames` (in that order). Entries outside `optimizer/` are ignored.
    static func decode(_ state: NamedTensors, slotNames: [String], optimizerName: String,
                       parameters: [Parameter]) throws -> (stepCount: Int, tables: [[String: Tensor]]) {
        let stepCount = try decodeStep(state)
        var trainable: [String: [Int]] = [:]
        for p in parameters where p.isTrainable { trainable[p.name] = p.value.shape }

        var tables = [[String: Tensor]](repeating: [:], count: slotNames.count)
        for (name, tensor) in state.sorted where name.hasPrefix(prefix) && name != stepName {
            let path = name.dropFirst(prefix.count)
            guard let cut = path.lastIndex(of: "/"), cut != path.startIndex else {
                throw OptimizerError.unexpectedState(
                    name: name, reason: "expected \(prefix)<parameter>/<slot> or \(stepName)")
            }
            let parameter = String(path[..<cut]), slot = String(path[path.index(after: cut)...])
            guard let slotIndex = slotNames.firstIndex(of: slot) else {
                let known = slotNames.isEmpty ? "none" : slotNames.joined(separator: ", ")
                throw OptimizerError.unexpectedState(
                    name: name, reason: "\(optimizerName) keeps no slot '\(slot)' (its slots: \(known))")
            }
            guard let shape = trainable[parameter] else {
                throw OptimizerError.unexpectedState(
                    name: name, reason: "the model has no trainable parameter '\(parameter)'")
            }
            guard tensor.shape == shape else {
                throw OptimizerError.shapeMismatch(name: name, checkpointShape: tensor.shape, expectedShape: shape)
            }
            tables[slotIndex][parameter] = tensor
        }

        // Before the first step no slot exists yet; after it, every trainable parameter has all.
        if stepCount > 0 {
            for (parameter, shape) in trainable.sorted(by: { $0.key < $1.key }) {
                for (slotIndex, slot) in slotNames.enumerated() where tables[slotIndex][parameter] == nil {
                    throw OptimizerError.missingState(name: slotName(parameter: parameter, slot: slot),
                                                      expectedShape: shape)
                }
            }
        }
        return (stepCount, tables)
    }

    private static func decodeStep(_ state: NamedTensors) throws -> Int {
        guard let tensor = state[stepName] else {
            throw OptimizerError.missingState(name: stepName, expectedShape: [2])
        }
        guard tensor.shape == [2] else {
            throw OptimizerError.shapeMismatch(name: stepName, checkpointShape: tensor.shape, expectedShape: [2])
        }
        let values = tensor.scalars
        let radix = Float(stepRadix)
        for v in values where !(v >= 0 && v < radix && v.rounded() == v) {
            throw OptimizerError.invalidStepCount(name: stepName, values: values)
        }
        return Int(values[0]) * stepRadix + Int(values[1])
    }
}
