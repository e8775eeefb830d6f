#ifndef EC_BSC_MATMUL_H
#define EC_BSC_MATMUL_H
// The block-sparse inference kernel (BlockSparseMatrix in ECTensor): y = x · W + bias with W
// stored by block columns (BSC), skipping zero blocks. Blocks 16 outputs wide run on AVX-512
// when the CPU has it (checked at run time; compiled with a function-level target attribute, so
// the library runs anywhere); every other case runs a portable loop.
#include <stdint.h>

/// 1 when this CPU runs AVX-512 F (the fast path for 16-wide blocks).
int csparse_avx512_available(void);

/// y[i][c] = act(bias[c] + Σ_r x[i][r]·W[r][c]) for rows i in [row_begin, row_end) of x (m × k,
/// row-major, leading dimension k) and y (leading dimension n).
///
/// W (k × n) is tiled by br × bc blocks; block column j (outputs j·bc ..< min(n, (j+1)·bc))
/// stores the blocks col_ptr[j] ..< col_ptr[j+1]; stored block s covers rows
/// row_idx[s]·br ..< +br and holds br × bc floats at values + s·br·bc (row-major, zero-padded
/// past the matrix edge). bias may be NULL; relu != 0 applies max(·, 0).
void csparse_bsc_matmul(const float *x, int row_begin, int row_end, int k, int n, int br, int bc,
                        const int32_t *col_ptr, const int32_t *row_idx, const float *values,
                        const float *bias, int relu, float *y);
#endif
