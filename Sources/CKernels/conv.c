#include "conv.h"
#include "parallel.h"
#include "sgemm.h"
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#define EC_X86 1
#endif

// Forward (implicit GEMM). Output pixels are the GEMM's rows, output channels its columns, the
// patch index (ky, kx, ci) its inner dimension, as in im2col. A micro-kernel computes MR pixels
// of one output row × one sliver of output channels; its A row i is pixel ox0 + i, whose window
// is kh runs of kw·C contiguous floats of the (padded) input, all pixels of the tile a constant
// stride (sw·C) apart. So a tile's inner loop runs over "pieces" — (offset, length) runs of
// patch indices common to every row of the tile — with the same register blocking as sgemm.c's
// row kernels (A broadcast from two bases and three strides; op(B) = the HWIO kernel read in
// place, rows of Cout). Padding: the rows a block of output rows reads are first copied, with
// zero borders, into a per-thread buffer (no copy without padding).
//
// Epilogue: accumulators start at the bias (or 0, or C when a second k block continues a
// first), and the last k block applies ReLU / ReLU6 before the store. With pooling, a block of
// output rows is computed into a per-thread buffer and 2×2-max-pooled from it into y.

#pragma STDC FP_CONTRACT OFF

#define EC_INLINE static inline __attribute__((always_inline))
#if defined(__clang__)
#define EC_UNROLL _Pragma("clang loop unroll(full)")
#else
#define EC_UNROLL _Pragma("GCC unroll 16")
#endif
// Row i (< 14) from two bases (rows 0–6, rows 7–13) and byte strides L, L3 = 3L, L5 = 5L (as in
// sgemm.c: few general registers, one x86 addressing mode per row).
#define EC_ROW_OFFSET(i) ((i) == 0 ? 0 : (i) == 1 ? L : (i) == 2 ? 2 * L : (i) == 3 ? L3 : (i) == 4 ? 4 * L \
                          : (i) == 5 ? L5 : 2 * L3)
#define EC_ROW(base0, base7, i) ((i) < 7 ? (base0) + EC_ROW_OFFSET(i) : (base7) + EC_ROW_OFFSET((i) - 7))

/// A run of patch indices shared by every row of a tile: A row i reads a[i·as + off + t],
/// t = 0 ..< len, while op(B) advances one row per index.
typedef struct {
    long off, len;
} ec_piece;

enum { INIT_ZERO = 0, INIT_BIAS = 1, INIT_C = 2 };

/// One tile: MR rows × w ≤ NV vectors of columns; init says where the accumulators start, act
/// which activation the store applies.
typedef void (*ec_cukernel)(int np, const ec_piece *pieces, const float *a, long as, const float *b, long sb,
                            float *c, long ldc, int w, const float *bias, int init, int act);

static long ceil_div(long a, long b) { return (a + b - 1) / b; }

#ifdef EC_X86
#define EC_AVX2 __attribute__((target("avx2,fma")))
#define EC_AVX512 __attribute__((target("avx512f,avx2,fma")))

// MARK: - AVX-512 (14 × 32 tiles)

/// Swift's max(x, 0) = 0 ≥ x ? 0 : x (NaN stays NaN, −0 becomes +0).
EC_INLINE EC_AVX512 __m512 relu512(__m512 x) {
    const __m512 z = _mm512_setzero_ps();
    return _mm512_mask_mov_ps(x, _mm512_cmp_ps_mask(x, z, _CMP_LE_OQ), z);
}
/// Swift's min(max(x, 0), 6) = 6 < m ? 6 : m.
EC_INLINE EC_AVX512 __m512 relu6_512(__m512 x) {
    const __m512 m = relu512(x), six = _mm512_set1_ps(6.0f);
    return _mm512_mask_mov_ps(m, _mm512_cmp_ps_mask(m, six, _CMP_GT_OQ), six);
}
/// Swift's max(a, b) = b ≥ a ? b : a.
EC_INLINE EC_AVX512 __m512 max512(__m512 a, __m512 b) {
    return _mm512_mask_mov_ps(a, _mm512_cmp_ps_mask(b, a, _CMP_GE_OQ), b);
}

EC_INLINE EC_AVX512 void cbody512(const int MR, const int NV, const int ROWA, int np, const ec_piece *pc, const float *a,
                                  long as, const float *b, long sb, float *c, long ldc, int w, const float *bias, int init,
                                  int act) {
    __m512 acc[14][2];
    __mmask16 mk[2];
    EC_UNROLL for (int v = 0; v < NV; v++) {
        const int r = w - 16 * v;
        mk[v] = r >= 16 ? (__mmask16)0xFFFF : r <= 0 ? (__mmask16)0 : (__mmask16)((1u << r) - 1u);
    }
    if (init == INIT_C) {
        EC_UNROLL for (int i = 0; i < MR; i++)
            EC_UNROLL for (int v = 0; v < NV; v++) acc[i][v] = _mm512_maskz_loadu_ps(mk[v], c + i * ldc + 16 * v);
    } else if (init == INIT_BIAS) {
        EC_UNROLL for (int v = 0; v < NV; v++) {
            const __m512 t = _mm512_maskz_loadu_ps(mk[v], bias + 16 * v);
            EC_UNROLL for (int i = 0; i < MR; i++) acc[i][v] = t;
        }
    } else {
        EC_UNROLL for (int i = 0; i < MR; i++)
            EC_UNROLL for (int v = 0; v < NV; v++) acc[i][v] = _mm512_setzero_ps();
    }
    if (ROWA) {  // A(i, t) = a[i·as + off + t]
        const long L = as * (long)sizeof(float), L3 = 3 * L, L5 = 5 * L;
        for (int s = 0; s < np; s++) {
            const char *a0 = (const char *)(a + pc[s].off), *a7 = a0 + 7 * L;
            for (long p = pc[s].len; p > 0; p--) {
                __m512 bv[2];
                EC_UNROLL for (int v = 0; v < NV; v++) bv[v] = _mm512_maskz_loadu_ps(mk[v], b + 16 * v);
                EC_UNROLL for (int i = 0; i < MR; i++) {
                    const __m512 x = _mm512_set1_ps(*(const float *)EC_ROW(a0, a7, i));
                    EC_UNROLL for (int v = 0; v < NV; v++) acc[i][v] = _mm512_fmadd_ps(x, bv[v], acc[i][v]);
                }
                a0 += sizeof(float);
                a7 += sizeof(float);
                b += sb;
            }
        }
    } else {  // A(i, t) = a[off + t·as + i]
        for (int s = 0; s < np; s++) {
            const float *ap = a + pc[s].off;
            for (long p = pc[s].len; p > 0; p--) {
                __m512 bv[2];
                EC_UNROLL for (int v = 0; v < NV; v++) bv[v] = _mm512_maskz_loadu_ps(mk[v], b + 16 * v);
                EC_UNROLL for (int i = 0; i < MR; i++) {
                    const __m512 x = _mm512_set1_ps(ap[i]);
                    EC_UNROLL for (int v = 0; v < NV; v++) acc[i][v] = _mm512_fmadd_ps(x, bv[v], acc[i][v]);
                }
                ap += as;
                b += sb;
            }
        }
    }
    const int full = w >= 16 * NV;
    EC_UNROLL for (int i = 0; i < MR; i++)
        EC_UNROLL for (int v = 0; v < NV; v++) {
            __m512 r = acc[i][v];
            if (act == EC_ACT_RELU) r = relu512(r);
            else if (act == EC_ACT_RELU6) r = relu6_512(r);
            float *cp = c + i * ldc + 16 * v;
            if (full) _mm512_storeu_ps(cp, r);
            else _mm512_mask_storeu_ps(cp, mk[v], r);
        }
}

#define EC_DEF512(MR, NV)                                                                                             \
    static EC_AVX512 void kc5_##MR##_##NV(int np, const ec_piece *pc, const float *a, long as, const float *b,        \
                                          long sb, float *c, long ldc, int w, const float *bias, int init, int act) { \
        cbody512(MR, NV, 1, np, pc, a, as, b, sb, c, ldc, w, bias, init, act);                                        \
    }                                                                                                                 \
    static EC_AVX512 void kc5c_##MR##_##NV(int np, const ec_piece *pc, const float *a, long as, const float *b,       \
                                           long sb, float *c, long ldc, int w, const float *bias, int init, int act) {\
        cbody512(MR, NV, 0, np, pc, a, as, b, sb, c, ldc, w, bias, init, act);                                        \
    }
#define EC_DEF512_14(NV)                                                                                              \
    EC_DEF512(1, NV) EC_DEF512(2, NV) EC_DEF512(3, NV) EC_DEF512(4, NV) EC_DEF512(5, NV) EC_DEF512(6, NV)             \
    EC_DEF512(7, NV) EC_DEF512(8, NV) EC_DEF512(9, NV) EC_DEF512(10, NV) EC_DEF512(11, NV) EC_DEF512(12, NV)          \
    EC_DEF512(13, NV) EC_DEF512(14, NV)
EC_DEF512_14(1)
EC_DEF512_14(2)

/// Pools rows r, r+1 of a block buffer (width ow, cout channels per pixel) into one pooled row
/// and, when win is non-NULL, records each pooled value's winner (see ec_conv2d_forward).
static EC_AVX512 void pool_row512(const float *r0, long ow, long cout, float floor, float *out, uint8_t *win) {
    const float *r1 = r0 + ow * cout;
    const __m512 f = _mm512_set1_ps(floor), z = _mm512_setzero_ps();
    const __m512i c0 = _mm512_setzero_si512(), c1 = _mm512_set1_epi32(1), c2 = _mm512_set1_epi32(2);
    const __m512i c3 = _mm512_set1_epi32(3), c4 = _mm512_set1_epi32(4);
    const int relu = floor == 0.0f;
    for (long px = 0; px < ow / 2; px++) {
        const float *x0 = r0 + 2 * px * cout, *x1 = x0 + cout, *x2 = r1 + 2 * px * cout, *x3 = x2 + cout;
        float *o = out + px * cout;
        for (long ch = 0; ch < cout; ch += 16) {
            const __mmask16 k = cout - ch >= 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << (cout - ch)) - 1u);
            const __m512 v0 = _mm512_maskz_loadu_ps(k, x0 + ch), v1 = _mm512_maskz_loadu_ps(k, x1 + ch);
            const __m512 v2 = _mm512_maskz_loadu_ps(k, x2 + ch), v3 = _mm512_maskz_loadu_ps(k, x3 + ch);
            const __m512 m = max512(max512(max512(v0, v1), max512(v2, v3)), f);
            _mm512_mask_storeu_ps(o + ch, k, m);
            if (!win) continue;
            // The first position equal to the maximum (row-major), the fourth when none is; 4:
            // no gradient (the pool's ReLU clipped the maximum).
            __m512i code = c3;
            code = _mm512_mask_mov_epi32(code, _mm512_cmp_ps_mask(v2, m, _CMP_EQ_OQ), c2);
            code = _mm512_mask_mov_epi32(code, _mm512_cmp_ps_mask(v1, m, _CMP_EQ_OQ), c1);
            code = _mm512_mask_mov_epi32(code, _mm512_cmp_ps_mask(v0, m, _CMP_EQ_OQ), c0);
            if (relu) code = _mm512_mask_mov_epi32(code, _mm512_cmp_ps_mask(m, z, _CMP_LE_OQ), c4);
            _mm512_mask_cvtepi32_storeu_epi8(win + px * cout + ch, k, code);
        }
    }
}

// MARK: - AVX2 + FMA (6 × 16 tiles)

EC_INLINE EC_AVX2 __m256 relu256(__m256 x) {
    const __m256 z = _mm256_setzero_ps();
    return _mm256_blendv_ps(x, z, _mm256_cmp_ps(x, z, _CMP_LE_OQ));
}
EC_INLINE EC_AVX2 __m256 relu6_256(__m256 x) {
    const __m256 m = relu256(x), six = _mm256_set1_ps(6.0f);
    return _mm256_blendv_ps(m, six, _mm256_cmp_ps(m, six, _CMP_GT_OQ));
}
EC_INLINE EC_AVX2 __m256 max256(__m256 a, __m256 b) { return _mm256_blendv_ps(a, b, _mm256_cmp_ps(b, a, _CMP_GE_OQ)); }
EC_INLINE EC_AVX2 __m256i mask8(int r) {
    return _mm256_cmpgt_epi32(_mm256_set1_epi32(r), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
}

/// The inner loops of an AVX2 tile; FULL (a constant once inlined): every column is inside.
EC_INLINE EC_AVX2 void cloop256(const int MR, const int NV, const int ROWA, const int FULL, __m256 (*acc)[2],
                                const __m256i *mk, int np, const ec_piece *pc, const float *a, long as, const float *b,
                                long sb) {
    if (!ROWA) {  // A(i, t) = a[off + t·as + i]
        for (int s = 0; s < np; s++) {
            const float *ap = a + pc[s].off;
            for (long p = pc[s].len; p > 0; p--) {
                __m256 bv[2];
                EC_UNROLL for (int v = 0; v < NV; v++) bv[v] = FULL ? _mm256_loadu_ps(b + 8 * v) : _mm256_maskload_ps(b + 8 * v, mk[v]);
                EC_UNROLL for (int i = 0; i < MR; i++) {
                    const __m256 x = _mm256_broadcast_ss(ap + i);
                    EC_UNROLL for (int v = 0; v < NV; v++) acc[i][v] = _mm256_fmadd_ps(x, bv[v], acc[i][v]);
                }
                ap += as;
                b += sb;
            }
        }
        return;
    }
    const long L = as * (long)sizeof(float), L3 = 3 * L, L5 = 5 * L;
    for (int s = 0; s < np; s++) {
        const char *a0 = (const char *)(a + pc[s].off);
        for (long p = pc[s].len; p > 0; p--) {
            __m256 bv[2];
            EC_UNROLL for (int v = 0; v < NV; v++) bv[v] = FULL ? _mm256_loadu_ps(b + 8 * v) : _mm256_maskload_ps(b + 8 * v, mk[v]);
            EC_UNROLL for (int i = 0; i < MR; i++) {
                const __m256 x = _mm256_broadcast_ss((const float *)EC_ROW(a0, a0, i));
                EC_UNROLL for (int v = 0; v < NV; v++) acc[i][v] = _mm256_fmadd_ps(x, bv[v], acc[i][v]);
            }
            a0 += sizeof(float);
            b += sb;
        }
    }
}

EC_INLINE EC_AVX2 void cbody256(const int MR, const int NV, const int ROWA, int np, const ec_piece *pc, const float *a,
                                long as, const float *b, long sb, float *c, long ldc, int w, const float *bias, int init,
                                int act) {
    __m256 acc[6][2];
    __m256i mk[2];
    const int full = w >= 8 * NV;
    EC_UNROLL for (int v = 0; v < NV; v++) mk[v] = mask8(w - 8 * v);
    if (init == INIT_C) {
        EC_UNROLL for (int i = 0; i < MR; i++)
            EC_UNROLL for (int v = 0; v < NV; v++) acc[i][v] = _mm256_maskload_ps(c + i * ldc + 8 * v, mk[v]);
    } else if (init == INIT_BIAS) {
        EC_UNROLL for (int v = 0; v < NV; v++) {
            const __m256 t = _mm256_maskload_ps(bias + 8 * v, mk[v]);
            EC_UNROLL for (int i = 0; i < MR; i++) acc[i][v] = t;
        }
    } else {
        EC_UNROLL for (int i = 0; i < MR; i++)
            EC_UNROLL for (int v = 0; v < NV; v++) acc[i][v] = _mm256_setzero_ps();
    }
    if (full) cloop256(MR, NV, ROWA, 1, acc, mk, np, pc, a, as, b, sb);
    else cloop256(MR, NV, ROWA, 0, acc, mk, np, pc, a, as, b, sb);
    EC_UNROLL for (int i = 0; i < MR; i++)
        EC_UNROLL for (int v = 0; v < NV; v++) {
            __m256 r = acc[i][v];
            if (act == EC_ACT_RELU) r = relu256(r);
            else if (act == EC_ACT_RELU6) r = relu6_256(r);
            float *cp = c + i * ldc + 8 * v;
            if (full) _mm256_storeu_ps(cp, r);
            else _mm256_maskstore_ps(cp, mk[v], r);
        }
}

#define EC_DEF256(MR, NV)                                                                                             \
    static EC_AVX2 void kc2_##MR##_##NV(int np, const ec_piece *pc, const float *a, long as, const float *b,          \
                                        long sb, float *c, long ldc, int w, const float *bias, int init, int act) {   \
        cbody256(MR, NV, 1, np, pc, a, as, b, sb, c, ldc, w, bias, init, act);                                        \
    }                                                                                                                 \
    static EC_AVX2 void kc2c_##MR##_##NV(int np, const ec_piece *pc, const float *a, long as, const float *b,         \
                                         long sb, float *c, long ldc, int w, const float *bias, int init, int act) {  \
        cbody256(MR, NV, 0, np, pc, a, as, b, sb, c, ldc, w, bias, init, act);                                        \
    }
EC_DEF256(1, 1) EC_DEF256(2, 1) EC_DEF256(3, 1) EC_DEF256(4, 1) EC_DEF256(5, 1) EC_DEF256(6, 1)
EC_DEF256(1, 2) EC_DEF256(2, 2) EC_DEF256(3, 2) EC_DEF256(4, 2) EC_DEF256(5, 2) EC_DEF256(6, 2)

static EC_AVX2 void pool_row256(const float *r0, long ow, long cout, float floor, float *out, uint8_t *win) {
    const float *r1 = r0 + ow * cout;
    const __m256 f = _mm256_set1_ps(floor);
    const int relu = floor == 0.0f;
    for (long px = 0; px < ow / 2; px++) {
        const float *x0 = r0 + 2 * px * cout, *x1 = x0 + cout, *x2 = r1 + 2 * px * cout, *x3 = x2 + cout;
        float *o = out + px * cout;
        long ch = 0;
        for (; ch + 8 <= cout; ch += 8) {
            const __m256 m = max256(max256(_mm256_loadu_ps(x0 + ch), _mm256_loadu_ps(x1 + ch)),
                                    max256(_mm256_loadu_ps(x2 + ch), _mm256_loadu_ps(x3 + ch)));
            _mm256_storeu_ps(o + ch, max256(m, f));
        }
        for (; ch < cout; ch++) {
            const float a = x1[ch] >= x0[ch] ? x1[ch] : x0[ch], b = x3[ch] >= x2[ch] ? x3[ch] : x2[ch];
            const float m = b >= a ? b : a;
            o[ch] = floor >= m ? floor : m;
        }
        if (!win) continue;
        uint8_t *wp = win + px * cout;
        for (ch = 0; ch < cout; ch++) {  // winners (see pool_row512), scalar: training only
            const float m = o[ch];
            wp[ch] = relu && m <= 0 ? 4 : x0[ch] == m ? 0 : x1[ch] == m ? 1 : x2[ch] == m ? 2 : 3;
        }
    }
}
#endif  // EC_X86

// MARK: - Paths

typedef struct {
    int vec;                  // floats per vector
    int mr[3];                // rows of the kernels with 1 and 2 vectors (index 1, 2)
    long kc;                  // k block
    ec_cukernel k[3][15];     // row kernels (A row i at a + i·as) [vectors][rows]
    ec_cukernel kcol[3][15];  // column kernels (A row i at a + i, step t at + t·as)
    void (*pool_row)(const float *, long, long, float, float *, uint8_t *);
} ec_cpath;

#ifdef EC_X86
#define EC_K512(P, NV) {0, P##1_##NV, P##2_##NV, P##3_##NV, P##4_##NV, P##5_##NV, P##6_##NV, P##7_##NV, \
    P##8_##NV, P##9_##NV, P##10_##NV, P##11_##NV, P##12_##NV, P##13_##NV, P##14_##NV}
#define EC_K256(P, NV) {0, P##1_##NV, P##2_##NV, P##3_##NV, P##4_##NV, P##5_##NV, P##6_##NV}
static const ec_cpath cpath_avx512 = {16, {0, 14, 14}, 384, {{0}, EC_K512(kc5_, 1), EC_K512(kc5_, 2)},
                                      {{0}, EC_K512(kc5c_, 1), EC_K512(kc5c_, 2)}, pool_row512};
static const ec_cpath cpath_avx2 = {8, {0, 6, 6}, 384, {{0}, EC_K256(kc2_, 1), EC_K256(kc2_, 2)},
                                    {{0}, EC_K256(kc2c_, 1), EC_K256(kc2c_, 2)}, pool_row256};
#endif

static const ec_cpath *get_cpath(int path) {
#ifdef EC_X86
    if (path == EC_SGEMM_AVX512 && ec_sgemm_supported(path)) return &cpath_avx512;
    if (path == EC_SGEMM_AVX2 && ec_sgemm_supported(path)) return &cpath_avx2;
#endif
    (void)path;
    return NULL;
}

int ec_conv2d_supported(int path) { return get_cpath(path) != NULL; }

// MARK: - Scratch (per thread, grown on demand, kept for the thread's life)

static _Thread_local float *conv_scratch;
static _Thread_local size_t conv_scratch_floats;

/// A buffer of this thread's, at least `floats` long (its contents are not kept).
static float *grow(float **buffer, size_t *capacity, size_t floats) {
    if (floats > *capacity) {
        free(*buffer);
        size_t bytes = (floats * sizeof(float) + 63) / 64 * 64;
        *buffer = aligned_alloc(64, bytes);
        *capacity = *buffer ? bytes / sizeof(float) : 0;
    }
    return *buffer;
}

/// The forward kernels' buffer (padded input rows, rows to pool).
static float *scratch(size_t floats) { return grow(&conv_scratch, &conv_scratch_floats, floats); }

// The caller's buffers of the weight gradient (im2col chunks) and the input gradient (the
// flipped kernel), which the pool's workers read while the caller's forward scratch is in use.
static _Thread_local float *col_scratch, *flip_scratch;
static _Thread_local size_t col_scratch_floats, flip_scratch_floats;

// MARK: - Forward

typedef struct {
    const ec_cpath *P;
    const ec_conv2d_shape *s;
    const float *x, *w, *bias;
    float *y;
    uint8_t *winners;
    int act, pool;
    float floor;
    long rows_per_block;    // output rows per block (even when pooling)
    long blocks_per_image;
    long blocks, parts;
    long kg, cig, cog, wp;  // patch per group, channels per group in / out, padded row width (pixels)
    long nkb, kcb;          // k blocks and their size
    int padded;
} fwd_ctx;

/// The pieces of k block [k0, k1) of group g: offsets relative to a window's first input.
static int make_pieces(const fwd_ctx *f, long g, long k0, long k1, ec_piece *out) {
    const ec_conv2d_shape *s = f->s;
    const long c = s->channels, wpc = f->wp * c;
    int np = 0;
    if (s->groups == 1) {  // kernel row ky: kw·C contiguous floats
        const long run = s->kernel_width * c;
        for (long ky = 0; ky < s->kernel_height; ky++) {
            const long lo = ky * run > k0 ? ky * run : k0, hi = (ky + 1) * run < k1 ? (ky + 1) * run : k1;
            if (lo < hi) out[np++] = (ec_piece){ky * wpc + (lo - ky * run), hi - lo};
        }
    } else {  // tap (ky, kx): the group's cig channels
        const long cig = f->cig;
        for (long t = 0; t < s->kernel_height * s->kernel_width; t++) {
            const long ky = t / s->kernel_width, kx = t % s->kernel_width;
            const long lo = t * cig > k0 ? t * cig : k0, hi = (t + 1) * cig < k1 ? (t + 1) * cig : k1;
            if (lo < hi) out[np++] = (ec_piece){ky * wpc + kx * c + g * cig + (lo - t * cig), hi - lo};
        }
    }
    return np;
}

/// Output rows [r0, r1) of image n: their input rows, padded, into buf (or pointers into x).
/// Returns the address of the window origin of output pixel (r0, 0).
static const float *input_rows(const fwd_ctx *f, long n, long r0, long r1, float *buf) {
    const ec_conv2d_shape *s = f->s;
    const long c = s->channels, rowf = s->width * c;
    const long iy0 = r0 * s->stride_height - s->pad_top;
    if (!f->padded) return f->x + ((n * s->height + iy0) * s->width) * c;
    const long count = (r1 - 1 - r0) * s->stride_height + s->kernel_height, wpc = f->wp * c;
    const long left = s->pad_left * c, right = wpc - left - rowf;
    for (long r = 0; r < count; r++) {
        const long iy = iy0 + r;
        float *d = buf + r * wpc;
        if (iy < 0 || iy >= s->height) {
            memset(d, 0, (size_t)wpc * sizeof(float));
            continue;
        }
        if (left) memset(d, 0, (size_t)left * sizeof(float));
        memcpy(d + left, f->x + (n * s->height + iy) * rowf, (size_t)rowf * sizeof(float));
        if (right > 0) memset(d + left + rowf, 0, (size_t)right * sizeof(float));
    }
    return buf;
}

/// Output rows [r0, r1) of image n into out (rows of OW·Cout floats).
static void forward_block(const fwd_ctx *f, long n, long r0, long r1, const float *a, float *out) {
    const ec_conv2d_shape *s = f->s;
    const ec_cpath *P = f->P;
    const long c = s->channels, cout = s->out_channels, ow = s->out_width;
    const long rowstride = s->stride_height * f->wp * c, as = s->stride_width * c;
    const long nr = 2 * P->vec, mr = P->mr[2];
    ec_piece pieces[s->kernel_height * s->kernel_width + 2];  // one per tap (or kernel row), plus a cut
    for (long g = 0; g < s->groups; g++) {
        for (long kb = 0; kb < f->nkb; kb++) {
            const long k0 = kb * f->kcb, k1 = k0 + f->kcb < f->kg ? k0 + f->kcb : f->kg;
            const int np = make_pieces(f, g, k0, k1, pieces);
            const int init = kb > 0 ? INIT_C : f->bias ? INIT_BIAS : INIT_ZERO;
            const int act = kb == f->nkb - 1 ? f->act : EC_ACT_NONE;
            for (long jr = 0; jr < f->cog; jr += nr) {
                const int w = (int)(f->cog - jr < nr ? f->cog - jr : nr);
                const int nv = w > P->vec ? 2 : 1;
                const float *b = f->w + k0 * cout + g * f->cog + jr;
                const float *bias = f->bias ? f->bias + g * f->cog + jr : NULL;
                for (long oy = r0; oy < r1; oy++) {
                    const float *arow = a + (oy - r0) * rowstride;
                    float *crow = out + (oy - r0) * ow * cout + g * f->cog + jr;
                    for (long ox = 0; ox < ow; ox += mr) {
                        const long rows = ow - ox < mr ? ow - ox : mr;
                        P->k[nv][rows](np, pieces, arow + ox * as, as, b, cout, crow + ox * cout, cout, w, bias, init, act);
                    }
                }
            }
        }
    }
}

static void forward_part(void *ctx, int part) {
    const fwd_ctx *f = ctx;
    const ec_conv2d_shape *s = f->s;
    const long b0 = f->blocks * part / f->parts, b1 = f->blocks * (part + 1) / f->parts;
    const long c = s->channels, cout = s->out_channels, ow = s->out_width, rb = f->rows_per_block;
    const long rows_used = f->pool ? s->out_height / 2 * 2 : s->out_height;
    const size_t in_floats = f->padded ? (size_t)((rb - 1) * s->stride_height + s->kernel_height) * (size_t)(f->wp * c) : 0;
    const size_t out_floats = f->pool ? (size_t)(rb * ow * cout) : 0;
    float *buf = scratch(in_floats + out_floats);
    if (!buf && in_floats + out_floats > 0) abort();  // no memory for a few rows: nothing sensible to do
    float *pooled_rows = buf + in_floats;
    for (long blk = b0; blk < b1; blk++) {
        const long n = blk / f->blocks_per_image, r0 = blk % f->blocks_per_image * rb;
        const long r1 = r0 + rb < rows_used ? r0 + rb : rows_used;
        const float *a = input_rows(f, n, r0, r1, buf);
        if (!f->pool) {
            forward_block(f, n, r0, r1, a, f->y + ((n * s->out_height + r0) * ow) * cout);
            continue;
        }
        forward_block(f, n, r0, r1, a, pooled_rows);
        const long ph = s->out_height / 2, pw = ow / 2;
        for (long r = r0; r < r1; r += 2) {
            const long at = ((n * ph + r / 2) * pw) * cout;
            f->P->pool_row(pooled_rows + (r - r0) * ow * cout, ow, cout, f->floor, f->y + at,
                           f->winners ? f->winners + at : NULL);
        }
    }
}

static void conv_forward(int path, int threads, const ec_conv2d_shape *s, const float *x, const float *w,
                         const float *bias, float *y, int act, const float *pool_floor, uint8_t *winners);

void ec_conv2d_forward(int path, int threads, const ec_conv2d_shape *s, const float *x, const float *w,
                       const float *bias, float *y, int act, const float *pool_floor) {
    conv_forward(path, threads, s, x, w, bias, y, act, pool_floor, NULL);
}

void ec_conv2d_forward_pool_winners(int path, int threads, const ec_conv2d_shape *s, const float *x, const float *w,
                                    const float *bias, float *y, int act, float pool_floor, uint8_t *winners) {
    conv_forward(path, threads, s, x, w, bias, y, act, &pool_floor, winners);
}

static void conv_forward(int path, int threads, const ec_conv2d_shape *s, const float *x, const float *w,
                         const float *bias, float *y, int act, const float *pool_floor, uint8_t *winners) {
    fwd_ctx f = {0};
    f.P = get_cpath(path);
    if (!f.P) abort();  // the caller checks ec_conv2d_supported
    f.s = s; f.x = x; f.w = w; f.bias = bias; f.y = y; f.act = act; f.winners = winners;
    f.pool = pool_floor != NULL;
    f.floor = pool_floor ? *pool_floor : 0;
    f.cig = s->channels / s->groups;
    f.cog = s->out_channels / s->groups;
    f.kg = s->kernel_height * s->kernel_width * f.cig;
    f.padded = s->pad_top || s->pad_bottom || s->pad_left || s->pad_right;
    f.wp = s->width + s->pad_left + s->pad_right;
    if (!f.padded) f.wp = s->width;
    f.nkb = ceil_div(f.kg, f.P->kc);
    f.kcb = ceil_div(f.kg, f.nkb);
    const long rows_used = f.pool ? s->out_height / 2 * 2 : s->out_height;
    if (rows_used <= 0 || s->out_width <= 0 || s->batch <= 0) return;
    // Blocks of output rows: ≥ 4 tiles of pixels each (op(B)'s sliver is reused across them),
    // fewer when that leaves too few blocks for the threads.
    const long step = f.pool ? 2 : 1;
    long rb = ceil_div(4 * f.P->mr[2], s->out_width);
    rb = ceil_div(rb, step) * step;
    if (rb > rows_used) rb = rows_used;
    while (threads > 1 && rb > step && s->batch * ceil_div(rows_used, rb) < 4 * threads) rb -= step;
    f.rows_per_block = rb;
    f.blocks_per_image = ceil_div(rows_used, rb);
    f.blocks = s->batch * f.blocks_per_image;
    const double macs = (double)s->batch * (double)rows_used * (double)s->out_width * (double)f.kg * (double)s->out_channels;
    long parts = threads < 1 ? 1 : threads;
    if (macs < (double)(1 << 18)) parts = 1;  // ~2 µs of work: not worth a hand-off
    if (parts > f.blocks) parts = f.blocks;
    f.parts = parts;
    ec_parallel_for((int)parts, (int)parts, forward_part, &f);
}

// MARK: - Input gradient (stride 1): the forward kernel on dy with the flipped kernel

int ec_conv2d_input_gradient_supported(int path, const ec_conv2d_shape *s) {
    return get_cpath(path) != NULL && s->stride_height == 1 && s->stride_width == 1 &&
           s->pad_top < s->kernel_height && s->pad_bottom < s->kernel_height && s->pad_left < s->kernel_width &&
           s->pad_right < s->kernel_width;
}

void ec_conv2d_input_gradient(int path, int threads, const ec_conv2d_shape *s, const float *dy, const float *w,
                              float *dx) {
    const long kh = s->kernel_height, kw = s->kernel_width, cin = s->channels, cout = s->out_channels;
    const long groups = s->groups, cig = cin / groups, cog = cout / groups;
    // w' [kh, kw, cog, cin]: w'[ky', kx', co, g·cig + ci] = w[kh−1−ky', kw−1−kx', ci, g·cog + co]. Kept
    // in a buffer of its own (the workers use their own scratch).
    float *wt = grow(&flip_scratch, &flip_scratch_floats, (size_t)(kh * kw * cog * cin));
    if (!wt) abort();
    for (long ky = 0; ky < kh; ky++)
        for (long kx = 0; kx < kw; kx++) {
            const float *src = w + ((kh - 1 - ky) * kw + (kw - 1 - kx)) * cig * cout;
            float *dst = wt + (ky * kw + kx) * cog * cin;
            for (long g = 0; g < groups; g++)
                for (long ci = 0; ci < cig; ci++)
                    for (long co = 0; co < cog; co++) dst[co * cin + g * cig + ci] = src[ci * cout + g * cog + co];
        }
    ec_conv2d_shape t = {
        .batch = s->batch, .height = s->out_height, .width = s->out_width, .channels = cout,
        .kernel_height = kh, .kernel_width = kw, .out_channels = cin, .groups = groups,
        .stride_height = 1, .stride_width = 1,
        .pad_top = kh - 1 - s->pad_top, .pad_bottom = kh - 1 - s->pad_bottom,
        .pad_left = kw - 1 - s->pad_left, .pad_right = kw - 1 - s->pad_right,
        .out_height = s->height, .out_width = s->width,
    };
    ec_conv2d_forward(path, threads, &t, dy, wt, NULL, dx, EC_ACT_NONE, NULL);
}

// MARK: - Weight gradient: im2col a chunk of pixels at a time, then ec_sgemm(transA)

/// Copies n floats; a run of at most 16 (a 3×3 kernel row on one channel is 3) with moves of a
/// constant size — a loop would be turned into a memcpy call, which costs more than the copy.
static inline void copy_floats(float *d, const float *src, long n) {
#define EC_COPY_CASE(k) case k: memcpy(d, src, k * sizeof(float)); return;
    switch (n) {
        EC_COPY_CASE(1) EC_COPY_CASE(2) EC_COPY_CASE(3) EC_COPY_CASE(4) EC_COPY_CASE(5) EC_COPY_CASE(6)
        EC_COPY_CASE(7) EC_COPY_CASE(8) EC_COPY_CASE(9) EC_COPY_CASE(10) EC_COPY_CASE(11) EC_COPY_CASE(12)
        EC_COPY_CASE(13) EC_COPY_CASE(14) EC_COPY_CASE(15) EC_COPY_CASE(16)
        default: memcpy(d, src, (size_t)n * sizeof(float));
    }
#undef EC_COPY_CASE
}

/// Zeroes n floats (constant-size stores for runs of at most 16, as copy_floats).
static inline void zero_floats(float *d, long n) {
    static const float zeros[16];
    if (n <= 16) copy_floats(d, zeros, n);
    else memset(d, 0, (size_t)n * sizeof(float));
}

/// Image n of x with its zero padding ([H + top + bottom, W + left + right, C]) into buf.
static void pad_image(const ec_conv2d_shape *s, const float *x, long n, float *buf) {
    const long c = s->channels, wp = s->width + s->pad_left + s->pad_right, hp = s->height + s->pad_top + s->pad_bottom;
    const long rowf = s->width * c, left = s->pad_left * c, right = s->pad_right * c;
    for (long r = 0; r < hp; r++) {
        float *d = buf + r * wp * c;
        const long iy = r - s->pad_top;
        if (iy < 0 || iy >= s->height) {
            memset(d, 0, (size_t)(wp * c) * sizeof(float));
            continue;
        }
        zero_floats(d, left);
        memcpy(d + left, x + (n * s->height + iy) * rowf, (size_t)rowf * sizeof(float));
        zero_floats(d + left + rowf, right);
    }
}

/// Rows [first, first + count) of the im2col matrix of x (row: group after group, each in
/// (ky, kx, ci) order; zeros where the window is in the padding) into col. Each image is
/// first copied with its padding (into pad, when there is any), so that every window's rows
/// are plain runs of memory.
static void im2col_rows(const ec_conv2d_shape *s, const float *x, long first, long count, float *col, float *pad) {
    const long c = s->channels, groups = s->groups, cg = c / groups, kw = s->kernel_width, kh = s->kernel_height;
    const long oh = s->out_height, ow = s->out_width, sh = s->stride_height, sw = s->stride_width;
    const int padded = s->pad_top || s->pad_bottom || s->pad_left || s->pad_right;
    const long wpc = (s->width + s->pad_left + s->pad_right) * c, imagef = s->height * s->width * c;
    const long patch = kh * kw * c, run = kw * cg;
    long n = first / (oh * ow), oy = first % (oh * ow) / ow, ox = first % ow;
    const float *image = NULL;
    long imaged = -1;
    for (long r = 0; r < count; r++) {
        if (n != imaged) {
            if (padded) pad_image(s, x, n, pad);
            image = padded ? pad : x + n * imagef;
            imaged = n;
        }
        const float *window = image + oy * sh * wpc + ox * sw * c;
        float *dst = col + r * patch;
        if (groups == 1 && kh == 3 && run == 3) {  // a 3×3 kernel on one channel (a first layer)
            memcpy(dst, window, 12);
            memcpy(dst + 3, window + wpc, 12);
            memcpy(dst + 6, window + 2 * wpc, 12);
        } else if (groups == 1) {
            for (long ky = 0; ky < kh; ky++) copy_floats(dst + ky * run, window + ky * wpc, run);
        } else {
            for (long g = 0; g < groups; g++)
                for (long ky = 0; ky < kh; ky++)
                    for (long kx = 0; kx < kw; kx++) copy_floats(dst + (g * kh + ky) * run + kx * cg, window + ky * wpc + kx * c + g * cg, cg);
        }
        if (++ox == ow) {
            ox = 0;
            if (++oy == oh) { oy = 0; n++; }
        }
    }
}

// In place: when a tile's patch indices fit in one contiguous run of the window (kw·C floats of a
// kernel row, or a tap's C/groups channels), column kernels read A straight from the padded
// image: A(i, pixel) = image[window(pixel) + tile offset + i], the pixels of an output row a
// constant stride apart (one piece per output row). Tiles of dW × slivers of Cout are split
// between threads; each thread walks all pixels in order (the same chain as the GEMM).

typedef struct {
    const ec_cpath *P;
    const ec_conv2d_shape *s;
    const float *x, *dy;
    float *dw;
    long cig, cog, run, wpc, tiles_per_run, tiles, slivers, rows_per_block, units, parts;
    int padded;
} wgrad_ctx;

static void wgrad_part(void *ctx, int part) {
    const wgrad_ctx *f = ctx;
    const ec_conv2d_shape *s = f->s;
    const ec_cpath *P = f->P;
    const long u0 = f->units * part / f->parts, u1 = f->units * (part + 1) / f->parts;
    const long c = s->channels, cout = s->out_channels, oh = s->out_height, ow = s->out_width, mr = P->mr[2];
    const long nr = 2 * P->vec, as = s->stride_width * c, rb = f->rows_per_block;
    const size_t padf = (size_t)((s->height + s->pad_top + s->pad_bottom) * f->wpc);
    float *buf = f->padded ? scratch(padf) : NULL;
    if (f->padded && !buf) abort();
    ec_piece pieces[rb];
    for (long n = 0; n < s->batch; n++) {
        const float *image = f->x + n * s->height * s->width * c;
        if (f->padded) {
            pad_image(s, f->x, n, buf);
            image = buf;
        }
        for (long oy0 = 0; oy0 < oh; oy0 += rb) {
            const int np = (int)(oh - oy0 < rb ? oh - oy0 : rb);
            for (int r = 0; r < np; r++) pieces[r] = (ec_piece){(oy0 + r) * s->stride_height * f->wpc, ow};
            const int init = n == 0 && oy0 == 0 ? INIT_ZERO : INIT_C;
            const float *b = f->dy + (n * oh + oy0) * ow * cout;
            for (long u = u0; u < u1; u++) {
                const long g = u / (f->tiles * f->slivers), t = u / f->slivers % f->tiles, jr = u % f->slivers * nr;
                const long q = t / f->tiles_per_run, i0 = t % f->tiles_per_run * mr;  // run q, its rows i0 ..
                const long rows = f->run - i0 < mr ? f->run - i0 : mr;
                long off, row;  // the tile's offset in a window; its first row of dW (group-local patch index)
                if (s->groups == 1) {
                    off = q * f->wpc + i0;
                    row = q * f->run + i0;
                } else {
                    off = (q / s->kernel_width) * f->wpc + (q % s->kernel_width) * c + g * f->cig + i0;
                    row = q * f->cig + i0;
                }
                const int w = (int)(f->cog - jr < nr ? f->cog - jr : nr);
                P->kcol[w > P->vec ? 2 : 1][rows](np, pieces, image + off, as, b + g * f->cog + jr, cout,
                                                  f->dw + row * cout + g * f->cog + jr, cout, w, NULL, init, EC_ACT_NONE);
            }
        }
    }
}

/// Whether the weight gradient reads the input in place (tiles fit in the window's runs).
static int weight_gradient_in_place(const ec_cpath *P, const ec_conv2d_shape *s) {
    const long run = s->groups == 1 ? s->kernel_width * s->channels : s->channels / s->groups;
    return P && run >= P->mr[2];
}

void ec_conv2d_weight_gradient(int path, int threads, const ec_conv2d_shape *s, const float *x, const float *dy,
                               float *dw) {
    const ec_cpath *P = get_cpath(path);
    if (weight_gradient_in_place(P, s)) {
        wgrad_ctx f = {0};
        f.P = P; f.s = s; f.x = x; f.dy = dy; f.dw = dw;
        f.cig = s->channels / s->groups;
        f.cog = s->out_channels / s->groups;
        f.run = s->groups == 1 ? s->kernel_width * s->channels : f.cig;
        f.padded = s->pad_top || s->pad_bottom || s->pad_left || s->pad_right;
        f.wpc = (s->width + s->pad_left + s->pad_right) * s->channels;
        f.tiles_per_run = ceil_div(f.run, P->mr[2]);
        f.tiles = f.tiles_per_run * (s->groups == 1 ? s->kernel_height : s->kernel_height * s->kernel_width);
        f.slivers = ceil_div(f.cog, 2 * P->vec);
        f.units = s->groups * f.tiles * f.slivers;
        f.rows_per_block = ceil_div(P->kc, s->out_width);  // ~ one k block of pixels
        const double macs = (double)s->batch * s->out_height * s->out_width * s->kernel_height * s->kernel_width * f.cig *
                            s->out_channels;
        long parts = threads < 1 || macs < (double)(1 << 18) ? 1 : threads;
        if (parts > f.units) parts = f.units;
        f.parts = parts;
        ec_parallel_for((int)parts, (int)parts, wgrad_part, &f);
        return;
    }
    const long c = s->channels, cout = s->out_channels, groups = s->groups;
    const long patch = s->kernel_height * s->kernel_width * c, kg = patch / groups, cog = cout / groups;
    const long rows = s->batch * s->out_height * s->out_width;
    // Chunks of ≥ 384 pixels (one k block of the kernels) and ~256 KiB of patches (in L2).
    long chunk = (1L << 16) / patch;
    if (chunk < 384) chunk = 384;
    if (chunk > rows) chunk = rows;
    const size_t padf = (size_t)((s->height + s->pad_top + s->pad_bottom) * (s->width + s->pad_left + s->pad_right) * c);
    float *col = grow(&col_scratch, &col_scratch_floats, (size_t)(chunk * patch) + padf);
    if (!col) abort();
    float *pad = col + chunk * patch;
    for (long first = 0; first < rows; first += chunk) {
        const long count = rows - first < chunk ? rows - first : chunk;
        im2col_rows(s, x, first, count, col, pad);
        // (Below ~2 µs of work a GEMM stays on the calling thread, as FP32Kernels.multiply does.)
        const int t = (double)kg * (double)cog * (double)count < (double)(1 << 18) ? 1 : threads;
        for (long g = 0; g < groups; g++)
            ec_sgemm_parallel(path, t, 1, 0, kg, cog, count, 1.0f, col + g * kg, patch, dy + first * cout + g * cog,
                              cout, first == 0 ? 0.0f : 1.0f, dw + g * cog, cout);
    }
}

// MARK: - 2×2 max pool backward

#ifdef EC_X86
/// One pooled row: inputs x0 (window row 0) and x1 (window row 1), dx likewise.
static EC_AVX512 void pool_back_row512(const float *x0, const float *x1, const float *m, const float *g, float *d0,
                                       float *d1, long pw, long c, int relu) {
    const __m512 z = _mm512_setzero_ps();
    for (long px = 0; px < pw; px++) {
        const long o = px * c, i = 2 * px * c;
        for (long ch = 0; ch < c; ch += 16) {
            const __mmask16 k = c - ch >= 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << (c - ch)) - 1u);
            const __m512 mv = _mm512_maskz_loadu_ps(k, m + o + ch);
            __m512 v = _mm512_maskz_loadu_ps(k, g + o + ch);
            if (relu) v = _mm512_mask_mov_ps(v, _mm512_cmp_ps_mask(mv, z, _CMP_LE_OQ), z);
            const __mmask16 h0 = _mm512_cmp_ps_mask(_mm512_maskz_loadu_ps(k, x0 + i + ch), mv, _CMP_EQ_OQ);
            const __mmask16 h1 = _mm512_cmp_ps_mask(_mm512_maskz_loadu_ps(k, x0 + i + c + ch), mv, _CMP_EQ_OQ) & ~h0;
            const __mmask16 h2 = _mm512_cmp_ps_mask(_mm512_maskz_loadu_ps(k, x1 + i + ch), mv, _CMP_EQ_OQ) & ~(h0 | h1);
            const __mmask16 h3 = ~(h0 | h1 | h2);
            _mm512_mask_storeu_ps(d0 + i + ch, k, _mm512_maskz_mov_ps(h0, v));
            _mm512_mask_storeu_ps(d0 + i + c + ch, k, _mm512_maskz_mov_ps(h1, v));
            _mm512_mask_storeu_ps(d1 + i + ch, k, _mm512_maskz_mov_ps(h2, v));
            _mm512_mask_storeu_ps(d1 + i + c + ch, k, _mm512_maskz_mov_ps(h3, v));
        }
    }
}

static EC_AVX2 void pool_back_row256(const float *x0, const float *x1, const float *m, const float *g, float *d0,
                                     float *d1, long pw, long c, int relu) {
    const __m256 z = _mm256_setzero_ps(), ones = _mm256_castsi256_ps(_mm256_set1_epi32(-1));
    for (long px = 0; px < pw; px++) {
        const long o = px * c, i = 2 * px * c;
        long ch = 0;
        for (; ch + 8 <= c; ch += 8) {
            const __m256 mv = _mm256_loadu_ps(m + o + ch);
            __m256 v = _mm256_loadu_ps(g + o + ch);
            if (relu) v = _mm256_andnot_ps(_mm256_cmp_ps(mv, z, _CMP_LE_OQ), v);
            const __m256 h0 = _mm256_cmp_ps(_mm256_loadu_ps(x0 + i + ch), mv, _CMP_EQ_OQ);
            const __m256 h1 = _mm256_andnot_ps(h0, _mm256_cmp_ps(_mm256_loadu_ps(x0 + i + c + ch), mv, _CMP_EQ_OQ));
            const __m256 h01 = _mm256_or_ps(h0, h1);
            const __m256 h2 = _mm256_andnot_ps(h01, _mm256_cmp_ps(_mm256_loadu_ps(x1 + i + ch), mv, _CMP_EQ_OQ));
            const __m256 h3 = _mm256_andnot_ps(_mm256_or_ps(h01, h2), ones);
            _mm256_storeu_ps(d0 + i + ch, _mm256_and_ps(h0, v));
            _mm256_storeu_ps(d0 + i + c + ch, _mm256_and_ps(h1, v));
            _mm256_storeu_ps(d1 + i + ch, _mm256_and_ps(h2, v));
            _mm256_storeu_ps(d1 + i + c + ch, _mm256_and_ps(h3, v));
        }
        for (; ch < c; ch++) {
            const float mm = m[o + ch], v = relu && mm <= 0 ? 0 : g[o + ch];
            const int a = x0[i + ch] == mm, b = !a && x0[i + c + ch] == mm, e = !a && !b && x1[i + ch] == mm;
            d0[i + ch] = a ? v : 0;
            d0[i + c + ch] = b ? v : 0;
            d1[i + ch] = e ? v : 0;
            d1[i + c + ch] = !a && !b && !e ? v : 0;
        }
    }
}
#endif

typedef struct {
    int avx512;
    long batch, height, width, c, ph, pw, parts;
    const float *x, *pooled, *dy;
    float *dx;
    int relu;
} pool_back_ctx;

static void pool_back_part(void *ctx, int part) {
    const pool_back_ctx *p = ctx;
    const long rows = p->batch * p->ph, r0 = rows * part / p->parts, r1 = rows * (part + 1) / p->parts;
    const long c = p->c, wc = p->width * c;
    for (long r = r0; r < r1; r++) {
        const long n = r / p->ph, py = r % p->ph;
        const float *x0 = p->x + (n * p->height + 2 * py) * wc;
        float *d0 = p->dx + (n * p->height + 2 * py) * wc;
        const float *m = p->pooled + r * p->pw * c, *g = p->dy + r * p->pw * c;
#ifdef EC_X86
        if (p->avx512) pool_back_row512(x0, x0 + wc, m, g, d0, d0 + wc, p->pw, c, p->relu);
        else pool_back_row256(x0, x0 + wc, m, g, d0, d0 + wc, p->pw, c, p->relu);
#endif
        if (p->width % 2) {  // the uncovered last column
            memset(d0 + (wc - c), 0, (size_t)c * sizeof(float));
            memset(d0 + (2 * wc - c), 0, (size_t)c * sizeof(float));
        }
        if (p->height % 2 && py == p->ph - 1) memset(d0 + 2 * wc, 0, (size_t)wc * sizeof(float));  // the last row
    }
}

void ec_maxpool2x2_backward(int path, int threads, long batch, long height, long width, long channels, const float *x,
                            const float *pooled, const float *dy, float *dx, int relu) {
    if (!get_cpath(path)) abort();  // the caller checks ec_conv2d_supported
    pool_back_ctx p = {path == EC_SGEMM_AVX512, batch, height, width, channels, height / 2, width / 2, 1, x, pooled, dy,
                       dx, relu};
    const long rows = batch * p.ph;
    long parts = threads < 1 ? 1 : threads;
    if (rows * p.pw * channels < (1L << 15)) parts = 1;
    if (parts > rows) parts = rows;
    if (parts < 1) parts = 1;
    p.parts = parts;
    ec_parallel_for((int)parts, (int)parts, pool_back_part, &p);
}

// MARK: - Unpooling a 2×2 max pool's gradient by its recorded winners

#ifdef EC_X86
/// 16 codes (`count` of them; the rest 0) widened to 32-bit lanes.
EC_INLINE EC_AVX512 __m512i load_codes512(const uint8_t *code, long count) {
    if (count >= 16) return _mm512_cvtepu8_epi32(_mm_loadu_si128((const __m128i *)code));
    uint8_t tail[16] = {0};
    memcpy(tail, code, (size_t)count);
    return _mm512_cvtepu8_epi32(_mm_loadu_si128((const __m128i *)tail));
}

/// One pooled row: dz rows d0 (window row 0) and d1 (row 1) from the pooled gradient g and
/// the winners' codes.
static EC_AVX512 void unpool_row512(const uint8_t *code, const float *g, float *d0, float *d1, long pw, long c) {
    const __m512i c0 = _mm512_setzero_si512(), c1 = _mm512_set1_epi32(1), c2 = _mm512_set1_epi32(2);
    const __m512i c3 = _mm512_set1_epi32(3);
    for (long px = 0; px < pw; px++) {
        const long o = px * c, i = 2 * px * c;
        for (long ch = 0; ch < c; ch += 16) {
            const __mmask16 k = c - ch >= 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << (c - ch)) - 1u);
            const __m512i w = load_codes512(code + o + ch, c - ch);
            const __m512 v = _mm512_maskz_loadu_ps(k, g + o + ch);
            _mm512_mask_storeu_ps(d0 + i + ch, k, _mm512_maskz_mov_ps(_mm512_cmpeq_epi32_mask(w, c0), v));
            _mm512_mask_storeu_ps(d0 + i + c + ch, k, _mm512_maskz_mov_ps(_mm512_cmpeq_epi32_mask(w, c1), v));
            _mm512_mask_storeu_ps(d1 + i + ch, k, _mm512_maskz_mov_ps(_mm512_cmpeq_epi32_mask(w, c2), v));
            _mm512_mask_storeu_ps(d1 + i + c + ch, k, _mm512_maskz_mov_ps(_mm512_cmpeq_epi32_mask(w, c3), v));
        }
    }
}

/// Adds a pooled row's top winners (in column order), then its bottom ones, to cs.
static EC_AVX512 void unpool_sums512(const uint8_t *code, const float *g, long pw, long c, float *cs) {
    const __m512i two = _mm512_set1_epi32(2), four = _mm512_set1_epi32(4);
    for (int bottom = 0; bottom < 2; bottom++)
        for (long px = 0; px < pw; px++)
            for (long ch = 0; ch < c; ch += 16) {
                const __mmask16 k = c - ch >= 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << (c - ch)) - 1u);
                const __m512i w = load_codes512(code + px * c + ch, c - ch);
                const __mmask16 row = bottom ? _mm512_cmpge_epi32_mask(w, two) & _mm512_cmplt_epi32_mask(w, four)
                                             : _mm512_cmplt_epi32_mask(w, two);
                const __m512 v = _mm512_maskz_loadu_ps(k & row, g + px * c + ch);
                _mm512_mask_storeu_ps(cs + ch, k, _mm512_add_ps(_mm512_maskz_loadu_ps(k, cs + ch), v));
            }
}

static EC_AVX2 void unpool_row256(const uint8_t *code, const float *g, float *d0, float *d1, long pw, long c) {
    for (long px = 0; px < pw; px++) {
        const long o = px * c, i = 2 * px * c;
        long ch = 0;
        for (; ch + 8 <= c; ch += 8) {
            const __m256i w = _mm256_cvtepu8_epi32(_mm_loadl_epi64((const __m128i *)(code + o + ch)));
            const __m256 v = _mm256_loadu_ps(g + o + ch);
            _mm256_storeu_ps(d0 + i + ch, _mm256_and_ps(_mm256_castsi256_ps(_mm256_cmpeq_epi32(w, _mm256_set1_epi32(0))), v));
            _mm256_storeu_ps(d0 + i + c + ch, _mm256_and_ps(_mm256_castsi256_ps(_mm256_cmpeq_epi32(w, _mm256_set1_epi32(1))), v));
            _mm256_storeu_ps(d1 + i + ch, _mm256_and_ps(_mm256_castsi256_ps(_mm256_cmpeq_epi32(w, _mm256_set1_epi32(2))), v));
            _mm256_storeu_ps(d1 + i + c + ch, _mm256_and_ps(_mm256_castsi256_ps(_mm256_cmpeq_epi32(w, _mm256_set1_epi32(3))), v));
        }
        for (; ch < c; ch++) {
            const int k = code[o + ch];
            const float v = g[o + ch];
            d0[i + ch] = k == 0 ? v : 0.0f;
            d0[i + c + ch] = k == 1 ? v : 0.0f;
            d1[i + ch] = k == 2 ? v : 0.0f;
            d1[i + c + ch] = k == 3 ? v : 0.0f;
        }
    }
}

/// Adds a pooled row's top winners (in column order), then its bottom ones, to cs.
static EC_AVX2 void unpool_sums256(const uint8_t *code, const float *g, long pw, long c, float *cs) {
    for (int bottom = 0; bottom < 2; bottom++)
        for (long px = 0; px < pw; px++) {
            long ch = 0;
            for (; ch + 8 <= c; ch += 8) {
                const __m256i w = _mm256_cvtepu8_epi32(_mm_loadl_epi64((const __m128i *)(code + px * c + ch)));
                const __m256i lo = bottom ? _mm256_set1_epi32(1) : _mm256_set1_epi32(-1);
                const __m256i hi = bottom ? _mm256_set1_epi32(4) : _mm256_set1_epi32(2);
                const __m256i in = _mm256_and_si256(_mm256_cmpgt_epi32(w, lo), _mm256_cmpgt_epi32(hi, w));
                const __m256 v = _mm256_and_ps(_mm256_castsi256_ps(in), _mm256_loadu_ps(g + px * c + ch));
                _mm256_storeu_ps(cs + ch, _mm256_add_ps(_mm256_loadu_ps(cs + ch), v));
            }
            for (; ch < c; ch++) {
                const int k = code[px * c + ch];
                cs[ch] += k < 4 && (k >= 2) == bottom ? g[px * c + ch] : 0.0f;
            }
        }
}
#endif

typedef struct {
    int avx512;
    long batch, height, width, c, ph, pw, parts;
    const uint8_t *winners;
    const float *dy;
    float *dz;
} unpool_ctx;

static void unpool_part(void *ctx, int part) {
    const unpool_ctx *u = ctx;
    const long rows = u->batch * u->ph, r0 = rows * part / u->parts, r1 = rows * (part + 1) / u->parts;
    const long c = u->c, wc = u->width * c;
    for (long r = r0; r < r1; r++) {
        const long n = r / u->ph, py = r % u->ph;
        float *d0 = u->dz + (n * u->height + 2 * py) * wc, *d1 = d0 + wc;
        const uint8_t *code = u->winners + r * u->pw * c;
        const float *g = u->dy + r * u->pw * c;
#ifdef EC_X86
        if (u->avx512) unpool_row512(code, g, d0, d1, u->pw, c);
        else unpool_row256(code, g, d0, d1, u->pw, c);
#endif
        if (u->width % 2) {
            memset(d0 + (wc - c), 0, (size_t)c * sizeof(float));
            memset(d1 + (wc - c), 0, (size_t)c * sizeof(float));
        }
        if (u->height % 2 && py == u->ph - 1) memset(d1 + wc, 0, (size_t)wc * sizeof(float));
    }
}

void ec_maxpool2x2_unpool(int path, int threads, long batch, long height, long width, long channels,
                          const uint8_t *winners, const float *dy, float *dz, float *column_sums) {
    if (!get_cpath(path)) abort();  // the caller checks ec_conv2d_supported
    unpool_ctx u = {path == EC_SGEMM_AVX512, batch, height, width, channels, height / 2, width / 2, 1, winners, dy, dz};
    const long rows = batch * u.ph;
    long parts = threads < 1 || rows * u.pw * channels < (1L << 15) ? 1 : threads;
    if (parts > rows) parts = rows;
    if (parts < 1) parts = 1;
    u.parts = parts;
    ec_parallel_for((int)parts, (int)parts, unpool_part, &u);
    if (!column_sums) return;
    // Σ over dz's rows in order, channel by channel: a window's winner lies in the top row
    // (codes 0, 1) or the bottom row (2, 3) of its pooled row, so pooled row after pooled row,
    // the top winners in column order, then the bottom ones, add what Tensor.columnSums adds.
    // (It also adds the zeros in between; adding +0 leaves a sum that started at +0 unchanged.)
    for (long ch = 0; ch < channels; ch++) column_sums[ch] = 0;
    for (long r = 0; r < rows; r++) {
        const uint8_t *code = winners + r * u.pw * channels;
        const float *g = dy + r * u.pw * channels;
#ifdef EC_X86
        if (u.avx512) unpool_sums512(code, g, u.pw, channels, column_sums);
        else unpool_sums256(code, g, u.pw, channels, column_sums);
#endif
    }
}
