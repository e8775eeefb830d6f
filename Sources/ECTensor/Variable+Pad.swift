extension Variable {
    /// Constant padding of NHWC feature maps (ONNX `Pad`, mode constant, over H and W):
    /// `[N, H, W, C] → [N, top + H + bottom, left + W + right, C]`, new positions `value`
    /// (0 by default). Backward: `dy` cropped back to the input positions.
    public func pad(top: Int = 0, bottom: Int = 0, left: Int = 0, right: Int = 0, value fill: Float = 0) -> Variable {
        let x = value
        precondition(x.rank == 4, "pad needs NHWC input, got \(x.shape)")
        precondition(top >= 0 && bottom >= 0 && left >= 0 && right >= 0,
                     "pad: pads must be ≥ 0, got top \(top) bottom \(bottom) left \(left) right \(right)")
        let (n, h, w, c) = (x.shape[0], x.shape[1], x.shape[2], x.shape[3])
        let oh = top + h + bottom, ow = left + w + right
        var y = Tensor(shape: [n, oh, ow, c], repeating: fill)
        x.withUnsafeBufferPointer { xp in y.withUnsafeMutableBufferPointer { yp in
            // Input row (image, iy) goes to output row (image, top + iy) from column `left`.
            for image in 0..<n {
                copyRuns(rows: h, count: w * c, from: xp.baseAddress! + image * h * w * c, srcStride: w * c,
                         to: yp.baseAddress! + ((image * oh + top) * ow + left) * c, dstStride: ow * c)
            }
        } }
        let input = self
        return Variable.result(y, inputs: self) { dy in
            var dx = Tensor(uninitializedShape: x.shape)
            dy.withUnsafeBufferPointer { gp in dx.withUnsafeMutableBufferPointer { dp in
                for image in 0..<n {
                    copyRuns(rows: h, count: w * c, from: gp.baseAddress! + ((image * oh + top) * ow + left) * c, srcStride: ow * c,
                             to: dp.baseAddress! + image * h * w * c, dstStride: w * c)
                }
            } }
            input.accumulate(dx)
        }
    }
}
