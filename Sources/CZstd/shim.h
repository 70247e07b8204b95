// The reference zstd library (Debian: libzstd-dev), stable API only.
#include <zstd.h>
