import Foundation
import KafkaProtocol
import KafkaRecords
import KafkaWire
import NIOCore
import Testing

/// Requests captured from real clients (see Fixtures/README.md) decode to the values the clients
/// were asked to send, and re-encode to the very same bytes.
@Suite struct GoldenRequestTests {
    static let fixtures = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("Fixtures")

    static func load(_ name: String) throws -> ByteBuffer {
        ByteBuffer(bytes: try Data(contentsOf: fixtures.appendingPathComponent(name)))
    }

    static var allFixtureNames: [String] {
        (try? FileManager.default.contentsOfDirectory(atPath: fixtures.path).filter { $0.hasSuffix(".bin") }.sorted()) ?? []
    }

    /// Parses a captured frame and checks the header and the byte-exact re-encoding.
    func frame(_ name: String, api: ApiKey, version: Int16, correlationId: Int32, clientId: String) throws -> KafkaRequestFrame {
        let bytes = try Self.load(name)
        let frame = try KafkaRequestFrame(parsing: bytes)
        #expect(frame.apiKey == api)
        #expect(frame.apiVersion == version)
        #expect(frame.correlationId == correlationId)
        #expect(frame.header.clientId == clientId)
        #expect(frame.headerVersion == (api.requestFlexibleVersions?.contains(version) == true ? 2 : 1))
        let body = try frame.decodeBody(strict: true)
        var again = ByteBuffer()
        frame.header.write(to: &again, version: frame.headerVersion)
        body.write(to: &again, version: version)
        #expect(again == bytes, "\(name): re-encoding differs from the captured bytes")
        return frame
    }

    @Test func everyFixtureIsCoveredAndRoundTrips() throws {
        let names = Self.allFixtureNames
        #expect(names.count == 13)
        for name in names {
            let bytes = try Self.load(name)
            let frame = try KafkaRequestFrame(parsing: bytes)
            let body = try frame.decodeBody(strict: true)
            var again = ByteBuffer()
            frame.header.write(to: &again, version: frame.headerVersion)
            body.write(to: &again, version: frame.apiVersion)
            #expect(again == bytes, "\(name)")
        }
    }

    @Test(arguments: [
        ("kcat-apiversions-v3.bin", "golden-kcat", "librdkafka", "2.0.2", Int16(3)),
        ("kafka-python-apiversions-v3.bin", "golden-kafka-python", "kafka-python", "3.0.12", Int16(3)),
        ("kafka-python-apiversions-v4.bin", "golden-kafka-python", "kafka-python", "3.0.12", Int16(4)),
        ("confluent-kafka-apiversions-v3.bin", "golden-confluent-kafka", "confluent-kafka-python", "2.16.1-rdkafka-2.16.0", Int16(3)),
    ])
    func apiVersions(file: String, clientId: String, software: String, softwareVersion: String, version: Int16) throws {
        let correlation: Int32 = file.hasPrefix("kafka-python-apiversions-v3") ? 2 : 1
        let f = try frame(file, api: .apiVersions, version: version, correlationId: correlation, clientId: clientId)
        let request = try f.decodeBody(as: ApiVersionsRequest.self, strict: true)
        #expect(request.clientSoftwareName == software)
        #expect(request.clientSoftwareVersion == softwareVersion)
    }

    @Test func kcatMetadataV4() throws {
        let brokers = try frame("kcat-metadata-v4.bin", api: .metadata, version: 4, correlationId: 2, clientId: "golden-kcat")
            .decodeBody(as: MetadataRequest.self, strict: true)
        #expect(brokers.topics == [])
        #expect(brokers.allowAutoTopicCreation == false)
        let all = try frame("kcat-metadata-v4-alltopics.bin", api: .metadata, version: 4, correlationId: 3, clientId: "golden-kcat")
            .decodeBody(as: MetadataRequest.self, strict: true)
        #expect(all.topics == nil)
        #expect(all.allowAutoTopicCreation)
        let one = try frame("kcat-metadata-v4-topics.bin", api: .metadata, version: 4, correlationId: 2, clientId: "golden-kcat")
            .decodeBody(as: MetadataRequest.self, strict: true)
        #expect(one.topics?.map(\.name) == ["golden"])
    }

    @Test func flexibleMetadataV12() throws {
        let py = try frame("kafka-python-metadata-v12-topics.bin", api: .metadata, version: 12, correlationId: 2,
                           clientId: "golden-kafka-python").decodeBody(as: MetadataRequest.self, strict: true)
        #expect(py.topics?.map(\.name) == ["golden"])
        #expect(py.topics?.first?.topicId == .zero)
        #expect(py.includeTopicAuthorizedOperations == false)
        let rd = try frame("confluent-kafka-metadata-v12.bin", api: .metadata, version: 12, correlationId: 2,
                           clientId: "golden-confluent-kafka").decodeBody(as: MetadataRequest.self, strict: true)
        #expect(rd.topics?.map(\.name) == ["golden"])
        #expect(rd.allowAutoTopicCreation)
        let empty = try frame("kafka-python-metadata-v12.bin", api: .metadata, version: 12, correlationId: 3,
                              clientId: "golden-kafka-python").decodeBody(as: MetadataRequest.self, strict: true)
        #expect(empty.topics == [])
    }

    @Test(arguments: [
        ("kcat-produce-v7.bin", "golden-kcat", Int16(7), Int32(3), Int32(30000)),
        ("kafka-python-produce-v9.bin", "golden-kafka-python", Int16(9), Int32(3), Int32(10000)),
        ("confluent-kafka-produce-v9.bin", "golden-confluent-kafka", Int16(9), Int32(2), Int32(30000)),
    ])
    func produce(file: String, clientId: String, version: Int16, correlationId: Int32, timeout: Int32) throws {
        let request = try frame(file, api: .produce, version: version, correlationId: correlationId, clientId: clientId)
            .decodeBody(as: ProduceRequest.self, strict: true)
        #expect(request.transactionalId == nil)
        #expect(request.acks == -1)
        #expect(request.timeoutMs == timeout)
        #expect(request.topicData.map(\.name) == ["golden"])
        let partition = try #require(request.topicData.first?.partitionData.first)
        #expect(partition.index == 0)
        var reader = RecordBatchReader(try #require(partition.records))
        let batch = try #require(try reader.next())
        #expect(try reader.next() == nil)
        try batch.validate()  // the client's CRC32C agrees with ours
        #expect(batch.header.magic == 2)
        #expect(batch.header.baseOffset == 0)
        #expect(batch.header.attributes.compression == CompressionCodec.none)
        #expect(batch.header.recordCount == 3 && batch.header.lastOffsetDelta == 2)
        #expect(batch.header.producerId == -1)
        let records = try batch.records()
        #expect(records.map { $0.key.map { String(buffer: $0) } } == ["key1", "key2", "key3"])
        #expect(records.map { $0.value.map { String(buffer: $0) } } == ["value1", "value2", "value3"])
        #expect(records.map(\.offsetDelta) == [0, 1, 2])
        for r in records {
            #expect(r.headers == [RecordHeader(key: "h1", value: ByteBuffer(string: "v1"))])
        }
    }
}
