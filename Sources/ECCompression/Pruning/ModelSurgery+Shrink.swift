import ECNN
import ECTensor

extension ModelSurgery {
    /// Builds the physically smaller model (GapFinetune): the same layers, names and order as
    /// `model`, with every pruned channel removed and the surviving weights copied.
    ///
    /// Conv2D output/input channels (a depthwise convolution's groups with them), Dense
    /// outputs/inputs, BatchNorm channels and per-channel constants shrink to the kept counts;
    /// a Dense after a Flatten of `[H, W, C]` keeps the rows of the kept channels, still in
    /// H, W, C order (`H·W·C'` rows); a concatenation joins its smaller inputs. Biases and batch-norm statistics are copied
    /// too, so in inference mode the result computes exactly what the masked large model
    /// (`applyMasks`) computes. `model` is not modified and shares no parameter with the result.
    ///
    /// Every kept element keeps its relative order, so each new tensor is the row-major list
    /// of the elements its `parameterMasks` mask keeps, reshaped to the reduced shape.
    ///
    /// - Parameters:
    ///   - groups: `ChannelGroups.build(model:…)` of this model.
    ///   - keep: channel flags per group id (see the type's preconditions).
    public static func shrink(model: Model, groups: [ChannelGroup], keep: [String: [Bool]]) -> Model {
        var plan = ShrinkPlan(masks: parameterMasks(model: model, groups: groups, keep: keep))
        for (group, flags) in decisions(groups: groups, keep: keep) {
            let pruned = flags.filter { !$0 }.count
            for slice in group.slices {
                // Several groups may share one axis (the parts of a concatenation).
                let key = SliceKey(slice), before = plan.keptChannels[key] ?? (slice.period, slice.period)
                plan.keptChannels[key] = (before.kept - pruned * slice.copies, slice.period)
            }
        }
        do {
            let graph = try model.graph.mapLayers({ plan.rebuild($0) }, constant: { plan.rebuild(constant: $0) })
            return Model(name: model.name, graph: graph, interface: model.interface)
        } catch {
            preconditionFailure("\(model.name): the extracted layers do not fit together (\(error)); the groups do not describe this model")
        }
    }
}

/// A parameter and the role it plays in a slice.
private struct SliceKey: Hashable {
    let parameter: String
    let role: ChannelSlice.Role

    init(_ slice: ChannelSlice) { self.init(slice.parameter, slice.role) }
    init(_ parameter: String, _ role: ChannelSlice.Role) {
        self.parameter = parameter
        self.role = role
    }
}

/// What `shrink` needs while rebuilding: each parameter's element mask and, per parameter and
/// role, the number of channels kept out of its axis.
private struct ShrinkPlan {
    let masks: [String: Mask]
    var keptChannels: [SliceKey: (kept: Int, period: Int)] = [:]

    init(masks: [String: Mask]) { self.masks = masks }

    /// The module rebuilt at its reduced size, with the surviving values.
    mutating func rebuild(_ module: Module) -> Module {
        switch module {
        case let conv as Conv2D:
            let out = kept(conv.weight, .producer) ?? conv.outChannels
            // A depthwise convolution follows its input: one group per kept channel.
            let depthwise = conv.isDepthwise && conv.outChannels == conv.inChannels
            // A grouped convolution's consumer slice is its kernel's input axis, one group's
            // channels: every group keeps that many.
            let cin = depthwise ? out : kept(conv.weight, .consumer).map { $0 * conv.groups } ?? conv.inChannels
            let groups = depthwise ? out : conv.groups
            let new = Conv2D(name: conv.name, kernel: Tensor(shape: [conv.kernelHeight, conv.kernelWidth, cin / groups, out]),
                             bias: conv.bias.map { _ in Tensor(shape: [out]) }, stride: conv.stride, strideWidth: conv.strideWidth,
                             padding: conv.padding, pads: conv.pads, groups: groups)
            copy(conv.ownParameters, into: new.ownParameters)
            return new
        case let dense as Dense:
            let out = kept(dense.weight, .producer) ?? dense.outputs
            // A consumer slice of period C on `inputs = H·W·C` rows keeps H·W·C' of them.
            let inputs = keptChannels[SliceKey(dense.weight.name, .consumer)]
                .map { dense.inputs / $0.period * $0.kept } ?? dense.inputs
            let new = Dense(name: dense.name, weight: Tensor(shape: [inputs, out]), bias: dense.bias.map { _ in Tensor(shape: [out]) })
            copy(dense.ownParameters, into: new.ownParameters)
            return new
        case let bn as BatchNorm:
            let channels = kept(bn.gamma, .producer) ?? bn.channels
            let new = BatchNorm(name: bn.name, channels: channels, momentum: bn.momentum, epsilon: bn.epsilon)
            copy(bn.ownParameters, into: new.ownParameters)
            return new
        default:
            // Layers without parameters (activations, pooling, flatten) are shared as they are.
            precondition(module.ownParameters.isEmpty && module.children.isEmpty,
                         "\(module.name): ModelSurgery cannot rebuild a \(module.opType) with parameters")
            return module
        }
    }

    /// A per-channel constant (`[…, C]`) with its kept channels.
    func rebuild(constant p: Parameter) -> Parameter {
        guard let k = kept(p, .producer), let c = p.shape.last, c > 0 else {
            return Parameter(name: p.name, role: p.role, value: p.value)
        }
        let new = Parameter(name: p.name, role: p.role, value: Tensor(shape: Array(p.shape.dropLast()) + [k]))
        copy([p], into: [new])
        return new
    }

    private func kept(_ parameter: Parameter, _ role: ChannelSlice.Role) -> Int? {
        keptChannels[SliceKey(parameter.name, role)]?.kept
    }

    /// Copies each old parameter's kept elements into the new parameter of the same name.
    private func copy(_ old: [Parameter], into new: [Parameter]) {
        precondition(old.map(\.name) == new.map(\.name), "rebuilt parameters \(new.map(\.name)) ≠ \(old.map(\.name))")
        for (o, n) in zip(old, new) {
            guard let mask = masks[o.name] else {
                precondition(o.shape == n.shape, "\(o.name): unsliced parameter changed shape \(o.shape) → \(n.shape)")
                n.value = o.value
                continue
            }
            var scalars: [Float] = []
            scalars.reserveCapacity(n.value.count)
            mask.values.withUnsafeBufferPointer { flags in
                o.value.withUnsafeBufferPointer { v in
                    for i in 0..<v.count where flags[i] { scalars.append(v[i]) }
                }
            }
            precondition(scalars.count == n.value.count,
                         "\(o.name): \(scalars.count) kept elements for the new shape \(n.shape)")
            n.value = Tensor(shape: n.shape, scalars: scalars)
        }
    }
}
