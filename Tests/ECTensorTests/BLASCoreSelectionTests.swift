import ECTensor
import XCTest

/// The choice of OpenBLAS core (issue #13, item 11): a generic core on an AVX2/AVX-512 CPU is
/// replaced, anything else is left alone. The re-execution itself is tested through the CLI
/// (`BLASCoreTests`).
final class BLASCoreSelectionTests: XCTestCase {
    /// `/proc/cpuinfo` of the Intel machine kind whose Debian OpenBLAS 0.3.21 chooses Prescott.
    static let xeon = """
        processor\t: 0
        vendor_id\t: GenuineIntel
        cpu family\t: 6
        model\t\t: 207
        model name\t: INTEL(R) XEON(R) PLATINUM 8575C
        flags\t\t: fpu sse sse2 ssse3 sse4_1 sse4_2 avx avx2 fma avx512f avx512dq avx512cd avx512bw avx512vl avx512_vnni avx512_bf16 amx_tile

        processor\t: 1
        model name\t: second block, not read
        """
    static let avx2Only = "model name\t: Some AVX2 CPU\nflags\t\t: sse4_2 avx avx2 fma\n"
    static let old = "model name\t: Old CPU\nflags\t\t: sse sse2 sse3 sse4_2\n"

    func testParsesTheFirstProcessor() {
        let cpu = CPUInfo.parse(Self.xeon)
        XCTAssertEqual(cpu.modelName, "INTEL(R) XEON(R) PLATINUM 8575C")
        XCTAssertEqual(cpu.vendor, "GenuineIntel")
        XCTAssertEqual(cpu.family, 6)
        XCTAssertEqual(cpu.model, 207)
        XCTAssertTrue(cpu.hasAVX512 && cpu.hasAVX2)
        XCTAssertEqual(cpu.summary, "INTEL(R) XEON(R) PLATINUM 8575C (family 6 model 207); flags: sse4_2 avx avx2 fma "
                       + "avx512f avx512bw avx512vl avx512dq avx512_vnni avx512_bf16 amx_tile")
        XCTAssertFalse(CPUInfo.parse(Self.avx2Only).hasAVX512)
        XCTAssertTrue(CPUInfo.parse(Self.avx2Only).hasAVX2)
    }

    func testAGenericCoreOnAnAVXCPUIsReplaced() {
        let xeon = CPUInfo.parse(Self.xeon), avx2 = CPUInfo.parse(Self.avx2Only), old = CPUInfo.parse(Self.old)
        XCTAssertEqual(BLASCoreSelection.decide(libraryCore: "Prescott", cpu: xeon, environment: [:]),
                       .select(core: "SkylakeX", replacing: "Prescott"))
        XCTAssertEqual(BLASCoreSelection.decide(libraryCore: "Nehalem", cpu: avx2, environment: [:]),
                       .select(core: "Haswell", replacing: "Nehalem"))
        XCTAssertEqual(BLASCoreSelection.decide(libraryCore: "Sandybridge", cpu: xeon, environment: [:]),
                       .select(core: "SkylakeX", replacing: "Sandybridge"))
        // A core the library knows for the CPU, or a CPU without AVX2: left alone.
        for core in ["SkylakeX", "Cooperlake", "Haswell", "Zen", "Sapphirerapids"] {
            XCTAssertEqual(BLASCoreSelection.decide(libraryCore: core, cpu: xeon, environment: [:]), .keep(note: nil), core)
        }
        XCTAssertEqual(BLASCoreSelection.decide(libraryCore: "Prescott", cpu: old, environment: [:]), .keep(note: nil))
    }

    func testTheUsersChoiceTheSwitchAndTheMarkerAreRespected() {
        let xeon = CPUInfo.parse(Self.xeon)
        guard case let .keep(note?) = BLASCoreSelection.decide(libraryCore: "Prescott", cpu: xeon,
                                                                 environment: ["OPENBLAS_CORETYPE": "Prescott"]) else {
            return XCTFail("an explicit OPENBLAS_CORETYPE must be kept, with a note")
        }
        XCTAssertTrue(note.contains("OPENBLAS_CORETYPE=Prescott (set in the environment)") && note.contains("SkylakeX"), note)
        XCTAssertEqual(BLASCoreSelection.decide(libraryCore: "Haswell", cpu: xeon,
                                                environment: ["OPENBLAS_CORETYPE": "Haswell", "EC_TEST_FAKE_BLAS_CORE": "Prescott"]),
                       .keep(note: nil))
        XCTAssertEqual(BLASCoreSelection.decide(libraryCore: "Prescott", cpu: xeon, environment: ["EC_BLAS_CORE_AUTO": "0"]),
                       .keep(note: nil))
        XCTAssertEqual(BLASCoreSelection.decide(libraryCore: "Prescott", cpu: xeon,
                                                environment: ["EC_BLAS_CORE_SELECTED": "Prescott>SkylakeX"]),
                       .keep(note: nil), "never twice: the re-executed process keeps what it got")
        // The test hook: the library's real choice is replaced by the fake one.
        XCTAssertEqual(BLASCoreSelection.decide(libraryCore: "Cooperlake", cpu: xeon, environment: ["EC_TEST_FAKE_BLAS_CORE": "Prescott"]),
                       .select(core: "SkylakeX", replacing: "Prescott"))
    }

    func testTheLibraryReportsItsCoreAndTheKernelsAreListed() {
        XCTAssertFalse(BLAS.coreName.isEmpty)
        XCTAssertTrue(BLAS.configuration.hasPrefix("OpenBLAS"), BLAS.configuration)
        XCTAssertEqual(EngineKernels.all.map(\.name), ["FP32 GEMM (conv, dense)", "FP32 convolution", "int8 GEMM", "block-sparse matmul"])
        XCTAssertTrue(SystemReport.lines.contains { $0.hasPrefix("BLAS: OpenBLAS") && $0.hasSuffix("core in use: \(BLAS.coreName)") })
    }
}
