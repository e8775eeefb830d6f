import ECTestSupport
import Foundation
import XCTest

/// Keeps the docs' code blocks honest: every ```swift block of a doc must be one of the samples
/// that `DocSamplesTests.swift` compiles and runs.
///
/// A sample is the region between a `// sample: <name>` line and a `// end sample` line of that
/// file. It reads as the doc block line for line (after removing the common indentation),
/// except for lines ending in `// docs: <text>`: the doc shows `<text>` there (a full-size
/// value — 1000 steps, the whole dataset — where the test runs a small one).
enum DocSamples {
    /// The fenced blocks of `language` in a Markdown file, dedented.
    static func blocks(_ language: String, inDoc doc: String) throws -> [String] {
        let text = try String(contentsOf: TestPaths.repository.appendingPathComponent(doc), encoding: .utf8)
        var blocks: [String] = [], current: [String]?
        for line in text.components(separatedBy: "\n") {
            if current == nil, line.trimmingCharacters(in: .whitespaces) == "```\(language)" {
                current = []
            } else if current != nil, line.trimmingCharacters(in: .whitespaces) == "```" {
                blocks.append(dedent(current!))
                current = nil
            } else if current != nil {
                current!.append(line)
            }
        }
        return blocks
    }

    /// The samples of a test source file, as the docs show them.
    static func samples(inSource file: String) throws -> [String: String] {
        let text = try String(contentsOf: TestPaths.repository.appendingPathComponent(file), encoding: .utf8)
        var samples: [String: String] = [:], name: String?, lines: [String] = []
        for line in text.components(separatedBy: "\n") {
            let trimmed = line.trimmingCharacters(in: .whitespaces)
            if trimmed.hasPrefix("// sample: ") {
                name = String(trimmed.dropFirst("// sample: ".count))
                lines = []
            } else if trimmed == "// end sample", let n = name {
                samples[n] = dedent(lines)
                name = nil
            } else if name != nil {
                if let marker = line.range(of: "  // docs: ") {
                    let indent = line.prefix { $0 == " " }
                    lines.append(String(indent) + String(line[marker.upperBound...]))
                } else {
                    lines.append(line)
                }
            }
        }
        return samples
    }

    static func dedent(_ lines: [String]) -> String {
        let indent = lines.filter { !$0.trimmingCharacters(in: .whitespaces).isEmpty }
            .map { $0.prefix { $0 == " " }.count }.min() ?? 0
        return lines.map { String($0.dropFirst(min(indent, $0.prefix { $0 == " " }.count))) }
            .joined(separator: "\n").trimmingCharacters(in: .newlines)
    }

    /// Fails for each ```swift block of `doc` that is not a sample; returns the names used.
    @discardableResult
    static func assertSwiftBlocksAreSamples(in doc: String, file: StaticString = #filePath, line: UInt = #line) throws -> Set<String> {
        let samples = try self.samples(inSource: "Tests/easycompressTests/DocSamplesTests.swift")
        var used: Set<String> = []
        for block in try blocks("swift", inDoc: doc) {
            if let name = samples.first(where: { $0.value == block })?.key {
                used.insert(name)
            } else {
                XCTFail("\(doc): this swift block is not a sample of DocSamplesTests.swift (copy it there):\n\(block)",
                        file: file, line: line)
            }
        }
        return used
    }
}
