import ECTensor
import Foundation

/// A loaded, verified checkpoint: the model tensors, the extra entries saved beside them
/// (masks, int8 weights, optimizer state of other dtypes) and the caller's JSON state.
public struct Checkpoint {
    /// The training step the checkpoint was saved at.
    public let step: Int
    /// The checkpoint's directory.
    public let url: URL
    /// The Float32 tensors passed to `CheckpointStore.save` as `tensors`.
    public let tensors: NamedTensors
    /// The entries passed to `CheckpointStore.save` as `extraEntries`.
    public let extraEntries: [String: SafeTensorsEntry]
    /// The bytes passed to `CheckpointStore.save` as `state` (the caller's JSON).
    public let state: Data

    /// A checkpoint from its parts (`CheckpointStore.load` builds these).
    public init(step: Int, url: URL, tensors: NamedTensors, extraEntries: [String: SafeTensorsEntry], state: Data) {
        self.step = step
        self.url = url
        self.tensors = tensors
        self.extraEntries = extraEntries
        self.state = state
    }

    /// The path of the checkpoint's safetensors file, as named in errors.
    public var tensorsPath: String { url.appendingPathComponent(CheckpointManifest.tensorsFileName).path }

    /// Checks that the tensors have the shapes a model expects (see
    /// `NamedTensors.validateShapes(_:allowUnexpected:file:)`); errors name this checkpoint.
    public func validateShapes(_ expected: [String: [Int]], allowUnexpected: Bool = false) throws {
        try tensors.validateShapes(expected, allowUnexpected: allowUnexpected, file: tensorsPath)
    }
}
