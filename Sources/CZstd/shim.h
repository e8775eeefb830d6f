#ifndef EC_CZSTD_SHIM_H
#define EC_CZSTD_SHIM_H
#include <zstd.h>
#endif
