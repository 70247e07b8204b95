// The reference lz4 library (Debian: liblz4-dev): the LZ4 frame format that Kafka's magic-2 batches carry.
#include <lz4frame.h>
