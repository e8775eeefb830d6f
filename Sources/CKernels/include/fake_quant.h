#ifndef EC_FAKE_QUANT_H
#define EC_FAKE_QUANT_H
// LSQ fake quantization's element loops (fake_quant.c; Variable.fakeQuantLSQ in ECTensor), on
// the GEMM kernels' paths (EC_SGEMM_AVX512, EC_SGEMM_AVX2, EC_SGEMM_PORTABLE).
//
// A tensor is walked as rows of `width` lanes, lane j quantized with step steps[j]; only the
// first `lanes` lanes of each row in [r0, r1) are touched (a tail row has fewer). With x = v/s:
//   level(x) = round(clip(x, lo, hi)) rounding half to even — (c + 1.5·2²³) − 1.5·2²³ with
//              c = min(max(x, lo), hi) as Swift computes max(a, b) = b ≥ a ? b : a and
//              min(a, b) = b < a ? b : a, so NaN stays NaN — or, when `binary`, x ≥ 0 ? 1 : −1
//              (NaN stays NaN);
//   forward    y = level(x)·s;
//   backward   inside = (c == x); dv = inside ? dy : 0;
//              sums[j] += (double)(dy·(level(x) − (inside ? x : 0))), row after row.
// Every path computes these same Float operations in this order (no contraction), so all
// paths give the same bits as one another and as the Swift loops they replace.
//
// 1 when the path runs here (AVX-512 / AVX2 need the CPU's features; portable always).
int ec_fake_quant_supported(int path);

void ec_fake_quant_forward(int path, const float *v, const float *steps, long width, long lanes, long r0, long r1,
                           float lo, float hi, int binary, float *y);

void ec_fake_quant_backward(int path, const float *v, const float *steps, const float *dy, long width, long lanes,
                            long r0, long r1, float lo, float hi, int binary, float *dv, double *sums);
#endif
