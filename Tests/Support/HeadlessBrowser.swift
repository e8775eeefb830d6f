import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// Debian's `chromium` run headless, to look at an HTML page as a user would: a screenshot
/// to PNG. Installed by `launch/setup-deps`; without it the caller skips, unless
/// `EC_REQUIRE_CHROMIUM=1` (set by `launch/test`) makes a missing browser a failure.
public enum HeadlessBrowser {
    /// The browser's path, or nil when none is installed.
    public static var executable: String? {
        let path = ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin"
        for name in ["chromium", "chromium-browser", "google-chrome"] {
            for dir in path.split(separator: ":") where FileManager.default.isExecutableFile(atPath: "\(dir)/\(name)") {
                return "\(dir)/\(name)"
            }
        }
        return nil
    }

    /// Whether a missing browser must fail the test rather than skip it.
    public static var required: Bool { ProcessInfo.processInfo.environment["EC_REQUIRE_CHROMIUM"] == "1" }

    /// Renders `page` (a local file) at `width`×`height` CSS pixels into `png`. As root the
    /// browser needs `--no-sandbox`.
    public static func screenshot(_ page: URL, to png: URL, width: Int, height: Int,
                                  timeoutSeconds: Double = 90) throws -> ProcessResult {
        guard let browser = executable else { throw HarnessError(description: "chromium is not installed (launch/setup-deps)") }
        let profile = FileManager.default.temporaryDirectory.appendingPathComponent("ec-chromium-\(UUID().uuidString.prefix(8))")
        defer { try? FileManager.default.removeItem(at: profile) }
        var arguments = [browser, "--headless", "--disable-gpu", "--hide-scrollbars", "--no-first-run",
                         "--user-data-dir=\(profile.path)", "--screenshot=\(png.path)", "--window-size=\(width),\(height)"]
        if getuid() == 0 { arguments.append("--no-sandbox") }
        return try ProcessRunner.run(arguments + [page.absoluteString], environment: ["HOME": profile.path],
                                     timeoutSeconds: timeoutSeconds)
    }

    /// A PNG's width and height from its IHDR chunk, or nil when `data` is not a PNG.
    public static func pngSize(_ data: Data) -> (width: Int, height: Int)? {
        let bytes = [UInt8](data)
        guard bytes.count > 24, bytes[0..<8].elementsEqual([0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A]),
              bytes[12..<16].elementsEqual(Array("IHDR".utf8)) else { return nil }
        let be = { (i: Int) in bytes[i..<(i + 4)].reduce(0) { $0 << 8 | Int($1) } }
        return (be(16), be(20))
    }
}
