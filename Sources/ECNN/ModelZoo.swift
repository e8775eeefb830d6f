import ECTensor

/// Built-in models for 28×28×1 images and 10 classes (Fashion-MNIST / MNIST), built as graphs
/// like every model.
public enum ModelZoo {
    public static let names = ["mlp", "lenet5", "fmnist-cnn", "resnet-mini"]

    /// Builds the zoo model `name` with parameters drawn from `seed`; nil for an unknown name.
    public static func make(_ name: String, seed: UInt64, inputShape: [Int] = [28, 28, 1], classes: Int = 10) -> Model? {
        var rng = RNG(seed: seed)
        do {
            switch name {
            case "mlp": return try mlp(&rng, inputShape, classes)
            case "lenet5": return try lenet5(&rng, inputShape, classes)
            case "fmnist-cnn": return try fmnistCNN(&rng, inputShape, classes)
            case "resnet-mini": return try resnetMini(&rng, inputShape, classes)
            default: return nil
            }
        } catch {
            preconditionFailure("zoo model \(name) for input \(inputShape): \(error)")
        }
    }

    /// A model running `layers` one after another.
    static func chain(_ name: String, _ layers: [Module], _ input: [Int]) throws -> Model {
        Model(name: name, graph: try Graph.chain(layers, inputShape: input))
    }

    /// 784-300-100-10 multilayer perceptron with ReLU.
    static func mlp(_ rng: inout RNG, _ input: [Int], _ classes: Int) throws -> Model {
        let n = input.reduce(1, *)
        return try chain("mlp", [
            Flatten(name: "flatten"),
            Dense(name: "fc1", inputs: n, outputs: 300, rng: &rng), ReLU(name: "fc1/relu"),
            Dense(name: "fc2", inputs: 300, outputs: 100, rng: &rng), ReLU(name: "fc2/relu"),
            Dense(name: "fc3", inputs: 100, outputs: classes, rng: &rng),
        ], input)
    }

    /// LeNet-5 style: conv 5×5 6 (same) → pool → conv 5×5 16 (valid) → pool → 120 → 84 → classes.
    static func lenet5(_ rng: inout RNG, _ input: [Int], _ classes: Int) throws -> Model {
        let conv2Out = ((input[0] / 2 - 4) / 2, (input[1] / 2 - 4) / 2)
        return try chain("lenet5", [
            Conv2D(name: "conv1", inChannels: input[2], outChannels: 6, kernelSize: 5, rng: &rng),
            ReLU(name: "conv1/relu"), MaxPool(name: "pool1"),
            Conv2D(name: "conv2", inChannels: 6, outChannels: 16, kernelSize: 5, padding: .valid, rng: &rng),
            ReLU(name: "conv2/relu"), MaxPool(name: "pool2"),
            Flatten(name: "flatten"),
            Dense(name: "fc1", inputs: conv2Out.0 * conv2Out.1 * 16, outputs: 120, rng: &rng), ReLU(name: "fc1/relu"),
            Dense(name: "fc2", inputs: 120, outputs: 84, rng: &rng), ReLU(name: "fc2/relu"),
            Dense(name: "fc3", inputs: 84, outputs: classes, rng: &rng),
        ], input)
    }

    /// The reference model: conv1 1→32 3×3 + ReLU + pool, conv2 32→64 3×3 + ReLU + pool,
    /// flatten (3136), fc1 3136→128 + ReLU, fc2 128→classes.
    static func fmnistCNN(_ rng: inout RNG, _ input: [Int], _ classes: Int) throws -> Model {
        try chain("fmnist-cnn", [
            Conv2D(name: "conv1", inChannels: input[2], outChannels: 32, kernelSize: 3, rng: &rng),
            ReLU(name: "conv1/relu"), MaxPool(name: "pool1"),
            Conv2D(name: "conv2", inChannels: 32, outChannels: 64, kernelSize: 3, rng: &rng),
            ReLU(name: "conv2/relu"), MaxPool(name: "pool2"),
            Flatten(name: "flatten"),
            Dense(name: "fc1", inputs: (input[0] / 4) * (input[1] / 4) * 64, outputs: 128, rng: &rng),
            ReLU(name: "fc1/relu"),
            Dense(name: "fc2", inputs: 128, outputs: classes, rng: &rng),
        ], input)
    }

    /// A small ResNet: stem conv 16 + BN + ReLU; block1 (16, identity shortcut); block2
    /// (32, stride 2, 1×1 projection shortcut); block3 (32, identity); global average pool; fc.
    /// Each block is `relu(body(x) + shortcut(x))` (`block/add`, `block/relu`).
    static func resnetMini(_ rng: inout RNG, _ input: [Int], _ classes: Int) throws -> Model {
        var b = GraphBuilder(inputShape: input)
        func convBN(_ scope: String, _ x: Int, _ cin: Int, _ cout: Int, _ k: Int, _ stride: Int, relu: Bool) throws -> Int {
            var m: [Module] = [
                Conv2D(name: scope, inChannels: cin, outChannels: cout, kernelSize: k, stride: stride, useBias: false, rng: &rng),
                BatchNorm(name: scopePath(scope, "bn"), channels: cout),
            ]
            if relu { m.append(ReLU(name: scopePath(scope, "relu"))) }
            return try b.layers(m, x)
        }
        func block(_ scope: String, _ x: Int, _ cin: Int, _ cout: Int, _ stride: Int) throws -> Int {
            var main = try convBN(scopePath(scope, "conv1"), x, cin, cout, 3, stride, relu: true)
            main = try convBN(scopePath(scope, "conv2"), main, cout, cout, 3, 1, relu: false)
            let skip = stride != 1 || cin != cout ? try convBN(scopePath(scope, "shortcut"), x, cin, cout, 1, stride, relu: false) : x
            let sum = try b.binary(.add, main, skip, name: scopePath(scope, "add"))
            return try b.layer(ReLU(name: scopePath(scope, "relu")), sum)
        }
        var h = try convBN("stem", b.input, input[2], 16, 3, 1, relu: true)
        h = try block("block1", h, 16, 16, 1)
        h = try block("block2", h, 16, 32, 2)
        h = try block("block3", h, 32, 32, 1)
        h = try b.layers([GlobalAvgPool(name: "pool"), Dense(name: "fc", inputs: 32, outputs: classes, rng: &rng)], h)
        return Model(name: "resnet-mini", graph: try b.build(output: h))
    }
}
