import ECTensor

/// The window of a 2-D pooling layer: its size and strides per axis, explicit (possibly
/// asymmetric) pads and ONNX's `ceil_mode`.
public struct PoolWindow: Equatable, Sendable {
    public var kernelHeight, kernelWidth, strideHeight, strideWidth: Int
    public var pads: Padding2D
    public var ceilMode: Bool

    public init(kernelHeight: Int, kernelWidth: Int, strideHeight: Int, strideWidth: Int, pads: Padding2D = .zero,
                ceilMode: Bool = false) {
        (self.kernelHeight, self.kernelWidth, self.strideHeight, self.strideWidth) = (kernelHeight, kernelWidth, strideHeight, strideWidth)
        self.pads = pads
        self.ceilMode = ceilMode
    }

    /// A square `size × size` window with the same stride, no padding (TensorFlow's "valid").
    public init(size: Int, stride: Int) {
        self.init(kernelHeight: size, kernelWidth: size, strideHeight: stride, strideWidth: stride)
    }

    /// The square no-padding window of the fused 2×2-style fast path, if this is one.
    var square: (size: Int, stride: Int)? {
        kernelHeight == kernelWidth && strideHeight == strideWidth && pads.isZero && !ceilMode
            ? (kernelHeight, strideHeight) : nil
    }

    /// Why an NHWC input of shape `input` does not fit, nil when it does.
    func problem(_ input: [Int]) -> String? {
        guard input.count == 4 else { return "expects an NHWC feature map, got shape \(input)" }
        guard pads.top < kernelHeight && pads.bottom < kernelHeight && pads.left < kernelWidth && pads.right < kernelWidth else {
            return "pads \(pads) must be smaller than the \(kernelHeight)×\(kernelWidth) window"
        }
        if input[1] + pads.top + pads.bottom < kernelHeight || input[2] + pads.left + pads.right < kernelWidth {
            return "a \(kernelHeight)×\(kernelWidth) window does not fit a \(input[1])×\(input[2]) input"
        }
        return nil
    }

    func geometry(_ input: [Int]) -> Pool2DGeometry {
        Pool2DGeometry(input: input, kernelHeight: kernelHeight, kernelWidth: kernelWidth, strideHeight: strideHeight,
                       strideWidth: strideWidth, pads: pads, ceilMode: ceilMode)
    }
}

/// Max pooling (op type `MaxPool`); padded positions never win.
public final class MaxPool: Module {
    public let name: String
    public let opType = "MaxPool"
    public let window: PoolWindow

    public init(name: String, window: PoolWindow) {
        self.name = name
        self.window = window
    }

    /// A square window, TensorFlow's "valid" padding.
    public convenience init(name: String, size: Int = 2, stride: Int = 2) {
        self.init(name: name, window: PoolWindow(size: size, stride: stride))
    }

    /// The window size of a square window.
    public var size: Int { window.kernelHeight }
    /// The stride of a square window.
    public var stride: Int { window.strideHeight }

    public func forward(_ x: Variable, _ ctx: ForwardContext) -> Variable { forward(x, ctx, relu: false) }

    /// `maxPool(relu(x))` in one pass when `relu` (`Fusion`; only where `fusesReLU`).
    public func forward(_ x: Variable, _ ctx: ForwardContext, relu: Bool) -> Variable {
        if let (size, stride) = window.square { return x.maxPool2d(size: size, stride: stride, relu: relu) }
        precondition(!relu, "\(name): a ReLU fuses into square unpadded max pooling only")
        let w = window
        return x.maxPool2d(kernelHeight: w.kernelHeight, kernelWidth: w.kernelWidth, strideHeight: w.strideHeight,
                           strideWidth: w.strideWidth, pads: w.pads, ceilMode: w.ceilMode)
    }

    /// Whether a ReLU before this pooling can run inside it (`Fusion`).
    public var fusesReLU: Bool { window.square != nil }

    public func inputProblem(_ input: [Int]) -> String? { window.problem(input) }

    public func outputShape(for input: [Int]) -> [Int] {
        let g = window.geometry(input)
        return [g.batch, g.outHeight, g.outWidth, g.channels]
    }
}

/// Average pooling (op type `AvgPool`); with `countIncludePad` a window inside the padding
/// divides by its full size, else by the real input positions it covers.
public final class AvgPool: Module {
    public let name: String
    public let opType = "AvgPool"
    public let window: PoolWindow
    public let countIncludePad: Bool

    public init(name: String, window: PoolWindow, countIncludePad: Bool = false) {
        self.name = name
        self.window = window
        self.countIncludePad = countIncludePad
    }

    public func forward(_ x: Variable, _ ctx: ForwardContext) -> Variable {
        let w = window
        return x.avgPool2d(kernelHeight: w.kernelHeight, kernelWidth: w.kernelWidth, strideHeight: w.strideHeight,
                           strideWidth: w.strideWidth, pads: w.pads, ceilMode: w.ceilMode, countIncludePad: countIncludePad)
    }

    public func inputProblem(_ input: [Int]) -> String? { window.problem(input) }

    public func outputShape(for input: [Int]) -> [Int] {
        let g = window.geometry(input)
        return [g.batch, g.outHeight, g.outWidth, g.channels]
    }
}
