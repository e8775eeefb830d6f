#ifndef EC_CBLAS_SHIM_H
#define EC_CBLAS_SHIM_H
// OpenBLAS's CBLAS interface plus its thread-control entry points (not in cblas.h on every
// distribution, so they are declared by OpenBLAS's own header, included here).
#include <cblas.h>
#endif
