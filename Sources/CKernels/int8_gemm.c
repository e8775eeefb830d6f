#include "int8_gemm.h"
#include <immintrin.h>
#include <string.h>

int cint8_vnni_available(void) {
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
           __builtin_cpu_supports("avx512vnni");
}

long cint8_packed_size(int n, int kp) { return (long)((n + 15) / 16) * 16 * kp; }

void cint8_pack_weights(const int8_t *b, int n, int k, int kp, int8_t *packed) {
    int blocks = (n + 15) / 16, groups = kp / 4;
    memset(packed, 0, (size_t)cint8_packed_size(n, kp));
    for (int nb = 0; nb < blocks; nb++)
        for (int g = 0; g < groups; g++)
            for (int lane = 0; lane < 16; lane++) {
                int j = nb * 16 + lane;
                if (j >= n) continue;
                for (int t = 0; t < 4; t++) {
                    int kk = g * 4 + t;
                    if (kk < k) packed[(((long)nb * groups + g) * 16 + lane) * 4 + t] = b[(long)j * k + kk];
                }
            }
}

__attribute__((target("avx512f,avx512bw,avx512vnni")))
void cint8_gemm_u8s8(const uint8_t *a, int rows, int kp, const int8_t *packed, int n,
                     const int32_t *correction, int32_t *c) {
    int blocks = (n + 15) / 16, groups = kp / 4;
    int i = 0;
    // Four rows at a time, every block of 16 outputs for them before the next four rows: the
    // four A rows stay in L1 while the (small) packed weights stream from L2, and each 64-byte
    // weight group is loaded once for the four rows. (Blocks outermost would stream all of A
    // from memory once per block.)
    for (; i + 4 <= rows; i += 4) {
        const uint8_t *a0 = a + (long)i * kp, *a1 = a0 + kp, *a2 = a1 + kp, *a3 = a2 + kp;
        int nb = 0;
        // Four full blocks (64 outputs) at a time: 16 accumulators; each group loads four weight
        // vectors and four activation words for 16 dot products.
        for (; nb + 4 <= blocks && (nb + 4) * 16 <= n; nb += 4) {
            const int8_t *b0 = packed + (long)nb * groups * 64, *b1 = b0 + (long)groups * 64;
            const int8_t *b2 = b1 + (long)groups * 64, *b3 = b2 + (long)groups * 64;
            __m512i acc[4][4];
            for (int r = 0; r < 4; r++) for (int q = 0; q < 4; q++) acc[r][q] = _mm512_setzero_si512();
            for (int g = 0; g < groups; g++) {
                __m512i w0 = _mm512_loadu_si512((const void *)(b0 + (long)g * 64));
                __m512i w1 = _mm512_loadu_si512((const void *)(b1 + (long)g * 64));
                __m512i w2 = _mm512_loadu_si512((const void *)(b2 + (long)g * 64));
                __m512i w3 = _mm512_loadu_si512((const void *)(b3 + (long)g * 64));
                const uint8_t *rows4[4] = {a0, a1, a2, a3};
                for (int r = 0; r < 4; r++) {
                    int32_t x;
                    memcpy(&x, rows4[r] + 4 * g, 4);
                    __m512i xv = _mm512_set1_epi32(x);
                    acc[r][0] = _mm512_dpbusd_epi32(acc[r][0], xv, w0);
                    acc[r][1] = _mm512_dpbusd_epi32(acc[r][1], xv, w1);
                    acc[r][2] = _mm512_dpbusd_epi32(acc[r][2], xv, w2);
                    acc[r][3] = _mm512_dpbusd_epi32(acc[r][3], xv, w3);
                }
            }
            for (int q = 0; q < 4; q++) {
                __m512i corr = correction ? _mm512_loadu_si512((const void *)(correction + (nb + q) * 16)) : _mm512_setzero_si512();
                for (int r = 0; r < 4; r++)
                    _mm512_storeu_si512((void *)(c + (long)(i + r) * n + (nb + q) * 16), _mm512_sub_epi32(acc[r][q], corr));
            }
        }
        for (; nb < blocks; nb++) {
            const int8_t *bb = packed + (long)nb * groups * 64;
            int lanes = n - nb * 16 < 16 ? n - nb * 16 : 16;
            __mmask16 mask = (__mmask16)((1u << lanes) - 1u);
            __m512i corr = correction ? _mm512_maskz_loadu_epi32(mask, correction + nb * 16) : _mm512_setzero_si512();
            __m512i s0 = _mm512_setzero_si512(), s1 = s0, s2 = s0, s3 = s0;
            for (int g = 0; g < groups; g++) {
                __m512i w = _mm512_loadu_si512((const void *)(bb + (long)g * 64));
                int32_t x0, x1, x2, x3;
                memcpy(&x0, a0 + 4 * g, 4); memcpy(&x1, a1 + 4 * g, 4);
                memcpy(&x2, a2 + 4 * g, 4); memcpy(&x3, a3 + 4 * g, 4);
                s0 = _mm512_dpbusd_epi32(s0, _mm512_set1_epi32(x0), w);
                s1 = _mm512_dpbusd_epi32(s1, _mm512_set1_epi32(x1), w);
                s2 = _mm512_dpbusd_epi32(s2, _mm512_set1_epi32(x2), w);
                s3 = _mm512_dpbusd_epi32(s3, _mm512_set1_epi32(x3), w);
            }
            _mm512_mask_storeu_epi32(c + (long)i * n + nb * 16, mask, _mm512_sub_epi32(s0, corr));
            _mm512_mask_storeu_epi32(c + (long)(i + 1) * n + nb * 16, mask, _mm512_sub_epi32(s1, corr));
            _mm512_mask_storeu_epi32(c + (long)(i + 2) * n + nb * 16, mask, _mm512_sub_epi32(s2, corr));
            _mm512_mask_storeu_epi32(c + (long)(i + 3) * n + nb * 16, mask, _mm512_sub_epi32(s3, corr));
        }
    }
    for (; i < rows; i++) {
        const uint8_t *ai = a + (long)i * kp;
        for (int nb = 0; nb < blocks; nb++) {
            const int8_t *bb = packed + (long)nb * groups * 64;
            int lanes = n - nb * 16 < 16 ? n - nb * 16 : 16;
            __mmask16 mask = (__mmask16)((1u << lanes) - 1u);
            __m512i corr = correction ? _mm512_maskz_loadu_epi32(mask, correction + nb * 16) : _mm512_setzero_si512();
            __m512i s = _mm512_setzero_si512();
            for (int g = 0; g < groups; g++) {
                int32_t x;
                memcpy(&x, ai + 4 * g, 4);
                s = _mm512_dpbusd_epi32(s, _mm512_set1_epi32(x), _mm512_loadu_si512((const void *)(bb + (long)g * 64)));
            }
            _mm512_mask_storeu_epi32(c + (long)i * n + nb * 16, mask, _mm512_sub_epi32(s, corr));
        }
    }
}
