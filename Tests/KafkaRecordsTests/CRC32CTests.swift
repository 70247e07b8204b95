import CCRC32C
import KafkaRecords
import Testing

@Suite struct CRC32CTests {
    @Test func standardCheckValue() {
        let check = Array("123456789".utf8)
        #expect(CRC32C.checksum(check) == 0xE306_9283)
        check.withUnsafeBytes { raw in
            #expect(samsa_crc32c_portable(0, raw.baseAddress, raw.count) == 0xE306_9283)
            if CRC32C.hardwareAvailable {
                #expect(samsa_crc32c_hardware(0, raw.baseAddress, raw.count) == 0xE306_9283)
            }
        }
    }

    @Test func hardwareIsUsedWhereTheCPUHasIt() {
        #if arch(x86_64) || arch(arm64)
        // Every x86_64 and ARMv8 machine this project runs on has the instruction; a silent fallback
        // to the portable path would cost a factor of ten.
        #expect(CRC32C.hardwareAvailable)
        #expect(CRC32C.implementation != "portable")
        #endif
    }

    @Test func hardwareAndPortableAgreeOnRandomBuffers() throws {
        try #require(CRC32C.hardwareAvailable, "no CRC32 instruction on this CPU")
        var rng = SystemRandomNumberGenerator.Seeded(seed: 0xC0FFEE)
        let big = (0..<(3 << 20) + 17).map { _ in UInt8(truncatingIfNeeded: rng.next()) }
        big.withUnsafeBytes { raw in
            // Every length up to 5000 at several alignments, then random large slices.
            for length in 0...5000 {
                let offset = length % 16
                let p = raw.baseAddress! + offset
                let seed = UInt32(truncatingIfNeeded: rng.next())
                #expect(samsa_crc32c_hardware(seed, p, length) == samsa_crc32c_portable(seed, p, length))
            }
            for _ in 0..<40 {
                let offset = Int(rng.next() % 4096)
                let length = Int(rng.next() % UInt64(raw.count - offset))
                let p = raw.baseAddress! + offset
                #expect(samsa_crc32c_hardware(0, p, length) == samsa_crc32c_portable(0, p, length))
            }
        }
    }

    @Test func incrementalUpdatesEqualOneShot() {
        var rng = SystemRandomNumberGenerator.Seeded(seed: 7)
        let data = (0..<100_000).map { _ in UInt8(truncatingIfNeeded: rng.next()) }
        let whole = CRC32C.checksum(data)
        for _ in 0..<50 {
            let cut = Int(rng.next() % UInt64(data.count))
            let crc = data.withUnsafeBytes { raw in
                CRC32C.update(CRC32C.update(0, UnsafeRawBufferPointer(rebasing: raw[..<cut])),
                              UnsafeRawBufferPointer(rebasing: raw[cut...]))
            }
            #expect(crc == whole)
        }
    }
}

extension SystemRandomNumberGenerator {
    /// SplitMix64 with a fixed seed, so failures reproduce.
    struct Seeded: RandomNumberGenerator {
        var state: UInt64
        init(seed: UInt64) { state = seed }
        mutating func next() -> UInt64 {
            state &+= 0x9E37_79B9_7F4A_7C15
            var z = state
            z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
            z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
            return z ^ (z >> 31)
        }
    }
}
