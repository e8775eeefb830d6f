import ECNN

/// First-order Taylor importance of channels (Molchanov, Mallya, Tyree, Frosio & Kautz,
/// "Importance Estimation for Neural Network Pruning", CVPR 2019, eq. 4 — the group form).
///
/// Removing channel c sets its parameters W_c to zero; the first-order Taylor expansion of the
/// loss change is Σ_{s∈W_c} g_s·w_s, and its square is the score:
///
///     score_c = ( Σ over the producer slices' kernel and bias elements e of channel c  w_e · g_e )²
///
/// "Producer slices' kernel and bias elements" are the elements of channel c in every slice
/// with role `.producer` whose parameter is a kernel (`ParameterRole.weight`) or a bias — for a
/// group tied by a residual add, all the tied layers' kernels and biases, summed before
/// squaring. Batch-norm parameters and consumer slices do not contribute. g is the parameter's
/// `grad`, the allreduced (global-batch mean) gradient of the step. Products are summed in
/// Float over blocks of 64 rows and the blocks in Double; the score is stored as Float (the EMA
/// and the checkpoint are Float).
enum TaylorImportance {
    /// The parameter slices a group's score sums over (see the type's documentation).
    static func scoredSlices(of group: ChannelGroup, parameters: [String: Parameter]) -> [(ChannelSlice, Parameter)] {
        group.slices.compactMap { slice in
            guard slice.role == .producer, let p = parameters[slice.parameter],
                  p.role == .weight || p.role == .bias else { return nil }
            return (slice, p)
        }
    }

    /// score_c for c in 0..<channels, from the parameters' current values and gradients.
    static func scores(channels: Int, slices: [(ChannelSlice, Parameter)]) -> [Float] {
        var sums = [Double](repeating: 0, count: channels)
        var axis = [Double]()
        for (slice, parameter) in slices {
            let s = slice.innerStride, period = slice.period
            // Σ w·g per channel of the parameter's axis, then the group's part of it.
            axis = [Double](repeating: 0, count: period)
            parameter.value.withUnsafeBufferPointer { w in
                parameter.grad.withUnsafeBufferPointer { g in
                    axis.withUnsafeMutableBufferPointer { sum in
                        if s == 1 {
                            // Producer slices (the usual case): rows of `period` channels. Sum
                            // 64 rows at a time in Float (vectorised), then add into Double.
                            let rows = w.count / period
                            var partial = [Float](repeating: 0, count: period)
                            partial.withUnsafeMutableBufferPointer { acc in
                                var r = 0
                                while r < rows {
                                    let end = min(rows, r + 64)
                                    for c in 0..<period { acc[c] = 0 }
                                    for row in r..<end {
                                        let wr = w.baseAddress! + row * period, gr = g.baseAddress! + row * period
                                        for c in 0..<period { acc[c] += wr[c] * gr[c] }
                                    }
                                    for c in 0..<period { sum[c] += Double(acc[c]) }
                                    r = end
                                }
                            }
                            return
                        }
                        var e = 0
                        while e < w.count {  // one block: every channel's run of `s` elements
                            for c in 0..<period {
                                var acc = 0.0
                                for _ in 0..<s {
                                    acc += Double(w[e]) * Double(g[e])
                                    e += 1
                                }
                                sum[c] += acc
                            }
                        }
                    }
                }
            }
            for c in 0..<channels {
                for a in slice.axisChannels(of: c) { sums[c] += axis[a] }
            }
        }
        return sums.map { Float($0 * $0) }
    }
}
