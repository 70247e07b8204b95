import KafkaProtocol
import KafkaWire
import NIOCore
import Testing

/// Every generated message at every valid version: random value → encode → decode → encode gives
/// identical bytes, and the decoded value equals the original.
@Suite struct RoundTripTests {
    static let iterationsPerVersion = 25

    @Test func everyMessageEveryVersionRoundTrips() throws {
        #expect(allGeneratedMessages.count == 204)
        var checked = 0
        for type in allGeneratedMessages {
            try Self.roundTrip(type, checked: &checked)
        }
        print("round-tripped \(checked) encodings")
    }

    static func roundTrip<M: ArbitraryMessage>(_ type: M.Type, checked: inout Int) throws {
        for version in M.validVersions {
            for i in 0..<iterationsPerVersion {
                // Fixed seed per message/version/iteration: failures are reproducible.
                var g = ArbitraryGenerator(seed: UInt64(truncatingIfNeeded: "\(M.self)".hashValueStable) &+ UInt64(version) << 32 &+ UInt64(i))
                let value = M.arbitrary(version: version, using: &g)
                let first = value.encoded(version: version)
                var reader = first
                let decoded = try M(from: &reader, version: version)
                #expect(reader.readableBytes == 0, "\(M.self) v\(version): \(reader.readableBytes) bytes left over")
                let second = decoded.encoded(version: version)
                #expect(first == second, "\(M.self) v\(version) iteration \(i): re-encoding differs")
                #expect(decoded == value, "\(M.self) v\(version) iteration \(i): decoded value differs")
                if first != second || decoded != value { return }
                checked += 1
            }
        }
    }
}

extension String {
    /// FNV-1a: a hash that does not change between runs (Swift's hashValue is seeded per process).
    var hashValueStable: UInt64 {
        var h: UInt64 = 0xCBF2_9CE4_8422_2325
        for b in utf8 { h = (h ^ UInt64(b)) &* 0x100_0000_01B3 }
        return h
    }
}
