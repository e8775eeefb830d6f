#ifndef EC_INT8_GEMM_H
#define EC_INT8_GEMM_H
// The int8 GEMM kernel of the integer inference path (Int8Model): uint8 activations × int8
// weights → int32, on AVX-512 VNNI (vpdpbusd) when the CPU has it. Everything else of the
// integer path is Swift; this is the one loop Swift cannot express with VNNI.
#include <stdint.h>

/// 1 when this CPU runs AVX-512 F/BW/VNNI (checked at run time; the kernel is compiled for
/// them with a function-level target attribute, so the library runs anywhere).
int cint8_vnni_available(void);

/// Bytes of a packed weight matrix for n outputs and kp inputs (kp a multiple of 4).
long cint8_packed_size(int n, int kp);

/// Packs b (n rows of k int8 weights, row-major) for the kernel: blocks of 16 outputs, each
/// a run of kp/4 groups of 16 lanes × 4 consecutive inputs; zero-padded to kp and to 16.
void cint8_pack_weights(const int8_t *b, int n, int k, int kp, int8_t *packed);

/// c[i][j] = Σ_k a[i][k]·b[j][k] − correction[j] (correction may be NULL), for rows × n,
/// a: rows × kp uint8 (zero-padded), packed: from cint8_pack_weights. Requires VNNI.
void cint8_gemm_u8s8(const uint8_t *a, int rows, int kp, const int8_t *packed, int n,
                     const int32_t *correction, int32_t *c);
#endif
