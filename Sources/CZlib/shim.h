#ifndef EC_CZLIB_SHIM_H
#define EC_CZLIB_SHIM_H
#include <zlib.h>
#endif
