import KafkaProtocol
import KafkaWire
import NIOCore
import NIOEmbedded
import Testing

@Suite struct FramingTests {
    func framed(_ payloads: [[UInt8]]) -> ByteBuffer {
        var b = ByteBuffer()
        for p in payloads {
            b.writeInteger(Int32(p.count))
            b.writeBytes(p)
        }
        return b
    }

    @Test func splitsFramesAndWaitsForMore() throws {
        var b = framed([[1, 2, 3], [], [9]])
        #expect(try KafkaFraming.nextFrame(in: &b) == ByteBuffer(bytes: [1, 2, 3]))
        #expect(try KafkaFraming.nextFrame(in: &b) == ByteBuffer())
        #expect(try KafkaFraming.nextFrame(in: &b) == ByteBuffer(bytes: [9]))
        #expect(try KafkaFraming.nextFrame(in: &b) == nil)
        var partial = ByteBuffer(bytes: [0, 0, 0, 5, 1, 2])
        #expect(try KafkaFraming.nextFrame(in: &partial) == nil)
        #expect(partial.readableBytes == 6, "an incomplete frame is left in place")
        var tiny = ByteBuffer(bytes: [0, 0])
        #expect(try KafkaFraming.nextFrame(in: &tiny) == nil)
    }

    @Test func oversizedAndNegativeSizesFailAtOnce() throws {
        // Only the 4-byte prefix has arrived: the decision is made before buffering anything.
        var huge = ByteBuffer(bytes: [0x7F, 0xFF, 0xFF, 0xFF])
        #expect(throws: KafkaWireError.frameTooLarge(size: Int64(Int32.max), maximum: KafkaFraming.defaultMaximumFrameSize)) {
            try KafkaFraming.nextFrame(in: &huge)
        }
        var negative = ByteBuffer(bytes: [0xFF, 0xFF, 0xFF, 0xFE])
        #expect(throws: KafkaWireError.frameTooLarge(size: -2, maximum: 100)) {
            try KafkaFraming.nextFrame(in: &negative, maximumFrameSize: 100)
        }
        var justOver = framed([[UInt8](repeating: 0, count: 101)])
        #expect(throws: KafkaWireError.self) { try KafkaFraming.nextFrame(in: &justOver, maximumFrameSize: 100) }
        var atLimit = framed([[UInt8](repeating: 0, count: 100)])
        #expect(try KafkaFraming.nextFrame(in: &atLimit, maximumFrameSize: 100)?.readableBytes == 100)
    }

    @Test func nioDecoderReassemblesFramesFromAnyChunking() throws {
        let payloads: [[UInt8]] = (0..<50).map { i in (0..<(i * 7 % 300)).map { UInt8(truncatingIfNeeded: $0 &* 31 &+ i) } }
        let stream = framed(payloads)
        var rng = SplitMix64(seed: 11)
        for _ in 0..<5 {
            let channel = EmbeddedChannel(handler: ByteToMessageHandler(KafkaFrameDecoder(maximumFrameSize: 1024)))
            var rest = stream
            while rest.readableBytes > 0 {
                let n = min(rest.readableBytes, 1 + Int(rng.next() % 64))
                try channel.writeInbound(rest.readSlice(length: n)!)
            }
            for p in payloads {
                #expect(try channel.readInbound(as: ByteBuffer.self) == ByteBuffer(bytes: p))
            }
            #expect(try channel.readInbound(as: ByteBuffer.self) == nil)
            _ = try channel.finish()
        }
    }

    @Test func nioDecoderRejectsOversizedFrames() throws {
        let channel = EmbeddedChannel(handler: ByteToMessageHandler(KafkaFrameDecoder(maximumFrameSize: 16)))
        #expect(throws: KafkaWireError.frameTooLarge(size: 17, maximum: 16)) {
            try channel.writeInbound(ByteBuffer(bytes: [0, 0, 0, 17]))
        }
        _ = try? channel.finish()
    }

    @Test func requestFrameRoundTripWithEachHeaderVersion() throws {
        // v1 header (non-flexible Metadata v4) and v2 header (flexible Metadata v12).
        for version: Int16 in [4, 12] {
            var request = MetadataRequest()
            request.topics = [.init(name: "clicks")]
            request.allowAutoTopicCreation = true
            var out = ByteBuffer()
            request.writeFrame(into: &out, version: version, correlationId: 77, clientId: "samsa-test")
            let frame = try #require(try KafkaFraming.nextFrame(in: &out))
            let parsed = try KafkaRequestFrame(parsing: frame)
            #expect(parsed.headerVersion == (version >= 9 ? 2 : 1))
            #expect(parsed.apiKey == .metadata && parsed.apiVersion == version && parsed.correlationId == 77)
            #expect(parsed.header.clientId == "samsa-test")
            #expect(try parsed.decodeBody(as: MetadataRequest.self).topics?.first?.name == "clicks")
        }
    }

    @Test func responseHeaderVersions() throws {
        // ApiVersions v3 is flexible but its response header is always v0: size, correlation id, body.
        var av = ApiVersionsResponse()
        av.apiKeys = [.init(apiKey: 18, minVersion: 0, maxVersion: 4)]
        var out = ByteBuffer()
        av.writeFrame(into: &out, version: 3, correlationId: 5)
        var bytes = Array(out.readableBytesView)
        #expect(Array(bytes[4..<8]) == [0, 0, 0, 5])
        #expect(Array(bytes[8..<10]) == [0, 0], "error code follows the correlation id directly")
        var frame = try #require(try KafkaFraming.nextFrame(in: &out))
        #expect(try ApiVersionsResponse.decodeFrame(frame, version: 3) == (5, av))

        // Metadata v12 response: header v1 carries an (empty) tagged-field section.
        var md = MetadataResponse()
        md.clusterId = "c"
        out.clear()
        md.writeFrame(into: &out, version: 12, correlationId: 6)
        bytes = Array(out.readableBytesView)
        #expect(Array(bytes[4..<9]) == [0, 0, 0, 6, 0])
        frame = try #require(try KafkaFraming.nextFrame(in: &out))
        let decoded = try MetadataResponse.decodeFrame(frame, version: 12)
        #expect(decoded.correlationId == 6 && decoded.response == md)
        #expect(ApiKey.apiVersions.responseHeaderVersion(3) == 0)
        #expect(ApiKey.metadata.responseHeaderVersion(8) == 0)
        #expect(ApiKey.controlledShutdown.requestHeaderVersion(0) == 0)
    }

    @Test func tooNewApiVersionsRequestStillYieldsItsCorrelationId() throws {
        // A client newer than this build sends ApiVersions v9; the broker must answer with its
        // correlation id (UNSUPPORTED_VERSION), so the header parses even though the body is unknown.
        var b = ByteBuffer()
        RequestHeader(requestApiKey: 18, requestApiVersion: 9, correlationId: 42, clientId: "future")
            .write(to: &b, version: 2)
        b.writeBytes([0x01, 0x02, 0x03])
        let frame = try KafkaRequestFrame(parsing: b)
        #expect(frame.correlationId == 42 && frame.apiKey == .apiVersions && frame.headerVersion == 2)
        #expect(throws: KafkaWireError.unsupportedVersion(api: "ApiVersionsRequest", version: 9)) { try frame.decodeBody() }
        var unknown = ByteBuffer()
        RequestHeader(requestApiKey: 999, requestApiVersion: 0, correlationId: 1, clientId: nil).write(to: &unknown, version: 1)
        let u = try KafkaRequestFrame(parsing: unknown)
        #expect(u.apiKey == nil)
        #expect(throws: KafkaWireError.unknownApiKey(999)) { try u.decodeBody() }
    }

    @Test func trailingBytesAfterABodyAreIgnoredUnlessStrict() throws {
        // librdkafka 2.x writes its all-topics Metadata v12 request with 3 extra bytes; Kafka ignores them.
        var frame = ByteBuffer()
        MetadataRequest(topics: nil).writeFrame(into: &frame, version: 12, correlationId: 1, clientId: "rdkafka")
        frame.writeBytes([0, 0, 0])
        frame.setInteger(Int32(frame.readableBytes - 4), at: 0)
        frame.moveReaderIndex(forwardBy: 4)
        let parsed = try KafkaRequestFrame(parsing: frame)
        #expect(try parsed.decodeBody(as: MetadataRequest.self).topics == nil)
        #expect(throws: KafkaWireError.self) { try parsed.decodeBody(as: MetadataRequest.self, strict: true) }
    }
}
