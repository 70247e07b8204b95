/*
 * CCRC32C - CRC-32C (Castagnoli, reflected polynomial 0x82F63B78) for Samsa.
 *
 * Used for Kafka record batch CRCs (magic v2). All functions take the running
 * CRC value (start with 0) and do the pre/post inversion internally, so
 *
 *     samsa_crc32c(0, "123456789", 9) == 0xE3069283
 *     samsa_crc32c(samsa_crc32c(0, a, n), b, m) == CRC of a||b
 *
 * All functions are thread-safe and may be called concurrently.
 */
#ifndef SAMSA_CCRC32C_H
#define SAMSA_CCRC32C_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* CRC-32C using the fastest implementation available on this CPU (chosen once, at first use). */
uint32_t samsa_crc32c(uint32_t crc, const void *data, size_t length);

/* Table-driven (slicing-by-8) implementation; works everywhere. */
uint32_t samsa_crc32c_portable(uint32_t crc, const void *data, size_t length);

/* Hardware implementation (x86_64 SSE4.2 crc32 / AArch64 CRC32C instructions).
 * Only call it if samsa_crc32c_hardware_available() returns 1; on architectures
 * without a hardware path it falls back to the portable implementation. */
uint32_t samsa_crc32c_hardware(uint32_t crc, const void *data, size_t length);

/* 1 if the CPU supports the hardware path, 0 otherwise. */
int samsa_crc32c_hardware_available(void);

/* Name of the implementation samsa_crc32c() uses: "sse4.2", "armv8-crc" or "portable". */
const char *samsa_crc32c_implementation(void);

#ifdef __cplusplus
}
#endif

#endif /* SAMSA_CCRC32C_H */
