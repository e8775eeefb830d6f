import ECTensor

extension NamedTensors {
    /// Checks these (loaded) tensors against the shapes a model expects, by name.
    ///
    /// Names are visited in canonical (sorted) order and the first problem is thrown:
    /// `missingTensor` when the model expects a name these tensors lack, `unexpectedTensor`
    /// when these tensors hold a name the model does not expect (unless `allowUnexpected`),
    /// `shapeMismatch` when both have the name with different shapes —
    /// `"conv2/weight: checkpoint has shape [64,32,3,3], model expects [48,32,3,3]"`.
    ///
    /// - Parameters:
    ///   - expected: the model's tensor shapes by scope path (`conv1/weight`).
    ///   - allowUnexpected: accept tensors the model does not expect (e.g. loading a backbone).
    ///   - file: the checkpoint file, appended to messages when not empty.
    public func validateShapes(_ expected: [String: [Int]], allowUnexpected: Bool = false, file: String = "") throws {
        for name in Set(expected.keys).union(names).sorted() {
            switch (self[name]?.shape, expected[name]) {
            case (nil, _?):
                throw CheckpointError.missingTensor(file: file, tensor: name)
            case (_?, nil):
                if !allowUnexpected { throw CheckpointError.unexpectedTensor(file: file, tensor: name) }
            case let (actual?, wanted?) where actual != wanted:
                throw CheckpointError.shapeMismatch(file: file, tensor: name, checkpointShape: actual,
                                                    expectedShape: wanted)
            default:
                break
            }
        }
    }
}
