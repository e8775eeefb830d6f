#ifndef EC_CKERNELS_H
#define EC_CKERNELS_H
// The engine's own C kernels, one header per kernel family. Each is compiled for its
// instruction set with function-level target attributes and checked at run time, so the
// library runs on any x86-64 CPU (a portable path, in C or in the Swift caller, covers the
// rest). Their only importers are the files of ECTensor/Kernels.
#include "int8_gemm.h"
#include "bsc_matmul.h"
#include "sgemm.h"
#include "parallel.h"
#include "conv.h"
#include "fake_quant.h"
#endif
