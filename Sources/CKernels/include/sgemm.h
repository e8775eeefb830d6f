#ifndef EC_SGEMM_H
#define EC_SGEMM_H
// The engine's FP32 GEMM (FP32Kernels in ECTensor; BLAS.sgemm routes through it):
// row-major C = alpha·op(A)·op(B) + beta·C for the four transpose combinations, with
// register-blocked micro-kernels for AVX-512 (14×32), AVX2+FMA (6×16) and portable C (4×8),
// each compiled with a function-level target attribute and chosen at run time.
//
// Determinism: every element of C is one sequential chain over k (p = 0, 1, …, k−1; with
// alpha ≠ 1, one chain per k block of a size that depends on k and the path only). Tile
// shapes, the split of C between threads and the number of threads never change a result.
#include <stdint.h>

/// The kernel families (values shared with FP32Kernels.Path in Swift).
enum { EC_SGEMM_PORTABLE = 0, EC_SGEMM_AVX2 = 1, EC_SGEMM_AVX512 = 2 };

/// 1 when this CPU (and OS) runs the family `path`: AVX-512 F; AVX2 and FMA; portable always.
int ec_sgemm_supported(int path);

/// Splits C (m × n) into at most `parts` rectangles for as many threads, so that each thread's
/// work is balanced and no packing is duplicated where that can be avoided. Writes
/// rectangle t as ranges[4t ..< 4t+4] = {row begin, row end, column begin, column end} and
/// returns the number of rectangles (≥ 1). Results do not depend on the split.
int ec_sgemm_partition(int path, int transA, int transB, long m, long n, long k, int parts, long *ranges);

/// Computes the rectangle rows [m0, m1) × columns [n0, n1) of
/// C = alpha·op(A)·op(B) + beta·C (all row-major; op(A) is m × k, op(B) is k × n).
/// A is stored m × k (lda ≥ k), or k × m (lda ≥ m) when transA; B is stored k × n (ldb ≥ n),
/// or n × k (ldb ≥ k) when transB. beta = 0 overwrites C without reading it (NaN there is
/// ignored). k ≥ 1. Safe to call from several threads at once on disjoint rectangles (each
/// thread packs into its own buffer; without memory for one, it computes its rectangle with
/// the scalar form of the same chains: same results, slowly).
void ec_sgemm(int path, int transA, int transB, long m, long n, long k, float alpha,
              const float *a, long lda, const float *b, long ldb, float beta, float *c, long ldc,
              long m0, long m1, long n0, long n1);

/// The whole of C on up to `threads` threads: the calling thread and the GEMM's own worker
/// threads (started on first use, spinning ~50 µs after each GEMM, then asleep). C is cut
/// by ec_sgemm_partition, so the result is the same for every thread count. One call uses
/// the workers at a time; a concurrent call computes on its own thread.
void ec_sgemm_parallel(int path, int threads, int transA, int transB, long m, long n, long k, float alpha,
                       const float *a, long lda, const float *b, long ldb, float beta, float *c, long ldc);

/// What the kernels of `path` compute, as a scalar loop: per element, the chain over p of
/// fused multiply-adds (AVX2, AVX-512) or multiply-then-add (portable) in the kernels'
/// k blocks, with their epilogue. Their results equal it bit for bit (tests check it).
void ec_sgemm_reference(int path, int transA, int transB, long m, long n, long k, float alpha, const float *a,
                        long lda, const float *b, long ldb, float beta, float *c, long ldc);

/// Peak single-precision FMA throughput of one core, measured with a tight loop of
/// independent FMAs on the widest vectors `path` has: FLOP per second (2 per lane per FMA).
double ec_sgemm_measure_peak(int path, double seconds);
#endif
