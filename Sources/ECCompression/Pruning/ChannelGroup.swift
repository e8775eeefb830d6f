import ECTensor

/// Which elements of one parameter belong to which channel of a `ChannelGroup`.
///
/// Element `e` (row-major flat index) of the parameter sits on channel `(e / innerStride) %
/// period` of the parameter's channel axis; the group's channel c is axis channel
/// `offset + c` (`offset` is 0 except where a concatenation puts several groups side by side on
/// one axis). This one rule covers every place a channel lives:
///
/// | parameter | role | innerStride | period |
/// |---|---|---|---|
/// | Conv2D kernel `[kh, kw, cin, cout]`, output channel | producer | 1 | cout |
/// | Dense kernel `[in, out]`, output unit | producer | 1 | out |
/// | bias, batch-norm gamma/beta/moving statistics `[c]` | producer | 1 | c |
/// | Conv2D kernel, input channel (a consumer) | consumer | cout | cin |
/// | Dense kernel after a Flatten of `[H, W, C]` (rows in H, W, C order) | consumer | out | C |
/// | Dense kernel, input unit (no flatten) | consumer | out | in |
/// | depthwise Conv2D kernel `[kh, kw, 1, C]`, its bias | producer (follows its input) | 1 | C |
/// | per-channel constant `[…, C]` an Add/Mul applies | producer (follows) | 1 | C |
/// | a consumer of a concatenation, the part from this group | consumer | as above | C_total, offset = where it starts |
/// | a grouped convolution `[kh, kw, cin/G, cout]`, input channel of its group | consumer | cout | cin/G |
///
/// Grouped convolutions tie channels *within* an axis: all G groups must keep the same number
/// of channels, so pruning channel j of group 0 prunes channel j of every group. Such a space
/// is folded: the group has W/F channels for an axis segment of W, and group channel c lies at
/// axis channels `offset + c + k·copyStride` for k in 0..<copies (copyStride = the group's
/// channel count). An unfolded slice has one copy.
public struct ChannelSlice: Equatable, Sendable {
    public enum Role: String, Sendable { case producer, consumer }
    /// The parameter's scope path, e.g. `conv2/weight`.
    public let parameter: String
    public let role: Role
    public let innerStride: Int
    /// The length of the parameter's channel axis.
    public let period: Int
    /// The axis channel of the group's channel 0.
    public let offset: Int
    /// How many axis channels each group channel stands for (folded spaces; 1 otherwise), and
    /// the distance between them on the axis (the group's channel count; 0 with one copy).
    public let copies: Int
    public let copyStride: Int

    public init(parameter: String, role: Role, innerStride: Int, period: Int, offset: Int = 0, copies: Int = 1,
                copyStride: Int = 0) {
        precondition(innerStride > 0 && period > 0 && offset >= 0,
                     "\(parameter): stride \(innerStride), period \(period) and offset \(offset) must be > 0 (offset ≥ 0)")
        precondition(copies == 1 || (copies > 1 && copyStride > 0 && offset + copies * copyStride <= period),
                     "\(parameter): \(copies) copies \(copyStride) apart from \(offset) do not fit a period of \(period)")
        self.copies = copies
        self.copyStride = copies > 1 ? copyStride : 0
        self.parameter = parameter
        self.role = role
        self.innerStride = innerStride
        self.period = period
        self.offset = offset
    }

    /// The group channel element `e` belongs to (outside `0..<channels` when it belongs to
    /// another group's part of the axis).
    @inline(__always)
    public func channel(ofElement e: Int) -> Int {
        let a = (e / innerStride) % period - offset
        return copies == 1 || a < 0 || a >= copies * copyStride ? a : a % copyStride
    }

    /// The axis channels of group channel `c`.
    @inline(__always)
    func axisChannels(of c: Int) -> StrideTo<Int> {
        Swift.stride(from: offset + c, to: offset + c + copies * max(1, copyStride), by: max(1, copyStride))
    }
}

/// A set of channels that must be pruned together: the output channels of one Conv2D/Dense
/// layer, or of several layers tied by the graph (the body and shortcut of a residual block
/// and every block that adds onto the same stream). Channel `c` of the group is channel `c` of
/// every slice.
public struct ChannelGroup: Equatable, Sendable {
    /// A stable name: the producers' scopes joined by "+" in name order (`conv1`,
    /// `block1/conv2+stem`).
    public let id: String
    /// Number of channels (the producers' output width).
    public let channels: Int
    /// Every parameter region a channel occupies (producers and consumers).
    public let slices: [ChannelSlice]
    /// The producing layers' kernel parameters (`conv1/weight`), whose weights and gradients
    /// give the importance.
    public let producers: [String]
    /// False when the group may not be pruned (it holds the classifier's outputs, or a scope
    /// is excluded, or its op type is not prunable).
    public let prunable: Bool
    /// How many output channels of each producer one channel of the group stands for: 1, or
    /// G when grouped convolutions fold the group (`ChannelSlice.copies`).
    public var outputChannelsPerChannel: Int {
        slices.first { $0.role == .producer && producers.contains($0.parameter) }?.copies ?? 1
    }

    /// True when the group's channels are a part of a wider axis, beside other groups' (a
    /// concatenation's input: some slice starts past the axis's start or ends before its end).
    public var isConcatenationPart: Bool {
        slices.contains { $0.offset > 0 || $0.offset + channels * $0.copies < $0.period }
    }

    /// Parameters removed from the extracted model per pruned channel, over the slices of
    /// prunable layers' kernels and biases (producers and consumers alike).
    public let parametersPerChannel: Int
    /// Forward FLOPs per sample removed per pruned channel (multiply-adds × 2).
    public let flopsPerChannel: Int

    public init(id: String, channels: Int, slices: [ChannelSlice], producers: [String], prunable: Bool,
                parametersPerChannel: Int, flopsPerChannel: Int) {
        self.id = id
        self.channels = channels
        self.slices = slices
        self.producers = producers
        self.prunable = prunable
        self.parametersPerChannel = parametersPerChannel
        self.flopsPerChannel = flopsPerChannel
    }
}
