#include "bsc_matmul.h"
#include <immintrin.h>

int csparse_avx512_available(void) {
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx512f");
}

// Portable path: any block shape.
static void bsc_generic(const float *x, int row_begin, int row_end, int k, int n, int br, int bc,
                        const int32_t *col_ptr, const int32_t *row_idx, const float *values,
                        const float *bias, int relu, float *y) {
    int grid_cols = (n + bc - 1) / bc;
    for (int i = row_begin; i < row_end; i++) {
        const float *xi = x + (long)i * k;
        float *yi = y + (long)i * n;
        for (int c = 0; c < n; c++) yi[c] = bias ? bias[c] : 0.0f;
        for (int j = 0; j < grid_cols; j++) {
            int c0 = j * bc, lanes = n - c0 < bc ? n - c0 : bc;
            for (int s = col_ptr[j]; s < col_ptr[j + 1]; s++) {
                const float *blk = values + (long)s * br * bc;
                int r0 = row_idx[s] * br;
                for (int ii = 0; ii < br && r0 + ii < k; ii++) {
                    float a = xi[r0 + ii];
                    const float *w = blk + ii * bc;
                    for (int c = 0; c < lanes; c++) yi[c0 + c] += a * w[c];
                }
            }
        }
        if (relu) for (int c = 0; c < n; c++) yi[c] = yi[c] > 0 ? yi[c] : 0.0f;
    }
}

// AVX-512 path for 16-wide blocks: per block column, 8 rows of x at a time keep their 16
// accumulators in registers over all the column's stored blocks (each 16-float weight row is
// loaded once for 8 FMAs); a single row uses 4 accumulators to hide the FMA latency.
__attribute__((target("avx512f")))
static void bsc_avx512_16(const float *x, int row_begin, int row_end, int k, int n, int br,
                          const int32_t *col_ptr, const int32_t *row_idx, const float *values,
                          const float *bias, int relu, float *y) {
    int grid_cols = (n + 15) / 16;
    const __m512 zero = _mm512_setzero_ps();
    int i = row_begin;
    for (; i + 8 <= row_end; i += 8) {
        const float *x0 = x + (long)i * k;
        for (int j = 0; j < grid_cols; j++) {
            int lanes = n - j * 16 < 16 ? n - j * 16 : 16;
            __mmask16 mask = (__mmask16)((1u << lanes) - 1u);
            __m512 b = bias ? _mm512_maskz_loadu_ps(mask, bias + j * 16) : zero;
            __m512 a0 = b, a1 = b, a2 = b, a3 = b, a4 = b, a5 = b, a6 = b, a7 = b;
            for (int s = col_ptr[j]; s < col_ptr[j + 1]; s++) {
                const float *blk = values + (long)s * br * 16;
                int r0 = row_idx[s] * br;
                for (int ii = 0; ii < br && r0 + ii < k; ii++) {
                    __m512 w = _mm512_loadu_ps(blk + ii * 16);
                    const float *xr = x0 + r0 + ii;
                    a0 = _mm512_fmadd_ps(_mm512_set1_ps(xr[0]), w, a0);
                    a1 = _mm512_fmadd_ps(_mm512_set1_ps(xr[(long)k]), w, a1);
                    a2 = _mm512_fmadd_ps(_mm512_set1_ps(xr[2L * k]), w, a2);
                    a3 = _mm512_fmadd_ps(_mm512_set1_ps(xr[3L * k]), w, a3);
                    a4 = _mm512_fmadd_ps(_mm512_set1_ps(xr[4L * k]), w, a4);
                    a5 = _mm512_fmadd_ps(_mm512_set1_ps(xr[5L * k]), w, a5);
                    a6 = _mm512_fmadd_ps(_mm512_set1_ps(xr[6L * k]), w, a6);
                    a7 = _mm512_fmadd_ps(_mm512_set1_ps(xr[7L * k]), w, a7);
                }
            }
            if (relu) {
                a0 = _mm512_max_ps(a0, zero); a1 = _mm512_max_ps(a1, zero);
                a2 = _mm512_max_ps(a2, zero); a3 = _mm512_max_ps(a3, zero);
                a4 = _mm512_max_ps(a4, zero); a5 = _mm512_max_ps(a5, zero);
                a6 = _mm512_max_ps(a6, zero); a7 = _mm512_max_ps(a7, zero);
            }
            float *yo = y + (long)i * n + j * 16;
            _mm512_mask_storeu_ps(yo, mask, a0);
            _mm512_mask_storeu_ps(yo + n, mask, a1);
            _mm512_mask_storeu_ps(yo + 2L * n, mask, a2);
            _mm512_mask_storeu_ps(yo + 3L * n, mask, a3);
            _mm512_mask_storeu_ps(yo + 4L * n, mask, a4);
            _mm512_mask_storeu_ps(yo + 5L * n, mask, a5);
            _mm512_mask_storeu_ps(yo + 6L * n, mask, a6);
            _mm512_mask_storeu_ps(yo + 7L * n, mask, a7);
        }
    }
    for (; i < row_end; i++) {
        const float *xi = x + (long)i * k;
        for (int j = 0; j < grid_cols; j++) {
            int lanes = n - j * 16 < 16 ? n - j * 16 : 16;
            __mmask16 mask = (__mmask16)((1u << lanes) - 1u);
            __m512 a0 = bias ? _mm512_maskz_loadu_ps(mask, bias + j * 16) : zero, a1 = zero, a2 = zero, a3 = zero;
            int s = col_ptr[j], end = col_ptr[j + 1];
            if (br == 1) {
                for (; s + 4 <= end; s += 4) {
                    a0 = _mm512_fmadd_ps(_mm512_set1_ps(xi[row_idx[s]]), _mm512_loadu_ps(values + (long)s * 16), a0);
                    a1 = _mm512_fmadd_ps(_mm512_set1_ps(xi[row_idx[s + 1]]), _mm512_loadu_ps(values + (long)(s + 1) * 16), a1);
                    a2 = _mm512_fmadd_ps(_mm512_set1_ps(xi[row_idx[s + 2]]), _mm512_loadu_ps(values + (long)(s + 2) * 16), a2);
                    a3 = _mm512_fmadd_ps(_mm512_set1_ps(xi[row_idx[s + 3]]), _mm512_loadu_ps(values + (long)(s + 3) * 16), a3);
                }
            }
            for (; s < end; s++) {
                const float *blk = values + (long)s * br * 16;
                int r0 = row_idx[s] * br;
                for (int ii = 0; ii < br && r0 + ii < k; ii++)
                    a0 = _mm512_fmadd_ps(_mm512_set1_ps(xi[r0 + ii]), _mm512_loadu_ps(blk + ii * 16), a0);
            }
            __m512 acc = _mm512_add_ps(_mm512_add_ps(a0, a1), _mm512_add_ps(a2, a3));
            if (relu) acc = _mm512_max_ps(acc, zero);
            _mm512_mask_storeu_ps(y + (long)i * n + j * 16, mask, acc);
        }
    }
}

void csparse_bsc_matmul(const float *x, int row_begin, int row_end, int k, int n, int br, int bc,
                        const int32_t *col_ptr, const int32_t *row_idx, const float *values,
                        const float *bias, int relu, float *y) {
    if (bc == 16 && csparse_avx512_available()) {
        bsc_avx512_16(x, row_begin, row_end, k, n, br, col_ptr, row_idx, values, bias, relu, y);
    } else {
        bsc_generic(x, row_begin, row_end, k, n, br, bc, col_ptr, row_idx, values, bias, relu, y);
    }
}
