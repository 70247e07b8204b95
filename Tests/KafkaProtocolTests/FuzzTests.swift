import Foundation
import KafkaProtocol
import KafkaWire
import NIOCore
import Testing

/// Hostile input: truncated, oversized and random frames must make the decoder throw a typed
/// error: never crash, hang or allocate according to a hostile length field.
@Suite struct FuzzTests {
    /// Runs the whole request decoding path on one frame payload; returns whether it decoded.
    /// Any error other than KafkaWireError is a test failure.
    @discardableResult
    static func decode(_ payload: ByteBuffer) -> Bool {
        do {
            let frame = try KafkaRequestFrame(parsing: payload)
            _ = try frame.decodeBody()
            return true
        } catch is KafkaWireError {
            return false
        } catch {
            Issue.record("untyped error \(error)")
            return false
        }
    }

    static func seeds() throws -> [ByteBuffer] {
        var seeds = try GoldenRequestTests.allFixtureNames.map { try GoldenRequestTests.load($0) }
        // Plus one valid random request per API at its newest and oldest versions.
        var g = ArbitraryGenerator(seed: 3)
        for key in ApiKey.allCases {
            for version in [key.validVersions.lowerBound, key.validVersions.upperBound] {
                guard let type = key.requestType as? any ArbitraryMessage.Type else { continue }
                let header = RequestHeader(requestApiKey: key.rawValue, requestApiVersion: version, correlationId: 1, clientId: "fuzz")
                var b = ByteBuffer()
                header.write(to: &b, version: key.requestHeaderVersion(version))
                type.arbitrary(version: version, using: &g).write(to: &b, version: version)
                seeds.append(b)
            }
        }
        return seeds
    }

    @Test func truncatedFramesAlwaysThrow() throws {
        for seed in try Self.seeds() {
            #expect(Self.decode(seed), "seed must decode whole")
            for length in 0..<seed.readableBytes {
                #expect(!Self.decode(seed.getSlice(at: seed.readerIndex, length: length)!),
                        "a frame truncated to \(length) of \(seed.readableBytes) bytes decoded")
            }
        }
    }

    @Test(.timeLimit(.minutes(2)))
    func hundredThousandRandomFrames() throws {
        let seeds = try Self.seeds()
        var rng = SplitMix64(seed: 0x5A45_A5A5)
        var decoded = 0
        let total = 100_000
        var stream = ByteBuffer()
        for i in 0..<total {
            var frame: ByteBuffer
            switch i % 4 {
            case 0:
                // Pure noise of random length.
                frame = ByteBuffer(bytes: (0..<Int(rng.next() % 200)).map { _ in UInt8(truncatingIfNeeded: rng.next()) })
            case 1:
                // A plausible header (known API, valid version) followed by noise: reaches deep decoders.
                let key = ApiKey.allCases[Int(rng.next() % UInt64(ApiKey.allCases.count))]
                let v = key.validVersions
                let version = v.lowerBound + Int16(rng.next() % UInt64(v.count))
                frame = ByteBuffer()
                RequestHeader(requestApiKey: key.rawValue, requestApiVersion: version, correlationId: Int32(i), clientId: "f")
                    .write(to: &frame, version: key.requestHeaderVersion(version))
                frame.writeBytes((0..<Int(rng.next() % 120)).map { _ in UInt8(truncatingIfNeeded: rng.next() % 5 == 0 ? 0xFF : rng.next() % 4) })
            default:
                // A valid frame with a few bytes mutated: lengths, counts and varints become hostile.
                var bytes = Array(seeds[Int(rng.next() % UInt64(seeds.count))].readableBytesView)
                for _ in 0..<(1 + rng.next() % 4) where !bytes.isEmpty {
                    let at = Int(rng.next() % UInt64(bytes.count))
                    switch rng.next() % 4 {
                    case 0: bytes[at] = UInt8(truncatingIfNeeded: rng.next())
                    case 1: bytes[at] = 0xFF
                    case 2: bytes[at] = 0x7F
                    default: bytes.remove(at: at)
                    }
                }
                frame = ByteBuffer(bytes: bytes)
            }
            // Through the framing layer too, with random size prefixes now and then.
            stream.clear()
            stream.writeInteger(rng.next() % 50 == 0 ? Int32(truncatingIfNeeded: rng.next()) : Int32(frame.readableBytes))
            stream.writeImmutableBuffer(frame)
            do {
                if let payload = try KafkaFraming.nextFrame(in: &stream, maximumFrameSize: 1 << 20), Self.decode(payload) {
                    decoded += 1
                }
            } catch is KafkaWireError {
            } catch {
                Issue.record("untyped framing error \(error)")
            }
        }
        print("fuzz: \(total) frames, \(decoded) decoded, \(total - decoded) rejected with KafkaWireError")
        #expect(decoded < total)
    }
}
