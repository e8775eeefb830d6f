/// Small HTML building blocks for the run report.
enum HTML {
    /// Text safe inside elements and quoted attributes.
    static func escape(_ text: String) -> String {
        var out = ""
        out.reserveCapacity(text.count)
        for c in text {
            switch c {
            case "&": out += "&amp;"
            case "<": out += "&lt;"
            case ">": out += "&gt;"
            case "\"": out += "&quot;"
            default: out.append(c)
            }
        }
        return out
    }

    /// A table: the first row is the header; cells are escaped; `numeric` columns align right.
    static func table(_ rows: [[String]], numericFrom column: Int = 1, cssClass: String = "") -> String {
        guard let header = rows.first else { return "" }
        var html = "<table class=\"\(cssClass)\"><thead><tr>"
        html += header.map { "<th>\(escape($0))</th>" }.joined() + "</tr></thead><tbody>"
        for row in rows.dropFirst() {
            html += "<tr>" + row.enumerated().map { i, cell in
                "<td\(i >= column ? " class=\"num\"" : "")>\(escape(cell))</td>"
            }.joined() + "</tr>"
        }
        return html + "</tbody></table>"
    }
}
