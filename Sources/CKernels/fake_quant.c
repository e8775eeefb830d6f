#include "fake_quant.h"
#include "sgemm.h"
#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#define EC_X86 1
#endif

// See fake_quant.h. The vector paths walk a row's lanes 16 (AVX-512) or 8 (AVX2) at a time;
// the backward keeps the step sums of a group of lanes in registers while it runs down the
// rows, so each lane still adds its rows in order.

#pragma STDC FP_CONTRACT OFF

static const float magic = 12582912.0f;  // 1.5·2²³: (c + magic) − magic rounds |c| < 2²² half to even

// MARK: - Portable

static inline float clip_scalar(float x, float lo, float hi) {
    const float a = lo >= x ? lo : x;
    return hi < a ? hi : a;
}

static inline float level_scalar(float x, float c, int binary) {
    if (binary) return x != x ? x : (x >= 0 ? 1.0f : -1.0f);
    return (c + magic) - magic;
}

static void forward_portable(const float *v, const float *steps, long width, long lanes, long r0, long r1, float lo,
                             float hi, int binary, float *y) {
    for (long r = r0; r < r1; r++) {
        const float *vr = v + r * width;
        float *yr = y + r * width;
        for (long j = 0; j < lanes; j++) {
            const float s = steps[j], x = vr[j] / s;
            yr[j] = level_scalar(x, clip_scalar(x, lo, hi), binary) * s;
        }
    }
}

static void backward_portable(const float *v, const float *steps, const float *dy, long width, long lanes, long r0,
                              long r1, float lo, float hi, int binary, float *dv, double *sums) {
    for (long r = r0; r < r1; r++) {
        const float *vr = v + r * width, *gr = dy + r * width;
        float *dr = dv + r * width;
        for (long j = 0; j < lanes; j++) {
            const float x = vr[j] / steps[j], g = gr[j], c = clip_scalar(x, lo, hi), q = level_scalar(x, c, binary);
            const int inside = c == x;
            dr[j] = inside ? g : 0.0f;
            sums[j] += (double)(g * (q - (inside ? x : 0.0f)));
        }
    }
}

#ifdef EC_X86
#define EC_AVX2 __attribute__((target("avx2,fma")))
#define EC_AVX512 __attribute__((target("avx512f,avx2,fma")))

// MARK: - AVX-512

static inline EC_AVX512 __mmask16 lane_mask512(long n) { return n >= 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << n) - 1u); }

/// c = min(max(x, lo), hi) as Swift computes it, and the level.
static inline EC_AVX512 __m512 level512(__m512 x, __m512 lo, __m512 hi, int binary, __m512 *clipped) {
    const __m512 a = _mm512_mask_mov_ps(x, _mm512_cmp_ps_mask(lo, x, _CMP_GE_OQ), lo);
    const __m512 c = _mm512_mask_mov_ps(a, _mm512_cmp_ps_mask(hi, a, _CMP_LT_OQ), hi);
    *clipped = c;
    if (binary) {
        const __m512 sign = _mm512_mask_mov_ps(_mm512_set1_ps(-1.0f), _mm512_cmp_ps_mask(x, _mm512_setzero_ps(), _CMP_GE_OQ),
                                               _mm512_set1_ps(1.0f));
        return _mm512_mask_mov_ps(sign, _mm512_cmp_ps_mask(x, x, _CMP_UNORD_Q), x);
    }
    const __m512 m = _mm512_set1_ps(magic);
    return _mm512_sub_ps(_mm512_add_ps(c, m), m);
}

static EC_AVX512 void forward512(const float *v, const float *steps, long width, long lanes, long r0, long r1, float lo,
                                 float hi, int binary, float *y) {
    const __m512 vlo = _mm512_set1_ps(lo), vhi = _mm512_set1_ps(hi), one = _mm512_set1_ps(1.0f);
    for (long r = r0; r < r1; r++) {
        for (long j = 0; j < lanes; j += 16) {
            const __mmask16 k = lane_mask512(lanes - j);
            const __m512 s = _mm512_mask_loadu_ps(one, k, steps + j);
            const __m512 x = _mm512_div_ps(_mm512_maskz_loadu_ps(k, v + r * width + j), s);
            __m512 c;
            const __m512 q = level512(x, vlo, vhi, binary, &c);
            _mm512_mask_storeu_ps(y + r * width + j, k, _mm512_mul_ps(q, s));
        }
    }
}

static EC_AVX512 void backward512(const float *v, const float *steps, const float *dy, long width, long lanes, long r0,
                                  long r1, float lo, float hi, int binary, float *dv, double *sums) {
    const __m512 vlo = _mm512_set1_ps(lo), vhi = _mm512_set1_ps(hi), one = _mm512_set1_ps(1.0f);
    for (long j = 0; j < lanes; j += 16) {
        const __mmask16 k = lane_mask512(lanes - j);
        const __mmask8 k0 = (__mmask8)(k & 0xFF), k1 = (__mmask8)(k >> 8);
        const __m512 s = _mm512_mask_loadu_ps(one, k, steps + j);
        __m512d acc0 = _mm512_maskz_loadu_pd(k0, sums + j), acc1 = _mm512_maskz_loadu_pd(k1, sums + j + 8);
        for (long r = r0; r < r1; r++) {
            const long o = r * width + j;
            const __m512 x = _mm512_div_ps(_mm512_maskz_loadu_ps(k, v + o), s), g = _mm512_maskz_loadu_ps(k, dy + o);
            __m512 c;
            const __m512 q = level512(x, vlo, vhi, binary, &c);
            const __mmask16 inside = _mm512_cmp_ps_mask(c, x, _CMP_EQ_OQ);
            _mm512_mask_storeu_ps(dv + o, k, _mm512_maskz_mov_ps(inside, g));
            const __m512 t = _mm512_mul_ps(g, _mm512_sub_ps(q, _mm512_maskz_mov_ps(inside, x)));
            acc0 = _mm512_add_pd(acc0, _mm512_cvtps_pd(_mm512_castps512_ps256(t)));
            acc1 = _mm512_add_pd(acc1, _mm512_cvtps_pd(_mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(t), 1))));
        }
        _mm512_mask_storeu_pd(sums + j, k0, acc0);
        _mm512_mask_storeu_pd(sums + j + 8, k1, acc1);
    }
}

// MARK: - AVX2

static inline EC_AVX2 __m256i lane_mask256(long n) {
    const __m256i index = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
    return _mm256_cmpgt_epi32(_mm256_set1_epi32((int)(n >= 8 ? 8 : n)), index);
}

static inline EC_AVX2 __m256 level256(__m256 x, __m256 lo, __m256 hi, int binary, __m256 *clipped) {
    const __m256 a = _mm256_blendv_ps(x, lo, _mm256_cmp_ps(lo, x, _CMP_GE_OQ));
    const __m256 c = _mm256_blendv_ps(a, hi, _mm256_cmp_ps(hi, a, _CMP_LT_OQ));
    *clipped = c;
    if (binary) {
        const __m256 sign = _mm256_blendv_ps(_mm256_set1_ps(-1.0f), _mm256_set1_ps(1.0f),
                                             _mm256_cmp_ps(x, _mm256_setzero_ps(), _CMP_GE_OQ));
        return _mm256_blendv_ps(sign, x, _mm256_cmp_ps(x, x, _CMP_UNORD_Q));
    }
    const __m256 m = _mm256_set1_ps(magic);
    return _mm256_sub_ps(_mm256_add_ps(c, m), m);
}

static EC_AVX2 void forward256(const float *v, const float *steps, long width, long lanes, long r0, long r1, float lo,
                               float hi, int binary, float *y) {
    const __m256 vlo = _mm256_set1_ps(lo), vhi = _mm256_set1_ps(hi), one = _mm256_set1_ps(1.0f);
    for (long r = r0; r < r1; r++) {
        for (long j = 0; j < lanes; j += 8) {
            const __m256i k = lane_mask256(lanes - j);
            const __m256 s = _mm256_blendv_ps(one, _mm256_maskload_ps(steps + j, k), _mm256_castsi256_ps(k));
            const __m256 x = _mm256_div_ps(_mm256_maskload_ps(v + r * width + j, k), s);
            __m256 c;
            const __m256 q = level256(x, vlo, vhi, binary, &c);
            _mm256_maskstore_ps(y + r * width + j, k, _mm256_mul_ps(q, s));
        }
    }
}

static EC_AVX2 void backward256(const float *v, const float *steps, const float *dy, long width, long lanes, long r0,
                                long r1, float lo, float hi, int binary, float *dv, double *sums) {
    const __m256 vlo = _mm256_set1_ps(lo), vhi = _mm256_set1_ps(hi), one = _mm256_set1_ps(1.0f), zero = _mm256_setzero_ps();
    for (long j = 0; j < lanes; j += 8) {
        const __m256i k = lane_mask256(lanes - j);
        const __m256i k0 = _mm256_cvtepi32_epi64(_mm256_castsi256_si128(k)), k1 = _mm256_cvtepi32_epi64(_mm256_extracti128_si256(k, 1));
        const __m256 s = _mm256_blendv_ps(one, _mm256_maskload_ps(steps + j, k), _mm256_castsi256_ps(k));
        __m256d acc0 = _mm256_maskload_pd(sums + j, k0), acc1 = _mm256_maskload_pd(sums + j + 4, k1);
        for (long r = r0; r < r1; r++) {
            const long o = r * width + j;
            const __m256 x = _mm256_div_ps(_mm256_maskload_ps(v + o, k), s), g = _mm256_maskload_ps(dy + o, k);
            __m256 c;
            const __m256 q = level256(x, vlo, vhi, binary, &c);
            const __m256 inside = _mm256_cmp_ps(c, x, _CMP_EQ_OQ);
            _mm256_maskstore_ps(dv + o, k, _mm256_blendv_ps(zero, g, inside));
            const __m256 t = _mm256_mul_ps(g, _mm256_sub_ps(q, _mm256_blendv_ps(zero, x, inside)));
            acc0 = _mm256_add_pd(acc0, _mm256_cvtps_pd(_mm256_castps256_ps128(t)));
            acc1 = _mm256_add_pd(acc1, _mm256_cvtps_pd(_mm256_extractf128_ps(t, 1)));
        }
        _mm256_maskstore_pd(sums + j, k0, acc0);
        _mm256_maskstore_pd(sums + j + 4, k1, acc1);
    }
}
#endif

// MARK: - Dispatch

int ec_fake_quant_supported(int path) { return ec_sgemm_supported(path); }

void ec_fake_quant_forward(int path, const float *v, const float *steps, long width, long lanes, long r0, long r1,
                           float lo, float hi, int binary, float *y) {
    if (lanes <= 0 || r1 <= r0) return;
#ifdef EC_X86
    if (path == EC_SGEMM_AVX512 && ec_sgemm_supported(path)) {
        forward512(v, steps, width, lanes, r0, r1, lo, hi, binary, y);
        return;
    }
    if (path == EC_SGEMM_AVX2 && ec_sgemm_supported(path)) {
        forward256(v, steps, width, lanes, r0, r1, lo, hi, binary, y);
        return;
    }
#endif
    forward_portable(v, steps, width, lanes, r0, r1, lo, hi, binary, y);
}

void ec_fake_quant_backward(int path, const float *v, const float *steps, const float *dy, long width, long lanes,
                            long r0, long r1, float lo, float hi, int binary, float *dv, double *sums) {
    if (lanes <= 0 || r1 <= r0) return;
#ifdef EC_X86
    if (path == EC_SGEMM_AVX512 && ec_sgemm_supported(path)) {
        backward512(v, steps, dy, width, lanes, r0, r1, lo, hi, binary, dv, sums);
        return;
    }
    if (path == EC_SGEMM_AVX2 && ec_sgemm_supported(path)) {
        backward256(v, steps, dy, width, lanes, r0, r1, lo, hi, binary, dv, sums);
        return;
    }
#endif
    backward_portable(v, steps, dy, width, lanes, r0, r1, lo, hi, binary, dv, sums);
}
