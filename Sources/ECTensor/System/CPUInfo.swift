import Foundation

/// The CPU this process runs on, as Linux describes it in `/proc/cpuinfo` (first processor):
/// what the BLAS core check and `easycompress --version` need. The flags are the kernel's, so
/// an instruction set the OS does not enable (AVX-512 state not saved) is absent.
public struct CPUInfo: Equatable, Sendable {
    /// `model name` (`AMD EPYC`, `Intel(R) Xeon(R) Platinum 8575C`); empty when unknown.
    public var modelName: String
    /// `vendor_id` (`GenuineIntel`, `AuthenticAMD`).
    public var vendor: String
    /// `cpu family` and `model` (Intel's Emerald Rapids Xeons: family 6, model 207).
    public var family: Int?
    public var model: Int?
    /// Every flag of the `flags` line.
    public var flags: Set<String>

    public init(modelName: String = "", vendor: String = "", family: Int? = nil, model: Int? = nil, flags: Set<String> = []) {
        self.modelName = modelName
        self.vendor = vendor
        self.family = family
        self.model = model
        self.flags = flags
    }

    /// This machine's CPU (read once; empty on systems without `/proc/cpuinfo`).
    public static let current: CPUInfo = {
        guard let text = try? String(contentsOfFile: "/proc/cpuinfo", encoding: .utf8) else { return CPUInfo() }
        return parse(text)
    }()

    /// The first processor block of a `/proc/cpuinfo` text.
    public static func parse(_ text: String) -> CPUInfo {
        var info = CPUInfo()
        for line in text.split(separator: "\n", omittingEmptySubsequences: false) {
            if line.trimmingCharacters(in: .whitespaces).isEmpty {
                if !info.flags.isEmpty || !info.modelName.isEmpty { break }  // end of the first block
                continue
            }
            guard let colon = line.firstIndex(of: ":") else { continue }
            let key = line[..<colon].trimmingCharacters(in: .whitespaces)
            let value = line[line.index(after: colon)...].trimmingCharacters(in: .whitespaces)
            switch key {
            case "model name": info.modelName = value
            case "vendor_id": info.vendor = value
            case "cpu family": info.family = Int(value)
            case "model": info.model = Int(value)
            case "flags": info.flags = Set(value.split(separator: " ").map(String.init))
            default: break
            }
        }
        return info
    }

    /// AVX-512 as OpenBLAS's SkylakeX kernels use it (F, BW, VL, DQ).
    public var hasAVX512: Bool { ["avx512f", "avx512bw", "avx512vl", "avx512dq"].allSatisfy(flags.contains) }
    /// AVX2 with FMA (OpenBLAS's Haswell kernels).
    public var hasAVX2: Bool { flags.contains("avx2") && flags.contains("fma") }

    /// The flags that decide which kernels run, in this order, for reports.
    public static let kernelFlags = ["sse4_2", "avx", "avx2", "fma", "avx512f", "avx512bw", "avx512vl", "avx512dq",
                                     "avx512_vnni", "avx512_bf16", "amx_tile"]

    /// One line: model, family/model, and which of `kernelFlags` are present.
    public var summary: String {
        let name = modelName.isEmpty ? "unknown CPU" : modelName
        let id = [family.map { "family \($0)" }, model.map { "model \($0)" }].compactMap { $0 }.joined(separator: " ")
        let present = Self.kernelFlags.filter(flags.contains)
        return name + (id.isEmpty ? "" : " (\(id))") + "; flags: " + (present.isEmpty ? "none of note" : present.joined(separator: " "))
    }
}
