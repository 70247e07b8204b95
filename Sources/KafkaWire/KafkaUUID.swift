/// Kafka's 128-bit UUID (topic ids, directory ids), printed like Kafka's `Uuid.toString()`:
/// URL-safe base64 without padding (22 characters).
public struct KafkaUUID: Hashable, Sendable, Comparable, CustomStringConvertible {
    public var high: UInt64
    public var low: UInt64

    public init(high: UInt64, low: UInt64) {
        self.high = high
        self.low = low
    }

    /// The all-zero UUID Kafka uses for "no id".
    public static let zero = KafkaUUID(high: 0, low: 0)

    /// A random version-4 UUID, re-drawn in the rare case it collides with Kafka's reserved ids
    /// (zero, or one whose string form starts with "-", like Kafka's `Uuid.randomUuid()`).
    public static func random<G: RandomNumberGenerator>(using generator: inout G) -> KafkaUUID {
        while true {
            var high = generator.next() as UInt64
            var low = generator.next() as UInt64
            high = (high & ~0xF000) | 0x4000           // version 4
            low = (low & ~(0xC000 << 48)) | (0x8000 << 48) // IETF variant
            let uuid = KafkaUUID(high: high, low: low)
            if uuid != .zero, !uuid.description.hasPrefix("-") { return uuid }
        }
    }

    public static func random() -> KafkaUUID {
        var g = SystemRandomNumberGenerator()
        return random(using: &g)
    }

    public static func < (a: KafkaUUID, b: KafkaUUID) -> Bool { (a.high, a.low) < (b.high, b.low) }

    private static let alphabet = Array("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_".utf8)

    public var bytes: [UInt8] {
        (0..<8).map { UInt8(truncatingIfNeeded: high >> (56 - 8 * $0)) }
            + (0..<8).map { UInt8(truncatingIfNeeded: low >> (56 - 8 * $0)) }
    }

    /// The canonical 8-4-4-4-12 hexadecimal form (Java's `UUID.toString`).
    public var uuidString: String {
        let hex = bytes.map { b -> String in
            let s = String(b, radix: 16)
            return s.count == 1 ? "0" + s : s
        }
        return hex[0..<4].joined() + "-" + hex[4..<6].joined() + "-" + hex[6..<8].joined() + "-" + hex[8..<10].joined() + "-" + hex[10..<16].joined()
    }

    public var description: String {
        let b = bytes
        var out: [UInt8] = []
        out.reserveCapacity(22)
        var i = 0
        while i < 16 {
            let chunk = b[i..<min(i + 3, 16)]
            var n: UInt32 = 0
            for (k, byte) in chunk.enumerated() { n |= UInt32(byte) << (16 - 8 * k) }
            let chars = chunk.count + 1
            for k in 0..<chars { out.append(Self.alphabet[Int((n >> (18 - 6 * k)) & 63)]) }
            i += 3
        }
        return String(decoding: out, as: UTF8.self)
    }

    /// Parses Kafka's 22-character base64url form; nil if it is not one.
    public init?(_ string: String) {
        let chars = Array(string.utf8)
        guard chars.count == 22 else { return nil }
        var bytes: [UInt8] = []
        var acc: UInt32 = 0
        var bits = 0
        for c in chars {
            guard let v = Self.alphabet.firstIndex(of: c) else { return nil }
            acc = (acc << 6) | UInt32(v)
            bits += 6
            if bits >= 8 {
                bits -= 8
                bytes.append(UInt8(truncatingIfNeeded: acc >> UInt32(bits)))
            }
        }
        guard bytes.count == 16 else { return nil }
        high = bytes[0..<8].reduce(0) { $0 << 8 | UInt64($1) }
        low = bytes[8..<16].reduce(0) { $0 << 8 | UInt64($1) }
    }
}
