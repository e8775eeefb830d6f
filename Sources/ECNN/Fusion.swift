import ECTensor

/// A layer whose output activation can be fused into its own op (GEMM epilogue).
public protocol ActivationFusable: Module {
    func forward(_ x: Variable, _ ctx: ForwardContext, activation: Activation) -> Variable
}

extension Conv2D: ActivationFusable {}
extension Dense: ActivationFusable {}

/// The engine's one fusion rule, asked by everything that runs or writes a graph — the engine
/// (`Graph.forward`), the ONNX exporter and the int8 model — so they cannot drift apart:
///
/// - ReLU → MaxPool fuses into the pooling op (`maxPool(relu(x)) = max(0, maxPool(x))`, the
///   ReLU on the smaller pooled output);
/// - Conv2D/Dense → ReLU fuses into the layer's epilogue, unless the ReLU is then pooled (the
///   pooling fusion is cheaper: it touches the pooled output only);
/// - everything else runs alone.
///
/// A pair fuses only when the first node's output has that one reader and is not the graph's
/// output (nothing else may see the unfused value). Same results as running the nodes one by
/// one, fewer passes over memory and fewer tensors. (Conv2D → ReLU → MaxPool is therefore
/// `.node(conv)`, `.reluMaxPool`; the int8 path pools its integer sums there — see `Int8Model`.)
public enum Fusion {
    /// The fused steps of `graph`, in its node order.
    public static func plan(_ graph: Graph) -> [GraphStep] {
        let nodes = graph.nodes
        /// The node that alone reads node `i`'s single output, if any.
        func soleReader(of i: Int) -> Int? {
            guard nodes[i].outputs.count == 1 else { return nil }
            let v = nodes[i].outputs[0]
            guard v != graph.output, graph.consumers[v].count == 1 else { return nil }
            return graph.consumers[v][0]
        }
        func isReLU(_ i: Int) -> Bool { nodes[i].op.layer is ReLU }
        func isFusablePool(_ i: Int) -> Bool { (nodes[i].op.layer as? MaxPool)?.fusesReLU == true }

        var steps: [GraphStep] = []
        var done = Set<Int>()
        for i in nodes.indices where !done.contains(i) {
            if isReLU(i), let pool = soleReader(of: i), isFusablePool(pool) {
                steps.append(.reluMaxPool(relu: i, pool: pool))
                done.formUnion([i, pool])
            } else if nodes[i].op.layer is ActivationFusable, let relu = soleReader(of: i), isReLU(relu),
                      !(soleReader(of: relu).map(isFusablePool) ?? false) {
                steps.append(.weightReLU(i, relu: relu))
                done.formUnion([i, relu])
            } else {
                steps.append(.node(i))
                done.insert(i)
            }
        }
        return steps
    }

    /// The batch norms that fold into the Conv2D/Dense before them in inference: weight node →
    /// batch-norm node, for a weight layer whose output only that batch norm reads (and is not
    /// the graph's output). Folding (`BatchNorm.fold`) is exact up to rounding in inference
    /// mode; training needs the batch statistics, so the engine's training never folds.
    public static func foldableBatchNorms(_ graph: Graph) -> [Int: Int] {
        var folds: [Int: Int] = [:]
        for (i, node) in graph.nodes.enumerated() where node.op.layer is Conv2D || node.op.layer is Dense {
            let v = node.outputs[0]
            guard v != graph.output, graph.consumers[v].count == 1 else { continue }
            let reader = graph.consumers[v][0]
            if graph.nodes[reader].op.layer is BatchNorm { folds[i] = reader }
        }
        return folds
    }
}
