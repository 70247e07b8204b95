import CCRC32C
import KafkaRecords

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

// CRC32C throughput, hardware and portable paths: `swift run -c release samsa-bench-crc32c`.
// Prints GB/s for several buffer sizes (best of 5 runs of about 0.2 s each).

func now() -> Double {
    var ts = timespec()
    clock_gettime(CLOCK_MONOTONIC, &ts)
    return Double(ts.tv_sec) + Double(ts.tv_nsec) / 1e9
}

func measure(size: Int, _ crc: (UInt32, UnsafeRawPointer, Int) -> UInt32) -> Double {
    var data = [UInt8](repeating: 0, count: size)
    var seed: UInt64 = 42
    for i in 0..<size {
        seed = seed &* 6364136223846793005 &+ 1442695040888963407
        data[i] = UInt8(truncatingIfNeeded: seed >> 33)
    }
    let iterations = max(1, 200_000_000 / size)
    var best = 0.0
    var sink: UInt32 = 0
    data.withUnsafeBytes { raw in
        for _ in 0..<5 {
            let t0 = now()
            for _ in 0..<iterations { sink &+= crc(sink, raw.baseAddress!, size) }
            let gbps = Double(size * iterations) / (now() - t0) / 1e9
            best = max(best, gbps)
        }
    }
    if sink == 0x1234_5678 { print("") }  // keep the work observable
    return best
}

print("CRC32C implementation selected at run time: \(CRC32C.implementation)")
print("size        hardware GB/s   portable GB/s")
for size in [64, 512, 4096, 65536, 1 << 20] {
    let hw = CRC32C.hardwareAvailable ? measure(size: size) { samsa_crc32c_hardware($0, $1, $2) } : .nan
    let sw = measure(size: size) { samsa_crc32c_portable($0, $1, $2) }
    let label = size >= 1 << 20 ? "\(size >> 20) MiB" : size >= 1024 ? "\(size >> 10) KiB" : "\(size) B"
    func column(_ s: String, _ width: Int) -> String { s + String(repeating: " ", count: max(0, width - s.count)) }
    func gb(_ v: Double) -> String { v.isNaN ? "n/a" : String((v * 100).rounded() / 100) }
    print(column(label, 12) + column(gb(hw), 16) + gb(sw))
}
