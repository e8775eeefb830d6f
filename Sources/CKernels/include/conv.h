#ifndef EC_CONV_H
#define EC_CONV_H
// The engine's FP32 2-D convolutions on the GEMM kernels' paths (conv.c; FP32Kernels in ECTensor):
// NHWC input, HWIO kernel [kh, kw, cin/groups, cout], explicit pads, a stride per axis, groups.
//
// Forward: an implicit GEMM — micro-kernels whose A rows are read straight from the (padded)
// input, one contiguous run of kw·cin floats per kernel row (no im2col matrix), with the bias
// as the accumulators' start and ReLU / ReLU6 and, optionally, a 2×2 max pool in the epilogue.
// The weight gradient: im2col of a few hundred pixels at a time into a cache-sized buffer,
// multiplied by ec_sgemm. The input gradient of a stride-1 convolution: the forward kernel on
// the output gradient with the flipped, transposed kernel.
//
// Determinism and exactness: every output element is one chain of fused multiply-adds in the
// order of the im2col formulation (patch index (ky, kx, ci) for the forward, pixel for the
// weight gradient), computed by one thread: the results equal im2col + ec_sgemm on the same
// path bit for bit and do not depend on the thread count. (The input gradient sums the same
// products in a different order: one chain per element instead of a chain per tap plus adds.)
#include <stdint.h>

typedef struct {
    long batch, height, width, channels;          // input [N, H, W, C]
    long kernel_height, kernel_width, out_channels, groups;
    long stride_height, stride_width;
    long pad_top, pad_bottom, pad_left, pad_right;
    long out_height, out_width;                    // ⌊(H + top + bottom − kh) / sh⌋ + 1, likewise W
} ec_conv2d_shape;

/// The epilogue's activation (values shared with ECTensor's Activation).
enum { EC_ACT_NONE = 0, EC_ACT_RELU = 1, EC_ACT_RELU6 = 2 };

/// 1 when ec_conv2d_forward runs on `path` (AVX-512 and AVX2 + FMA; the portable path and
/// OpenBLAS use im2col + sgemm).
int ec_conv2d_supported(int path);

/// y = act(conv(x, w) + bias) (bias may be NULL), y [N, OH, OW, Cout]. With pool_floor non-NULL,
/// y is instead max-pooled over 2×2 windows with stride 2 after the activation,
/// y [N, ⌊OH/2⌋, ⌊OW/2⌋, Cout], each pooled value max(max(max(z00, z01), max(z10, z11)), *pool_floor)
/// (Swift's max: max(a, b) = b ≥ a ? b : a) — the engine's maxPool2d(size: 2, stride: 2) with
/// its fused ReLU when *pool_floor is 0, without it when −∞. On up to `threads` threads.
void ec_conv2d_forward(int path, int threads, const ec_conv2d_shape *s, const float *x, const float *w,
                       const float *bias, float *y, int act, const float *pool_floor);

/// Training's conv → (ReLU →) 2×2 max pool: ec_conv2d_forward with pooling (floor 0: the pool's
/// ReLU; −∞: none) that also records, per pooled value, where its gradient goes: winners
/// [N, ⌊OH/2⌋, ⌊OW/2⌋, Cout] gets the first window position (0 ..< 4, row-major) equal to the pooled
/// value — 3 when none is (NaN) — or 4 when the ReLU clipped it (pooled ≤ 0): the choices of the
/// engine's maxPool2d backward, which therefore need not keep the full-size conv output.
void ec_conv2d_forward_pool_winners(int path, int threads, const ec_conv2d_shape *s, const float *x, const float *w,
                                    const float *bias, float *y, int act, float pool_floor, uint8_t *winners);

/// The gradient of the conv output dz [N, H, W, C] (overwritten) from the pooled gradient dy
/// [N, ⌊H/2⌋, ⌊W/2⌋, C] and the winners: dy at each window's winner, 0 elsewhere (code 4: 0
/// everywhere); positions no window covers (odd H, W) get 0. With column_sums non-NULL, also
/// column_sums[c] = Σ over dz's rows of dz[·, c], bit for bit what Tensor.columnSums computes.
void ec_maxpool2x2_unpool(int path, int threads, long batch, long height, long width, long channels, const uint8_t *winners,
                          const float *dy, float *dz, float *column_sums);

/// dw = colᵀ · dy, group by group (dw [kh, kw, cin/groups, cout], overwritten): the weight
/// gradient, with col the im2col matrix of x. Equals ec_sgemm(transA) on the whole im2col matrix
/// bit for bit. On up to `threads` threads (the multiplications; the im2col chunks on the caller).
void ec_conv2d_weight_gradient(int path, int threads, const ec_conv2d_shape *s, const float *x, const float *dy,
                               float *dw);

/// 1 when ec_conv2d_input_gradient computes this geometry: strides 1 and every pad smaller
/// than the kernel along its axis.
int ec_conv2d_input_gradient_supported(int path, const ec_conv2d_shape *s);

/// dx = the input gradient of the convolution for the output gradient dy ([N, H, W, C],
/// overwritten), as the forward kernel on dy with the kernel flipped and its channel axes swapped.
void ec_conv2d_input_gradient(int path, int threads, const ec_conv2d_shape *s, const float *dy, const float *w,
                              float *dx);
#endif

/// The backward of the engine's 2×2, stride-2 max pool (maxPool2d(size: 2, stride: 2, relu:)) on
/// x [N, H, W, C] with pooled [N, ⌊H/2⌋, ⌊W/2⌋, C] and its gradient dy: dx [N, H, W, C]
/// (overwritten) gets each dy at the first window position (row-major) equal to the pooled
/// value — the fourth when none is (NaN) — and 0 elsewhere; with relu, nothing where the pooled
/// value is ≤ 0. Rows and columns no window covers (odd H, W) get 0.
void ec_maxpool2x2_backward(int path, int threads, long batch, long height, long width, long channels, const float *x,
                            const float *pooled, const float *dy, float *dx, int relu);
