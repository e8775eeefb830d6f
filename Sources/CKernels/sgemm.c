#include "sgemm.h"
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#define EC_X86 1
#endif

// Blocking (BLIS order): for each NC-wide column block of C, for each k block (KC), the
// op(B) panel is packed once (when B is stored transposed: its columns must become rows);
// then for each MC rows, for each NR-wide sliver of the panel (it stays in L1), the MR × NR
// micro-kernel runs down the rows. op(A) is read in place: a micro-kernel broadcasts its MR
// values for step p straight from A, from MR row streams (A stored m × k, "row" kernels)
// or from one row of the transposed storage (A stored k × m, "column" kernels); only rows a
// multiple of 2 KiB apart (L1 set conflicts) are packed first. op(B) rows are read from the
// packed panel or, when B is stored k × n, from B itself. Threads split C (ec_sgemm_partition,
// sgemm_pool.c), never k.
//
// Each micro-kernel computes an MR × (NV vectors) tile: acc[i][v] starts at beta·C (or 0),
// gets one FMA per p, and is stored (C = acc, or alpha·acc + beta·C when alpha ≠ 1). Edge
// tiles use the kernel of exactly their row count and the narrowest vector count covering
// their width (masked C access), so the work is never padded in m and rarely in n.

typedef void (*ec_ukernel)(long kc, const float *a, long as, const float *b, long sb,
                           float *c, long ldc, int w, float alpha, float beta, const float *pf);

#pragma STDC FP_CONTRACT OFF

#define EC_INLINE static inline __attribute__((always_inline))
// The tile loops (constant trip counts once a body is inlined into its instance) must be
// unrolled completely, or the accumulators live in memory instead of registers.
#if defined(__clang__)
#define EC_UNROLL _Pragma("clang loop unroll(full)")
#else
#define EC_UNROLL _Pragma("GCC unroll 16")
#endif
#define EC_MAX_MR 14
// Row i (< 14) from two bases (rows 0–6, rows 7–13) and byte strides L, L3 = 3L, L5 = 5L:
// every offset is a stride times 1, 2 or 4, one x86 addressing mode each.
#define EC_ROW_OFFSET(i) ((i) == 0 ? 0 : (i) == 1 ? L : (i) == 2 ? 2 * L : (i) == 3 ? L3 : (i) == 4 ? 4 * L \
                          : (i) == 5 ? L5 : 2 * L3)
#define EC_ROW(base0, base7, i) ((i) < 7 ? (base0) + EC_ROW_OFFSET(i) : (base7) + EC_ROW_OFFSET((i) - 7))

// MARK: - Portable micro-kernel (4 × 8; plain C, vectorised by the compiler for the target's
// baseline instruction set). Multiply then add, never contracted to an FMA (the file's
// FP_CONTRACT pragma), so it computes what chain_rect's portable form computes on any target.

EC_INLINE void body_portable(const int MR, const int ROWA, long kc, const float *a, long as, const float *b,
                             long sb, float *c, long ldc, int w, float alpha, float beta, const float *pf) {
    (void)pf;
    float acc[4][8];
    const int scaled = alpha != 1.0f;
    EC_UNROLL for (int i = 0; i < MR; i++)
        EC_UNROLL for (int j = 0; j < 8; j++)
            acc[i][j] = (!scaled && beta != 0.0f && j < w) ? (beta == 1.0f ? c[i * ldc + j] : beta * c[i * ldc + j]) : 0.0f;
    for (long p = 0; p < kc; p++) {
        const float *bp = b + p * sb;
        EC_UNROLL for (int i = 0; i < MR; i++) {
            const float x = ROWA ? a[i * as + p] : a[p * as + i];
            EC_UNROLL for (int j = 0; j < 8; j++) acc[i][j] = acc[i][j] + x * bp[j];
        }
    }
    EC_UNROLL for (int i = 0; i < MR; i++)
        for (int j = 0; j < w && j < 8; j++) {
            float r = acc[i][j];
            if (scaled) r = beta == 0.0f ? alpha * r : alpha * r + beta * c[i * ldc + j];
            c[i * ldc + j] = r;
        }
}

#define EC_DEF_PORTABLE(MR)                                                                                           \
    static void kp_r##MR(long kc, const float *a, long as, const float *b, long sb, float *c, long ldc,               \
                         int w, float alpha, float beta, const float *pf) {                                           \
        body_portable(MR, 1, kc, a, as, b, sb, c, ldc, w, alpha, beta, pf);                                           \
    }                                                                                                                 \
    static void kp_c##MR(long kc, const float *a, long as, const float *b, long sb, float *c, long ldc,               \
                         int w, float alpha, float beta, const float *pf) {                                           \
        body_portable(MR, 0, kc, a, as, b, sb, c, ldc, w, alpha, beta, pf);                                           \
    }
EC_DEF_PORTABLE(1) EC_DEF_PORTABLE(2) EC_DEF_PORTABLE(3) EC_DEF_PORTABLE(4)

#ifdef EC_X86
#define EC_AVX2 __attribute__((target("avx2,fma")))
#define EC_AVX512 __attribute__((target("avx512f,avx2,fma")))

// MARK: - AVX2 + FMA micro-kernels (vectors of 8; 6 × 16 main tile: 12 accumulators)

EC_INLINE EC_AVX2 __m256i mask8(int r) {
    const __m256i lanes = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
    return _mm256_cmpgt_epi32(_mm256_set1_epi32(r), lanes);
}

EC_INLINE EC_AVX2 void body_avx2(const int MR, const int NV, const int ROWA, long kc, const float *a, long as,
                                 const float *b, long sb, float *c, long ldc, int w, float alpha, float beta,
                                 const float *pf) {
    __m256 acc[6][8];
    const int full = w >= 8 * NV, scaled = alpha != 1.0f;
    __m256i mk[8];
    EC_UNROLL for (int v = 0; v < NV; v++) mk[v] = mask8(w - 8 * v);
    if (!scaled && beta != 0.0f) {
        const __m256 vb = _mm256_set1_ps(beta);
        if (full) {
            EC_UNROLL for (int i = 0; i < MR; i++)
                EC_UNROLL for (int v = 0; v < NV; v++) acc[i][v] = _mm256_loadu_ps(c + i * ldc + 8 * v);
        } else {
            EC_UNROLL for (int i = 0; i < MR; i++)
                EC_UNROLL for (int v = 0; v < NV; v++) acc[i][v] = _mm256_maskload_ps(c + i * ldc + 8 * v, mk[v]);
        }
        if (beta != 1.0f) {
            EC_UNROLL for (int i = 0; i < MR; i++)
                EC_UNROLL for (int v = 0; v < NV; v++) acc[i][v] = _mm256_mul_ps(acc[i][v], vb);
        }
    } else {
        EC_UNROLL for (int i = 0; i < MR; i++)
            EC_UNROLL for (int v = 0; v < NV; v++) acc[i][v] = _mm256_setzero_ps();
    }
    if (ROWA) {
        // Rows 0–5 at base + {0, 1, 2, 3, 4, 5}·lda (see body_avx512).
        const char *a0 = (const char *)a, *p0 = (const char *)pf;
        const long L = as * (long)sizeof(float), L3 = 3 * L, L5 = 5 * L;
        for (long p = 0; p < kc; p++) {
            if ((p & 15) == 0) {
                EC_UNROLL for (int i = 0; i < MR; i++) _mm_prefetch(EC_ROW(p0, p0, i) + 4 * p, _MM_HINT_T0);
            }
            __m256 bv[8];
            EC_UNROLL for (int v = 0; v < NV; v++) bv[v] = _mm256_loadu_ps(b + 8 * v);
            EC_UNROLL for (int i = 0; i < MR; i++) {
                const __m256 x = _mm256_broadcast_ss((const float *)EC_ROW(a0, a0, i));
                EC_UNROLL for (int v = 0; v < NV; v++) acc[i][v] = _mm256_fmadd_ps(x, bv[v], acc[i][v]);
            }
            a0 += sizeof(float);
            b += sb;
        }
    } else {
        for (long p = 0; p < kc; p++) {
            _mm_prefetch((const char *)(pf + p * as), _MM_HINT_T0);
            __m256 bv[8];
            EC_UNROLL for (int v = 0; v < NV; v++) bv[v] = _mm256_loadu_ps(b + 8 * v);
            EC_UNROLL for (int i = 0; i < MR; i++) {
                const __m256 x = _mm256_broadcast_ss(a + i);
                EC_UNROLL for (int v = 0; v < NV; v++) acc[i][v] = _mm256_fmadd_ps(x, bv[v], acc[i][v]);
            }
            a += as;
            b += sb;
        }
    }
    const __m256 va = _mm256_set1_ps(alpha), vb = _mm256_set1_ps(beta);
    EC_UNROLL for (int i = 0; i < MR; i++)
        EC_UNROLL for (int v = 0; v < NV; v++) {
            float *cp = c + i * ldc + 8 * v;
            __m256 r = acc[i][v];
            if (scaled) {
                if (beta == 0.0f) r = _mm256_mul_ps(va, r);
                else r = _mm256_fmadd_ps(va, r, _mm256_mul_ps(vb, full ? _mm256_loadu_ps(cp) : _mm256_maskload_ps(cp, mk[v])));
            }
            if (full) _mm256_storeu_ps(cp, r);
            else _mm256_maskstore_ps(cp, mk[v], r);
        }
}

#define EC_DEF_AVX2(MR, NV)                                                                                           \
    static EC_AVX2 void k2_r##MR##_##NV(long kc, const float *a, long as, const float *b, long sb, float *c,          \
                                        long ldc, int w, float alpha, float beta, const float *pf) {                  \
        body_avx2(MR, NV, 1, kc, a, as, b, sb, c, ldc, w, alpha, beta, pf);                                           \
    }                                                                                                                 \
    static EC_AVX2 void k2_c##MR##_##NV(long kc, const float *a, long as, const float *b, long sb, float *c,          \
                                        long ldc, int w, float alpha, float beta, const float *pf) {                  \
        body_avx2(MR, NV, 0, kc, a, as, b, sb, c, ldc, w, alpha, beta, pf);                                           \
    }
EC_DEF_AVX2(1, 1) EC_DEF_AVX2(2, 1) EC_DEF_AVX2(3, 1) EC_DEF_AVX2(4, 1) EC_DEF_AVX2(5, 1) EC_DEF_AVX2(6, 1)
EC_DEF_AVX2(1, 2) EC_DEF_AVX2(2, 2) EC_DEF_AVX2(3, 2) EC_DEF_AVX2(4, 2) EC_DEF_AVX2(5, 2) EC_DEF_AVX2(6, 2)
EC_DEF_AVX2(1, 4) EC_DEF_AVX2(2, 4)
EC_DEF_AVX2(1, 8)

// MARK: - AVX-512 micro-kernels (vectors of 16; 14 × 32 main tile: 28 accumulators)

EC_INLINE EC_AVX512 void body_avx512(const int MR, const int NV, const int ROWA, long kc, const float *a,
                                     long as, const float *b, long sb, float *c, long ldc, int w, float alpha,
                                     float beta, const float *pf) {
    __m512 acc[EC_MAX_MR][8];
    const int full = w >= 16 * NV, scaled = alpha != 1.0f;
    __mmask16 mk[8];
    EC_UNROLL for (int v = 0; v < NV; v++) {
        const int r = w - 16 * v;
        mk[v] = r >= 16 ? (__mmask16)0xFFFF : r <= 0 ? (__mmask16)0 : (__mmask16)((1u << r) - 1u);
    }
    if (!scaled && beta == 1.0f) {
        EC_UNROLL for (int i = 0; i < MR; i++)
            EC_UNROLL for (int v = 0; v < NV; v++) acc[i][v] = _mm512_maskz_loadu_ps(mk[v], c + i * ldc + 16 * v);
    } else if (!scaled && beta != 0.0f) {
        const __m512 vb = _mm512_set1_ps(beta);
        EC_UNROLL for (int i = 0; i < MR; i++)
            EC_UNROLL for (int v = 0; v < NV; v++)
                acc[i][v] = _mm512_mul_ps(_mm512_maskz_loadu_ps(mk[v], c + i * ldc + 16 * v), vb);
    } else {
        EC_UNROLL for (int i = 0; i < MR; i++)
            EC_UNROLL for (int v = 0; v < NV; v++) acc[i][v] = _mm512_setzero_ps();
    }
    if (ROWA) {
        // Row i of A at base + i·lda: two bases (rows 0–6 and 7–13) and three strides (lda,
        // 3·lda, 5·lda in bytes) reach all 14 rows with x86 scaled addressing, so the loop needs
        // few general registers (SwiftPM builds with a frame pointer: one fewer).
        const char *a0 = (const char *)a, *a7 = (const char *)(a + 7 * as);
        const char *p0 = (const char *)pf, *p7 = (const char *)(pf + 7 * as);
        const long L = as * (long)sizeof(float), L3 = 3 * L, L5 = 5 * L;
        for (long p = 0; p < kc; p++) {
            if ((p & 15) == 0) {  // each row's next line of the tile below
                EC_UNROLL for (int i = 0; i < MR; i++) _mm_prefetch(EC_ROW(p0, p7, i) + 4 * p, _MM_HINT_T0);
            }
            __m512 bv[8];
            EC_UNROLL for (int v = 0; v < NV; v++) bv[v] = _mm512_maskz_loadu_ps(mk[v], b + 16 * v);
            EC_UNROLL for (int i = 0; i < MR; i++) {
                const __m512 x = _mm512_set1_ps(*(const float *)EC_ROW(a0, a7, i));
                EC_UNROLL for (int v = 0; v < NV; v++) acc[i][v] = _mm512_fmadd_ps(x, bv[v], acc[i][v]);
            }
            a0 += sizeof(float);
            a7 += sizeof(float);
            b += sb;
        }
    } else {
        for (long p = 0; p < kc; p++) {
            _mm_prefetch((const char *)(pf + p * as), _MM_HINT_T0);  // the next tile's line
            __m512 bv[8];
            EC_UNROLL for (int v = 0; v < NV; v++) bv[v] = _mm512_maskz_loadu_ps(mk[v], b + 16 * v);
            EC_UNROLL for (int i = 0; i < MR; i++) {
                const __m512 x = _mm512_set1_ps(a[i]);
                EC_UNROLL for (int v = 0; v < NV; v++) acc[i][v] = _mm512_fmadd_ps(x, bv[v], acc[i][v]);
            }
            a += as;
            b += sb;
        }
    }
    const __m512 va = _mm512_set1_ps(alpha), vb = _mm512_set1_ps(beta);
    EC_UNROLL for (int i = 0; i < MR; i++)
        EC_UNROLL for (int v = 0; v < NV; v++) {
            float *cp = c + i * ldc + 16 * v;
            __m512 r = acc[i][v];
            if (scaled) {
                if (beta == 0.0f) r = _mm512_mul_ps(va, r);
                else r = _mm512_fmadd_ps(va, r, _mm512_mul_ps(vb, _mm512_maskz_loadu_ps(mk[v], cp)));
            }
            if (full) _mm512_storeu_ps(cp, r);
            else _mm512_mask_storeu_ps(cp, mk[v], r);
        }
}

#define EC_DEF_AVX512(MR, NV)                                                                                         \
    static EC_AVX512 void k5_r##MR##_##NV(long kc, const float *a, long as, const float *b, long sb, float *c,        \
                                          long ldc, int w, float alpha, float beta, const float *pf) {                \
        body_avx512(MR, NV, 1, kc, a, as, b, sb, c, ldc, w, alpha, beta, pf);                                         \
    }                                                                                                                 \
    static EC_AVX512 void k5_c##MR##_##NV(long kc, const float *a, long as, const float *b, long sb, float *c,        \
                                          long ldc, int w, float alpha, float beta, const float *pf) {                \
        body_avx512(MR, NV, 0, kc, a, as, b, sb, c, ldc, w, alpha, beta, pf);                                         \
    }
#define EC_DEF_AVX512_14(NV)                                                                                          \
    EC_DEF_AVX512(1, NV) EC_DEF_AVX512(2, NV) EC_DEF_AVX512(3, NV) EC_DEF_AVX512(4, NV) EC_DEF_AVX512(5, NV)          \
    EC_DEF_AVX512(6, NV) EC_DEF_AVX512(7, NV) EC_DEF_AVX512(8, NV) EC_DEF_AVX512(9, NV) EC_DEF_AVX512(10, NV)         \
    EC_DEF_AVX512(11, NV) EC_DEF_AVX512(12, NV) EC_DEF_AVX512(13, NV) EC_DEF_AVX512(14, NV)
EC_DEF_AVX512_14(1)
EC_DEF_AVX512_14(2)
EC_DEF_AVX512(1, 4) EC_DEF_AVX512(2, 4) EC_DEF_AVX512(3, 4) EC_DEF_AVX512(4, 4) EC_DEF_AVX512(5, 4)
EC_DEF_AVX512(6, 4)
EC_DEF_AVX512(1, 8) EC_DEF_AVX512(2, 8)

// MARK: - Packing op(B) from transposed storage (B stored n × k): 8 × 8 blocks transposed in
// AVX registers.

static EC_AVX2 void pack_bt_avx2(const float *b, long ldb, long kc, int w, int nr, float *dst) {
    long p = 0;
    int j = 0;
    for (; j + 8 <= w; j += 8) {
        const float *s = b + (long)j * ldb;
        for (p = 0; p + 8 <= kc; p += 8) {
            __m256 r0 = _mm256_loadu_ps(s + p), r1 = _mm256_loadu_ps(s + ldb + p);
            __m256 r2 = _mm256_loadu_ps(s + 2 * ldb + p), r3 = _mm256_loadu_ps(s + 3 * ldb + p);
            __m256 r4 = _mm256_loadu_ps(s + 4 * ldb + p), r5 = _mm256_loadu_ps(s + 5 * ldb + p);
            __m256 r6 = _mm256_loadu_ps(s + 6 * ldb + p), r7 = _mm256_loadu_ps(s + 7 * ldb + p);
            __m256 t0 = _mm256_unpacklo_ps(r0, r1), t1 = _mm256_unpackhi_ps(r0, r1);
            __m256 t2 = _mm256_unpacklo_ps(r2, r3), t3 = _mm256_unpackhi_ps(r2, r3);
            __m256 t4 = _mm256_unpacklo_ps(r4, r5), t5 = _mm256_unpackhi_ps(r4, r5);
            __m256 t6 = _mm256_unpacklo_ps(r6, r7), t7 = _mm256_unpackhi_ps(r6, r7);
            __m256 u0 = _mm256_shuffle_ps(t0, t2, 0x44), u1 = _mm256_shuffle_ps(t0, t2, 0xEE);
            __m256 u2 = _mm256_shuffle_ps(t1, t3, 0x44), u3 = _mm256_shuffle_ps(t1, t3, 0xEE);
            __m256 u4 = _mm256_shuffle_ps(t4, t6, 0x44), u5 = _mm256_shuffle_ps(t4, t6, 0xEE);
            __m256 u6 = _mm256_shuffle_ps(t5, t7, 0x44), u7 = _mm256_shuffle_ps(t5, t7, 0xEE);
            float *d = dst + p * nr + j;
            _mm256_storeu_ps(d, _mm256_permute2f128_ps(u0, u4, 0x20));
            _mm256_storeu_ps(d + nr, _mm256_permute2f128_ps(u1, u5, 0x20));
            _mm256_storeu_ps(d + 2 * nr, _mm256_permute2f128_ps(u2, u6, 0x20));
            _mm256_storeu_ps(d + 3 * nr, _mm256_permute2f128_ps(u3, u7, 0x20));
            _mm256_storeu_ps(d + 4 * nr, _mm256_permute2f128_ps(u0, u4, 0x31));
            _mm256_storeu_ps(d + 5 * nr, _mm256_permute2f128_ps(u1, u5, 0x31));
            _mm256_storeu_ps(d + 6 * nr, _mm256_permute2f128_ps(u2, u6, 0x31));
            _mm256_storeu_ps(d + 7 * nr, _mm256_permute2f128_ps(u3, u7, 0x31));
        }
        for (; p < kc; p++)
            for (int jj = 0; jj < 8; jj++) dst[p * nr + j + jj] = s[(long)jj * ldb + p];
    }
    for (; j < w; j++)
        for (p = 0; p < kc; p++) dst[p * nr + j] = b[(long)j * ldb + p];
}
#endif  // EC_X86

// MARK: - Paths

typedef struct {
    int vec;             // floats per vector
    int nvi_max;         // widest vector count is 1 << nvi_max
    int mr_max[4];       // rows of the kernels with 1, 2, 4, 8 vectors (0: none)
    int kc, mc, nc;      // cache blocking (nc a multiple of every tile width)
    ec_ukernel row[4][EC_MAX_MR + 1], col[4][EC_MAX_MR + 1];
} ec_path;

static const ec_path path_portable = {
    8, 0, {4, 0, 0, 0}, 256, 128, 1024,
    {{0, kp_r1, kp_r2, kp_r3, kp_r4}},
    {{0, kp_c1, kp_c2, kp_c3, kp_c4}},
};

#ifdef EC_X86
static const ec_path path_avx2 = {
    8, 3, {6, 6, 2, 1}, 384, 120, 1024,
    {{0, k2_r1_1, k2_r2_1, k2_r3_1, k2_r4_1, k2_r5_1, k2_r6_1},
     {0, k2_r1_2, k2_r2_2, k2_r3_2, k2_r4_2, k2_r5_2, k2_r6_2},
     {0, k2_r1_4, k2_r2_4},
     {0, k2_r1_8}},
    {{0, k2_c1_1, k2_c2_1, k2_c3_1, k2_c4_1, k2_c5_1, k2_c6_1},
     {0, k2_c1_2, k2_c2_2, k2_c3_2, k2_c4_2, k2_c5_2, k2_c6_2},
     {0, k2_c1_4, k2_c2_4},
     {0, k2_c1_8}},
};

#define EC_ROW14(NV) {0, k5_r1_##NV, k5_r2_##NV, k5_r3_##NV, k5_r4_##NV, k5_r5_##NV, k5_r6_##NV, k5_r7_##NV, \
    k5_r8_##NV, k5_r9_##NV, k5_r10_##NV, k5_r11_##NV, k5_r12_##NV, k5_r13_##NV, k5_r14_##NV}
#define EC_COL14(NV) {0, k5_c1_##NV, k5_c2_##NV, k5_c3_##NV, k5_c4_##NV, k5_c5_##NV, k5_c6_##NV, k5_c7_##NV, \
    k5_c8_##NV, k5_c9_##NV, k5_c10_##NV, k5_c11_##NV, k5_c12_##NV, k5_c13_##NV, k5_c14_##NV}
static const ec_path path_avx512 = {
    16, 3, {14, 14, 6, 2}, 384, 336, 1024,
    {EC_ROW14(1), EC_ROW14(2), {0, k5_r1_4, k5_r2_4, k5_r3_4, k5_r4_4, k5_r5_4, k5_r6_4}, {0, k5_r1_8, k5_r2_8}},
    {EC_COL14(1), EC_COL14(2), {0, k5_c1_4, k5_c2_4, k5_c3_4, k5_c4_4, k5_c5_4, k5_c6_4}, {0, k5_c1_8, k5_c2_8}},
};
#endif

static const ec_path *get_path(int path) {
#ifdef EC_X86
    if (path == EC_SGEMM_AVX512) return &path_avx512;
    if (path == EC_SGEMM_AVX2) return &path_avx2;
#endif
    return &path_portable;
}

int ec_sgemm_supported(int path) {
    if (path == EC_SGEMM_PORTABLE) return 1;
#ifdef EC_X86
    __builtin_cpu_init();
    if (path == EC_SGEMM_AVX2) return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
    if (path == EC_SGEMM_AVX512)
        return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
#endif
    return 0;
}

/// The main tile for a GEMM with m rows: the widest tile whose kernels cover m rows (small m
/// gets wide tiles, so a handful of rows still has enough independent accumulators).
static int main_nvi(const ec_path *P, long m) {
    for (int nvi = P->nvi_max; nvi > 1; nvi--)
        if (P->mr_max[nvi] > 0 && m <= P->mr_max[nvi]) return nvi;
    return P->nvi_max >= 1 ? 1 : 0;
}

static long ceil_div(long a, long b) { return (a + b - 1) / b; }

/// The k blocks: as few as KC allows, of equal size (a function of k and the path only).
static long block_k(const ec_path *P, long k) { return ceil_div(k, ceil_div(k, P->kc)); }

// MARK: - Scratch (per thread, grown on demand, kept for the thread's life)

static _Thread_local float *scratch_buffer;
static _Thread_local size_t scratch_floats;

static float *scratch(size_t floats) {
    if (floats > scratch_floats) {
        free(scratch_buffer);
        size_t bytes = (floats * sizeof(float) + 63) / 64 * 64;
        scratch_buffer = aligned_alloc(64, bytes);
        scratch_floats = scratch_buffer ? bytes / sizeof(float) : 0;
    }
    return scratch_buffer;
}

/// Packs op(B) rows [0, kc) × columns [0, w) of a sliver into dst (stride nr, zero-padded
/// to width nr). b points at op(B)[0][0] of the sliver.
static void pack_b(int path, int transB, const float *b, long ldb, long kc, int w, int nr, float *dst) {
    if (!transB) {  // a narrow edge sliver: a loop (a memcpy call per row costs more)
        for (long p = 0; p < kc; p++)
            for (int j = 0; j < nr; j++) dst[p * nr + j] = j < w ? b[p * ldb + j] : 0.0f;
        return;
    }
#ifdef EC_X86
    if (path != EC_SGEMM_PORTABLE) {
        pack_bt_avx2(b, ldb, kc, w, nr, dst);
    } else
#endif
    {
        (void)path;
        for (long p = 0; p < kc; p++)
            for (int j = 0; j < w; j++) dst[p * nr + j] = b[(long)j * ldb + p];
    }
    if (w < nr)
        for (long p = 0; p < kc; p++) memset(dst + p * nr + w, 0, (size_t)(nr - w) * sizeof(float));
}

/// Packs rows [0, mc) × columns [0, kc) of A (stored m × k) into panels of mr rows, each
/// p-major (panel r at dst + r·mr·kc, element (i, p) at p·mr + i; a last, shorter panel
/// keeps the stride mr).
static void pack_a(const float *a, long lda, long mc, long kc, int mr, float *dst) {
    for (long r = 0; r < mc; r += mr) {
        const int rows = (int)(mc - r < mr ? mc - r : mr);
        float *d = dst + r * kc;
        for (int i = 0; i < rows; i++) {
            const float *s = a + (r + i) * lda;
            for (long p = 0; p < kc; p++) d[p * mr + i] = s[p];
        }
    }
}

/// The scalar form of what the kernels compute, element by element: the same chain over p
/// (fused multiply-adds on the FMA paths, multiply then add on the portable one), the same
/// k blocks and the same epilogue. The fallback when a packing buffer cannot be allocated,
/// and the tests' bit-exact reference.
static void chain_rect(int path, int transA, int transB, long k, float alpha, const float *a, long lda,
                       const float *b, long ldb, float beta, float *c, long ldc, long m0, long m1, long n0,
                       long n1) {
    const int fused = path != EC_SGEMM_PORTABLE;
    const long kcb = block_k(get_path(path), k);
    for (long i = m0; i < m1; i++)
        for (long j = n0; j < n1; j++) {
            float *cij = c + i * ldc + j;
            for (long pc = 0; pc < k; pc += kcb) {
                const long pe = k - pc < kcb ? k : pc + kcb;
                const float beta_k = pc == 0 ? beta : 1.0f;
                float acc = 0.0f;
                if (alpha == 1.0f && beta_k != 0.0f) acc = beta_k == 1.0f ? *cij : beta_k * *cij;
                for (long p = pc; p < pe; p++) {
                    const float x = transA ? a[p * lda + i] : a[i * lda + p];
                    const float y = transB ? b[j * ldb + p] : b[p * ldb + j];
                    acc = fused ? fmaf(x, y, acc) : acc + x * y;
                }
                if (alpha != 1.0f) {
                    if (beta_k == 0.0f) acc = alpha * acc;
                    else acc = fused ? fmaf(alpha, acc, beta_k * *cij) : alpha * acc + beta_k * *cij;
                }
                *cij = acc;
            }
        }
}

void ec_sgemm_reference(int path, int transA, int transB, long m, long n, long k, float alpha, const float *a,
                        long lda, const float *b, long ldb, float beta, float *c, long ldc) {
    chain_rect(path, transA, transB, k, alpha, a, lda, b, ldb, beta, c, ldc, 0, m, 0, n);
}

void ec_sgemm(int path, int transA, int transB, long m, long n, long k, float alpha,
              const float *a, long lda, const float *b, long ldb, float beta, float *c, long ldc,
              long m0, long m1, long n0, long n1) {
    if (m1 <= m0 || n1 <= n0 || k <= 0) return;
    const ec_path *P = get_path(path);
    const int nvi = main_nvi(P, m);
    const int mr = P->mr_max[nvi], nr = P->vec << nvi;
    const long kcb = block_k(P, k);
    const long mcb = P->mc / mr * mr;
    const long ncb = P->nc;
    // op(B) is packed when stored transposed; otherwise read in place, except a last sliver
    // narrower than its kernel at the right edge of B (the kernel would read past B's end),
    // unless the kernels mask their loads of B (AVX-512: a masked load costs a plain one).
    const long width = n1 - n0 < ncb ? n1 - n0 : ncb;
    // A stored m × k is read in place by MR row streams, unless its rows are a multiple of
    // 2 KiB apart: then they share a few L1 sets (all of them one set at 4 KiB) and evict each
    // other, so blocks of A are packed (p-major, MR rows per panel) for the column kernels.
    const int packA = !transA && lda % 512 == 0 && k > 16;
    const size_t bfloats = (size_t)kcb * (size_t)(transB ? ceil_div(width, nr) * nr : nr);
    float *packed = scratch(bfloats + (packA ? (size_t)kcb * (size_t)mcb : 0));
    if (!packed) {  // no memory for a panel: the same results, slowly
        chain_rect(path, transA, transB, k, alpha, a, lda, b, ldb, beta, c, ldc, m0, m1, n0, n1);
        return;
    }
    float *apacked = packed + bfloats;
    for (long jc = n0; jc < n1; jc += ncb) {
        const long nc = n1 - jc < ncb ? n1 - jc : ncb;
        for (long pc = 0; pc < k; pc += kcb) {
            const long kc = k - pc < kcb ? k - pc : kcb;
            const float beta_k = pc == 0 ? beta : 1.0f;
            if (transB) {
                for (long jr = 0; jr < nc; jr += nr) {
                    const int w = (int)(nc - jr < nr ? nc - jr : nr);
                    pack_b(path, 1, b + (jc + jr) * ldb + pc, ldb, kc, w, nr, packed + jr * kc);
                }
            }
            for (long ic = m0; ic < m1; ic += mcb) {
                const long mc = m1 - ic < mcb ? m1 - ic : mcb;
                if (packA) pack_a(a + ic * lda + pc, lda, mc, kc, mr, apacked);
                for (long jr = 0; jr < nc; jr += nr) {
                    const int w = (int)(nc - jr < nr ? nc - jr : nr);
                    int vi = 0;
                    while ((P->vec << vi) < w) vi++;
                    const int kw = P->vec << vi;
                    const float *bp;
                    long sb;
                    if (transB) {
                        bp = packed + jr * kc;
                        sb = nr;
                    } else if (jc + jr + kw > n && path != EC_SGEMM_AVX512) {
                        if (ic == m0) pack_b(path, 0, b + pc * ldb + jc + jr, ldb, kc, w, kw, packed);
                        bp = packed;
                        sb = kw;
                    } else {
                        bp = b + pc * ldb + jc + jr;
                        sb = ldb;
                    }
                    float *cj = c + jc + jr;
                    for (long ir = 0; ir < mc; ir += mr) {
                        const int rows = (int)(mc - ir < mr ? mc - ir : mr);
                        const long i = ic + ir;
                        // Prefetch the A of the tile below (the block's first tile after its last).
                        const long next = ir + mr < mc ? i + mr : ic;
                        if (packA) {
                            P->col[vi][rows](kc, apacked + ir * kc, mr, bp, sb, cj + i * ldc, ldc, w, alpha, beta_k,
                                             apacked + (next - ic) * kc);
                        } else if (transA) {
                            const long last = next + mr - 1 < m ? next + mr - 1 : m - 1;  // its last column
                            P->col[vi][rows](kc, a + pc * lda + i, lda, bp, sb, cj + i * ldc, ldc, w, alpha, beta_k,
                                             a + pc * lda + last);
                        } else {
                            P->row[vi][rows](kc, a + i * lda + pc, lda, bp, sb, cj + i * ldc, ldc, w, alpha, beta_k,
                                             a + next * lda + pc);
                        }
                    }
                }
            }
        }
    }
}

int ec_sgemm_partition(int path, int transA, int transB, long m, long n, long k, int parts, long *ranges) {
    (void)transA;
    const ec_path *P = get_path(path);
    const int nvi = main_nvi(P, m);
    const long mr = P->mr_max[nvi], nr = P->vec << nvi, vec = P->vec;
    const long tm = ceil_div(m, mr), tv = ceil_div(n, vec);
    const long pm = parts < tm ? parts : tm, pn = parts < tv ? parts : tv;
    // Cost of the largest part in multiply-adds, plus what it reads (~4 multiply-adds per
    // float from a shared cache) and packs (~8 per float); against the same for one thread.
    double best = (double)m * n * k + 4.0 * (m * k + k * n) + (transB ? 8.0 * k * n : 0), cost;
    int split = 0;  // 0: none, 1: rows, 2: columns
    if (pm > 1) {
        const long rows = ceil_div(tm, pm) * mr;
        cost = (double)rows * n * k + 4.0 * (rows * k + k * n) + (transB ? 8.0 * k * n : 0);
        if (cost < best) { best = cost; split = 1; }
    }
    // Columns are split in whole vectors only under the 14- or 6-row tiles, where a narrower
    // tile keeps enough accumulators; the wide tiles of 1–6 rows are split in half tiles (a
    // product of one row, 1×128×3136, is bound by reading B: each thread reads half of it).
    const long half = nr / 2;
    if (pn > 1 && (nvi <= 1 || n >= 2 * half)) {
        long cols = ceil_div(tv, pn) * vec;
        if (nvi > 1) cols = ceil_div(cols, half) * half;
        else if (cols > nr) cols = ceil_div(cols, nr) * nr;
        cost = (double)m * cols * k + 4.0 * (m * k + k * cols) + (transB ? 8.0 * k * cols : 0);
        if (cost < best) { best = cost; split = 2; }
    }
    if (split == 1) {
        for (long t = 0; t < pm; t++) {
            long lo = tm * t / pm * mr, hi = tm * (t + 1) / pm * mr;
            ranges[4 * t] = lo; ranges[4 * t + 1] = hi < m ? hi : m;
            ranges[4 * t + 2] = 0; ranges[4 * t + 3] = n;
        }
        return (int)pm;
    }
    if (split == 2) {
        // Column parts in whole tiles where n allows, else whole vectors.
        const long unit = nvi > 1 ? half : tv >= pn * (nr / vec) ? nr : vec;
        const long tu = ceil_div(n, unit);
        const long p = pn < tu ? pn : tu;
        for (long t = 0; t < p; t++) {
            long lo = tu * t / p * unit, hi = tu * (t + 1) / p * unit;
            ranges[4 * t] = 0; ranges[4 * t + 1] = m;
            ranges[4 * t + 2] = lo; ranges[4 * t + 3] = hi < n ? hi : n;
        }
        return (int)p;
    }
    ranges[0] = 0; ranges[1] = m; ranges[2] = 0; ranges[3] = n;
    return 1;
}

// MARK: - Peak FMA throughput

static double now_seconds(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

#ifdef EC_X86
// 16 independent accumulators: enough to cover 2 FMA pipes × 4–5 cycles of latency.
static EC_AVX512 double peak_avx512(long iterations) {
    __m512 x[16];
    for (int i = 0; i < 16; i++) x[i] = _mm512_set1_ps(1.0f + 1e-7f * (float)i);
    const __m512 s = _mm512_set1_ps(0.9999999f), t = _mm512_set1_ps(1e-8f);
    for (long r = 0; r < iterations; r++) {
        for (int i = 0; i < 16; i++) x[i] = _mm512_fmadd_ps(x[i], s, t);
    }
    __m512 sum = x[0];
    for (int i = 1; i < 16; i++) sum = _mm512_add_ps(sum, x[i]);
    return (double)_mm512_reduce_add_ps(sum);
}

static EC_AVX2 double peak_avx2(long iterations) {
    __m256 x[12];
    for (int i = 0; i < 12; i++) x[i] = _mm256_set1_ps(1.0f + 1e-7f * (float)i);
    const __m256 s = _mm256_set1_ps(0.9999999f), t = _mm256_set1_ps(1e-8f);
    for (long r = 0; r < iterations; r++) {
        for (int i = 0; i < 12; i++) x[i] = _mm256_fmadd_ps(x[i], s, t);
    }
    __m256 sum = x[0];
    for (int i = 1; i < 12; i++) sum = _mm256_add_ps(sum, x[i]);
    float f[8];
    _mm256_storeu_ps(f, sum);
    return (double)(f[0] + f[7]);
}
#endif

volatile double ec_sgemm_peak_sink;

double ec_sgemm_measure_peak(int path, double seconds) {
#ifdef EC_X86
    if (path == EC_SGEMM_PORTABLE || !ec_sgemm_supported(path)) return 0;
    const int lanes = path == EC_SGEMM_AVX512 ? 16 : 8, accs = path == EC_SGEMM_AVX512 ? 16 : 12;
    long iterations = 1 << 16;
    double best = 0;
    const double start = now_seconds();
    while (now_seconds() - start < seconds) {
        const double t0 = now_seconds();
        ec_sgemm_peak_sink = path == EC_SGEMM_AVX512 ? peak_avx512(iterations) : peak_avx2(iterations);
        const double dt = now_seconds() - t0;
        const double rate = (double)iterations * accs * lanes * 2 / dt;
        if (rate > best) best = rate;
        if (dt < 2e-3) iterations *= 2;
    }
    return best;
#else
    (void)path; (void)seconds;
    return 0;
#endif
}
