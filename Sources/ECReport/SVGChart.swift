import Foundation

/// The run report's charts as inline SVG: plain elements sized in pixels and coloured by the
/// report's CSS classes — no script, no external resource. Every coordinate is computed from
/// the data (1 decimal), so two runs with different numbers draw different paths.
enum SVGChart {
    struct Series {
        let name: String
        /// CSS class of the line (`loss`, `accuracy`, …).
        let cssClass: String
        /// Points in x order; a nil y (a non-finite value) breaks the line there.
        let points: [(x: Double, y: Double?)]
        var dots = false
    }

    /// A vertical line at `x`: a compression decision.
    struct Marker {
        let x: Double
        let label: String
        let tooltip: String
        let cssClass: String
    }

    /// A line chart of `series` over a shared x axis (steps), with `markers` as dashed vertical
    /// lines and a red × at the top for each x where a series has no finite value.
    static func line(series: [Series], markers: [Marker] = [], xLabel: String = "step", yLabel: String,
                     width: Double = 760, height: Double = 250) -> String {
        let left = 58.0, right = 14.0, top = 34.0, bottom = 38.0
        let plotW = width - left - right, plotH = height - top - bottom
        let xs = series.flatMap { $0.points.map(\.x) } + markers.map(\.x)
        let ys = series.flatMap { $0.points.compactMap(\.y) }.filter(\.isFinite)
        var svg = "<svg class=\"chart line-chart\" xmlns=\"http://www.w3.org/2000/svg\" width=\"\(f(width))\" "
            + "height=\"\(f(height))\" viewBox=\"0 0 \(f(width)) \(f(height))\" role=\"img\" aria-label=\"\(HTML.escape(yLabel))\">"
        guard !xs.isEmpty, !ys.isEmpty else {
            svg += "<text class=\"empty\" x=\"\(f(width / 2))\" y=\"\(f(height / 2))\" text-anchor=\"middle\">no data</text></svg>"
            return svg
        }
        let xDomain = domain(min(xs.min()!, 0), xs.max()!, pad: 0)  // steps count from 0
        let yDomain = domain(ys.min()!, ys.max()!, pad: 0.06)
        let px = { (x: Double) in left + (x - xDomain.lo) / (xDomain.hi - xDomain.lo) * plotW }
        let py = { (y: Double) in top + (1 - (y - yDomain.lo) / (yDomain.hi - yDomain.lo)) * plotH }

        // Axes, grid and tick labels.
        svg += "<g class=\"axis\">"
        for t in ticks(yDomain.lo, yDomain.hi) {
            svg += "<line class=\"grid\" x1=\"\(f(left))\" x2=\"\(f(left + plotW))\" y1=\"\(f(py(t)))\" y2=\"\(f(py(t)))\"/>"
            svg += "<text x=\"\(f(left - 6))\" y=\"\(f(py(t) + 4))\" text-anchor=\"end\">\(number(t))</text>"
        }
        for t in ticks(xDomain.lo, xDomain.hi) {
            svg += "<text x=\"\(f(px(t)))\" y=\"\(f(top + plotH + 16))\" text-anchor=\"middle\">\(number(t))</text>"
        }
        svg += "<rect class=\"frame\" x=\"\(f(left))\" y=\"\(f(top))\" width=\"\(f(plotW))\" height=\"\(f(plotH))\"/>"
        svg += "<text x=\"\(f(left + plotW / 2))\" y=\"\(f(height - 4))\" text-anchor=\"middle\">\(HTML.escape(xLabel))</text>"
        svg += "<text x=\"12\" y=\"\(f(top + plotH / 2))\" text-anchor=\"middle\" transform=\"rotate(-90 12 \(f(top + plotH / 2)))\">"
            + "\(HTML.escape(yLabel))</text></g>"

        // Compression decisions, labelled where there is room.
        var lastLabelX = -Double.infinity
        for m in markers.sorted(by: { $0.x < $1.x }) {
            let x = px(m.x)
            svg += "<g class=\"marker \(m.cssClass)\"><title>\(HTML.escape(m.tooltip))</title>"
            svg += "<line x1=\"\(f(x))\" x2=\"\(f(x))\" y1=\"\(f(top))\" y2=\"\(f(top + plotH))\"/>"
            if x - lastLabelX >= 22 {
                svg += "<text x=\"\(f(x))\" y=\"\(f(top - 6))\" text-anchor=\"middle\">\(HTML.escape(m.label))</text>"
                lastLabelX = x
            }
            svg += "</g>"
        }

        // The series: one path each, broken at non-finite values.
        for s in series {
            var d = "", open = false
            var lone: [(Double, Double)] = []
            var segment: [(Double, Double)] = []
            func closeSegment() {
                if segment.count == 1 { lone.append(segment[0]) }
                segment = []
            }
            for p in s.points.sorted(by: { $0.x < $1.x }) {
                guard let y = p.y, y.isFinite else {
                    open = false
                    closeSegment()
                    svg += "<text class=\"invalid\" x=\"\(f(px(p.x)))\" y=\"\(f(top + 10))\" text-anchor=\"middle\">"
                        + "<title>\(HTML.escape(s.name)) is not a finite number at step \(number(p.x))</title>×</text>"
                    continue
                }
                d += (open ? " L" : (d.isEmpty ? "M" : " M")) + "\(f(px(p.x))),\(f(py(y)))"
                open = true
                segment.append((px(p.x), py(y)))
            }
            closeSegment()
            if !d.isEmpty {
                svg += "<path class=\"series \(s.cssClass)\" d=\"\(d)\"><title>\(HTML.escape(s.name))</title></path>"
            }
            for p in s.points where s.dots || lone.contains(where: { $0.0 == px(p.x) }) {
                guard let y = p.y, y.isFinite else { continue }
                svg += "<circle class=\"dot \(s.cssClass)\" cx=\"\(f(px(p.x)))\" cy=\"\(f(py(y)))\" r=\"3\">"
                    + "<title>\(HTML.escape(s.name)) \(number(y)) at step \(number(p.x))</title></circle>"
            }
        }

        // Legend, top right above the frame (marker labels sit just above the frame).
        var lx = left + plotW - 8
        for s in series.reversed() {
            let w = Double(s.name.count) * 6.5 + 24
            lx -= w
            svg += "<g class=\"legend\"><line class=\"series \(s.cssClass)\" x1=\"\(f(lx))\" x2=\"\(f(lx + 14))\" "
                + "y1=\"\(f(top - 22))\" y2=\"\(f(top - 22))\"/><text x=\"\(f(lx + 18))\" y=\"\(f(top - 18))\">"
                + "\(HTML.escape(s.name))</text></g>"
        }
        return svg + "</svg>"
    }

    /// One row of a horizontal bar chart: each bar's `fraction` of the full width (clamped to
    /// [0, 1] for drawing; the text says the real value).
    struct BarRow {
        let label: String
        let bars: [(fraction: Double, cssClass: String)]
        let text: String
    }

    /// Horizontal bars, one row per layer (several thin bars per row when given).
    static func bars(_ rows: [BarRow], width: Double = 760) -> String {
        let labelW = 190.0, textW = 230.0, barH = 12.0, gap = 3.0, rowGap = 9.0
        let barW = width - labelW - textW
        let rowHeights = rows.map { Double(max($0.bars.count, 1)) * (barH + gap) - gap }
        let height = rowHeights.reduce(0, +) + rowGap * Double(rows.count + 1)
        var svg = "<svg class=\"chart bar-chart\" xmlns=\"http://www.w3.org/2000/svg\" width=\"\(f(width))\" "
            + "height=\"\(f(height))\" viewBox=\"0 0 \(f(width)) \(f(height))\" role=\"img\">"
        var y = rowGap
        for (row, h) in zip(rows, rowHeights) {
            svg += "<g class=\"bar-row\"><text class=\"label\" x=\"\(f(labelW - 8))\" y=\"\(f(y + h / 2 + 4))\" "
                + "text-anchor=\"end\">\(HTML.escape(row.label))</text>"
            for (i, bar) in row.bars.enumerated() {
                let by = y + Double(i) * (barH + gap)
                let w = min(max(bar.fraction.isFinite ? bar.fraction : 0, 0), 1) * barW
                svg += "<rect class=\"track\" x=\"\(f(labelW))\" y=\"\(f(by))\" width=\"\(f(barW))\" height=\"\(f(barH))\"/>"
                svg += "<rect class=\"bar \(bar.cssClass)\" x=\"\(f(labelW))\" y=\"\(f(by))\" width=\"\(f(w))\" height=\"\(f(barH))\"/>"
            }
            svg += "<text class=\"value\" x=\"\(f(labelW + barW + 8))\" y=\"\(f(y + h / 2 + 4))\">\(HTML.escape(row.text))</text></g>"
            y += h + rowGap
        }
        return svg + "</svg>"
    }

    /// Step sizes per layer on a log axis: a dot per weight step size (one per output channel
    /// with `per_channel`) and a diamond for the input-activation step size.
    static func scales(_ rows: [(label: String, weights: [Double], activation: Double?)], width: Double = 760) -> String {
        let labelW = 190.0, right = 20.0, rowH = 24.0, top = 8.0, bottom = 34.0
        let plotW = width - labelW - right
        let values = rows.flatMap { $0.weights + ($0.activation.map { [$0] } ?? []) }.filter { $0 > 0 && $0.isFinite }
        let height = top + bottom + rowH * Double(max(rows.count, 1))
        var svg = "<svg class=\"chart scale-chart\" xmlns=\"http://www.w3.org/2000/svg\" width=\"\(f(width))\" "
            + "height=\"\(f(height))\" viewBox=\"0 0 \(f(width)) \(f(height))\" role=\"img\">"
        guard let lo = values.min(), let hi = values.max() else {
            return svg + "<text class=\"empty\" x=\"\(f(width / 2))\" y=\"\(f(height / 2))\" text-anchor=\"middle\">no step sizes</text></svg>"
        }
        let d = domain(log10(lo), log10(hi), pad: 0.05)
        let px = { (v: Double) in labelW + (log10(v) - d.lo) / (d.hi - d.lo) * plotW }
        let plotBottom = top + rowH * Double(rows.count)
        svg += "<g class=\"axis\">"
        for e in Int(floor(d.lo))...Int(ceil(d.hi)) where Double(e) >= d.lo && Double(e) <= d.hi {
            let x = px(pow(10, Double(e)))
            svg += "<line class=\"grid\" x1=\"\(f(x))\" x2=\"\(f(x))\" y1=\"\(f(top))\" y2=\"\(f(plotBottom))\"/>"
            svg += "<text x=\"\(f(x))\" y=\"\(f(plotBottom + 14))\" text-anchor=\"middle\">1e\(e)</text>"
        }
        svg += "<text x=\"\(f(labelW + plotW / 2))\" y=\"\(f(height - 4))\" text-anchor=\"middle\">step size (log scale)</text></g>"
        for (i, row) in rows.enumerated() {
            let cy = top + rowH * (Double(i) + 0.5)
            svg += "<g class=\"scale-row\"><text class=\"label\" x=\"\(f(labelW - 8))\" y=\"\(f(cy + 4))\" text-anchor=\"end\">"
                + "\(HTML.escape(row.label))</text>"
            for w in row.weights where w > 0 && w.isFinite {
                svg += "<circle class=\"dot weight-scale\" cx=\"\(f(px(w)))\" cy=\"\(f(cy))\" r=\"2.5\"/>"
            }
            if let a = row.activation, a > 0, a.isFinite {
                let x = px(a)
                svg += "<path class=\"activation-scale\" d=\"M\(f(x)),\(f(cy - 6)) L\(f(x + 6)),\(f(cy)) L\(f(x)),\(f(cy + 6)) "
                    + "L\(f(x - 6)),\(f(cy)) Z\"><title>activation step size \(number(a))</title></path>"
            }
            svg += "</g>"
        }
        return svg + "</svg>"
    }

    // MARK: helpers

    static func f(_ v: Double) -> String { String(format: "%.1f", v) }

    /// A compact tick / value label: 3 significant digits, thousands as k.
    static func number(_ v: Double) -> String {
        if v == v.rounded(), abs(v) < 10_000 { return String(Int(v)) }
        if abs(v) >= 10_000 { return String(format: "%.3gk", v / 1000) }
        return String(format: "%.3g", v)
    }

    /// [lo, hi] widened by `pad` of its span; a zero span becomes one around the value.
    static func domain(_ lo: Double, _ hi: Double, pad: Double) -> (lo: Double, hi: Double) {
        if hi - lo < 1e-12 {
            let half = max(abs(lo) * 0.05, 0.5)
            return (lo - half, hi + half)
        }
        let p = (hi - lo) * pad
        return (lo - p, hi + p)
    }

    /// About five round-numbered ticks inside [lo, hi].
    static func ticks(_ lo: Double, _ hi: Double) -> [Double] {
        let raw = (hi - lo) / 5
        let magnitude = pow(10, floor(log10(raw)))
        let step = [1.0, 2, 5, 10].map { $0 * magnitude }.first { $0 >= raw } ?? 10 * magnitude
        var t = (lo / step).rounded(.up) * step, out: [Double] = []
        while t <= hi + step * 1e-9, out.count < 12 {
            out.append(abs(t) < step * 1e-9 ? 0 : t)
            t += step
        }
        return out
    }
}
