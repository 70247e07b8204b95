import KafkaProtocol
import KafkaWire
import NIOCore

/// A message type the generator also wrote an `arbitrary` for (see Generated/).
protocol ArbitraryMessage: KafkaMessage {
    static func arbitrary(version: Int16, using g: inout ArbitraryGenerator) -> Self
}

/// SplitMix64: small, fast and reproducible from a fixed seed.
struct SplitMix64: RandomNumberGenerator {
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

/// Random field values for the round-trip property test. Values lean towards edges (0, -1, min,
/// max) so that sign and width mistakes show up; collections stay small so nesting stays cheap.
struct ArbitraryGenerator {
    var rng: SplitMix64
    var depth = 0

    init(seed: UInt64) { rng = SplitMix64(seed: seed) }

    mutating func integer<T: FixedWidthInteger>(_: T.Type) -> T {
        switch rng.next() % 8 {
        case 0: return 0
        case 1: return T.min
        case 2: return T.max
        case 3: return T.isSigned ? T(truncatingIfNeeded: -1) : 1
        default: return T(truncatingIfNeeded: rng.next())
        }
    }

    mutating func bool() -> Bool { rng.next() & 1 == 1 }
    mutating func int8() -> Int8 { integer(Int8.self) }
    mutating func int16() -> Int16 { integer(Int16.self) }
    mutating func uint16() -> UInt16 { integer(UInt16.self) }
    mutating func int32() -> Int32 { integer(Int32.self) }
    mutating func uint32() -> UInt32 { integer(UInt32.self) }
    mutating func int64() -> Int64 { integer(Int64.self) }
    mutating func float64() -> Double {
        let d = Double(bitPattern: rng.next())
        return d.isNaN ? 0.5 : d
    }
    mutating func uuid() -> KafkaUUID { KafkaUUID(high: rng.next(), low: rng.next()) }

    mutating func string() -> String {
        let alphabet = Array("abcXYZ019-_.é€😀 ")
        let n = Int(rng.next() % 12)
        return String((0..<n).map { _ in alphabet[Int(rng.next() % UInt64(alphabet.count))] })
    }

    mutating func bytes() -> ByteBuffer {
        let n = Int(rng.next() % 40)
        var b = ByteBuffer()
        for _ in 0..<n { b.writeInteger(UInt8(truncatingIfNeeded: rng.next())) }
        return b
    }

    mutating func nullable<T>(_ allowed: Bool, _ make: (inout ArbitraryGenerator) -> T) -> T? {
        if allowed, rng.next() % 4 == 0 { return nil }
        return make(&self)
    }

    mutating func array<T>(_ make: (inout ArbitraryGenerator) -> T) -> [T] {
        let limit: UInt64 = depth > 3 ? 1 : 4
        let n = Int(rng.next() % limit)
        depth += 1
        defer { depth -= 1 }
        return (0..<n).map { _ in make(&self) }
    }

    /// Unknown tagged fields with distinct tags not used by the schema, in ascending order.
    mutating func unknownTaggedFields(avoiding known: Set<UInt32>) -> [TaggedField] {
        guard rng.next() % 3 == 0 else { return [] }
        var tags = Set<UInt32>()
        for _ in 0..<(1 + rng.next() % 3) {
            let tag = rng.next() % 2 == 0 ? UInt32(rng.next() % 16) : UInt32(truncatingIfNeeded: rng.next() >> 40)
            if !known.contains(tag) { tags.insert(tag) }
        }
        return tags.sorted().map { TaggedField(tag: $0, data: bytes()) }
    }
}
