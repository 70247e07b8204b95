// The reference snappy library (Debian: libsnappy-dev) through its C API; the xerial framing is in Swift.
#include <snappy-c.h>
