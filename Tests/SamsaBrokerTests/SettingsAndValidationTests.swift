import Foundation
import KafkaProtocol
import KafkaRecords
import KafkaWire
import NIOCore
import NIOPosix
import SamsaStorage
import Testing
@testable import SamsaBroker

/// Issue 10, items 6 and 7 through the handlers: null error messages on success, unknown and
/// unsupported settings refused with INVALID_CONFIG, per-record errors on Produce (KIP-467),
/// compression.type and producer.id.expiration.ms honoured.
struct UnexpectedOutcome: Error {}

@Suite(.serialized) struct SettingsAndValidationTests {
    static func context(_ api: ApiKey, _ version: Int16) -> RequestContext {
        RequestContext(header: RequestHeader(requestApiKey: api.rawValue, requestApiVersion: version, correlationId: 1, clientId: "t"),
                       eventLoop: MultiThreadedEventLoopGroup.singleton.next(),
                       connection: ConnectionInfo(id: 1, remoteAddress: "test", remoteHost: "/test"))
    }

    /// Runs a handler and returns its response as a client decodes it at `version`.
    static func call<H: APIHandler>(_ handler: H, _ request: H.Request, version: Int16) async throws -> H.Request.Response
        where H.Request.Response: KafkaMessage {
        let response: H.Request.Response
        switch handler.handle(request, context: context(H.Request.apiKey, version)) {
        case let .respond(r): response = r
        case let .later(future): response = try await future.get()
        default: throw UnexpectedOutcome()
        }
        var bytes = ByteBuffer()
        response.write(to: &bytes, version: version)
        return try H.Request.Response(from: &bytes, version: version)
    }

    static func createTopic(_ broker: Broker, _ name: String, _ configs: [String: String] = [:], version: Int16 = 7) async throws
        -> CreateTopicsResponse.CreatableTopicResult {
        let request = CreateTopicsRequest(topics: [.init(name: name, numPartitions: 1, replicationFactor: 1,
                                                         configs: configs.map { .init(name: $0.key, value: $0.value) })])
        return try await call(CreateTopicsHandler(services: broker.services), request, version: version).topics[0]
    }

    static func produce(_ broker: Broker, _ topic: String, _ records: ByteBuffer, version: Int16 = 9) async throws
        -> ProduceResponse.PartitionProduceResponse {
        let request = ProduceRequest(acks: -1, timeoutMs: 1000, topicData: [.init(name: topic, partitionData: [.init(index: 0, records: records)])])
        return try await call(ProduceHandler(services: broker.services), request, version: version).responses[0].partitionResponses[0]
    }

    /// Kafka answers null error messages on success (the schemas' default is "" for several of
    /// them; real clients' tests assert null on DeleteTopics). FindCoordinator is Kafka's one
    /// exception: it sends Errors.NONE.message(), "NONE".
    @Test func successfulResponsesCarryKafkasErrorMessages() async throws {
        let dir = TempDir()
        defer { dir.cleanup() }
        let broker = try await startBroker(dir: dir.path)
        let services = broker.services

        for version: Int16 in [2, 5, 7] {
            let created = try await Self.createTopic(broker, "nulls-\(version)", version: version)
            #expect(created.errorCode == 0)
            #expect(created.errorMessage == nil, "CreateTopics v\(version)")
        }
        let grown = try await Self.call(CreatePartitionsHandler(services: services),
                                        CreatePartitionsRequest(topics: [.init(name: "nulls-7", count: 2, assignments: nil)]), version: 3)
        #expect(grown.results[0].errorCode == 0 && grown.results[0].errorMessage == nil)
        let altered = try await Self.call(AlterConfigsHandler(services: services),
                                          AlterConfigsRequest(resources: [.init(resourceType: 2, resourceName: "nulls-7", configs: [.init(name: "retention.ms", value: "100000")])]),
                                          version: 2)
        #expect(altered.responses[0].errorCode == 0 && altered.responses[0].errorMessage == nil)
        let incremental = try await Self.call(IncrementalAlterConfigsHandler(services: services),
                                              IncrementalAlterConfigsRequest(resources: [.init(resourceType: 2, resourceName: "nulls-7",
                                                                                               configs: [.init(name: "retention.ms", configOperation: 0, value: "200000")])]),
                                              version: 1)
        #expect(incremental.responses[0].errorCode == 0 && incremental.responses[0].errorMessage == nil)
        let produced = try await Self.produce(broker, "nulls-7", batch(["x"]))
        #expect(produced.errorCode == 0 && produced.errorMessage == nil && produced.recordErrors.isEmpty)
        let coordinator = try await Self.call(FindCoordinatorHandler(services: services, groups: broker.groups),
                                              FindCoordinatorRequest(keyType: 0, coordinatorKeys: ["g"]), version: 4)
        #expect(coordinator.coordinators[0].errorCode == 0 && coordinator.coordinators[0].errorMessage == "NONE")
        let oldCoordinator = try await Self.call(FindCoordinatorHandler(services: services, groups: broker.groups),
                                                 FindCoordinatorRequest(key: "g", keyType: 0), version: 3)
        #expect(oldCoordinator.errorCode == 0 && oldCoordinator.errorMessage == "NONE")
        for (version, topic) in [(Int16(5), "nulls-2"), (6, "nulls-5")] {
            let request = version >= 6 ? DeleteTopicsRequest(topics: [.init(name: topic)]) : DeleteTopicsRequest(topicNames: [topic])
            let deleted = try await Self.call(DeleteTopicsHandler(services: services), request, version: version)
            #expect(deleted.responses[0].errorCode == 0 && deleted.responses[0].errorMessage == nil, "DeleteTopics v\(version)")
        }
        // DescribeConfigs is the other way round: Kafka never sets the message on success, so it
        // goes out as the schema's default, "" (ConfigHelperUtils.createResponseConfig).
        let described = try await Self.call(DescribeConfigsHandler(services: services),
                                            DescribeConfigsRequest(resources: [.init(resourceType: 2, resourceName: "nulls-7", configurationKeys: nil)]),
                                            version: 4)
        #expect(described.results[0].errorCode == 0 && described.results[0].errorMessage == "")
        // An error still carries its message.
        let failed = try await Self.createTopic(broker, "nulls-7")
        #expect(failed.errorCode == KafkaErrorCode.topicAlreadyExists.rawValue && failed.errorMessage?.isEmpty == false)
        await broker.shutdown()
    }

    @Test func unknownAndUnsupportedTopicSettingsAreInvalidConfig() async throws {
        let dir = TempDir()
        defer { dir.cleanup() }
        let broker = try await startBroker(dir: dir.path)
        let services = broker.services
        let invalidConfig = KafkaErrorCode.invalidConfig.rawValue
        for configs in [["no.such.setting": "1"], ["remote.storage.enable": "true"], ["preallocate": "true"], ["compression.zstd.level": "99"],
                        ["compression.gzip.level": "0"], ["compression.lz4.level": "18"], ["message.format.version": "3.0"]] {
            let result = try await Self.createTopic(broker, "cfg", configs)
            #expect(result.errorCode == invalidConfig, "\(configs) was accepted")
            #expect(services.cache.topic("cfg") == nil)
        }
        let ok = try await Self.createTopic(broker, "cfg", ["compression.type": "zstd", "compression.zstd.level": "7", "remote.storage.enable": "false"])
        #expect(ok.errorCode == 0)

        let altered = try await Self.call(AlterConfigsHandler(services: services),
                                          AlterConfigsRequest(resources: [.init(resourceType: 2, resourceName: "cfg", configs: [.init(name: "retention.msec", value: "1")])]),
                                          version: 1)
        #expect(altered.responses[0].errorCode == invalidConfig)
        for (name, op, value) in [("retention.msec", Int8(0), "1"), ("remote.storage.enable", 0, "true"), ("bogus", 1, "")] as [(String, Int8, String)] {
            let incremental = try await Self.call(IncrementalAlterConfigsHandler(services: services),
                                                  IncrementalAlterConfigsRequest(resources: [.init(resourceType: 2, resourceName: "cfg",
                                                                                                   configs: [.init(name: name, configOperation: op, value: value)])]),
                                                  version: 1)
            #expect(incremental.responses[0].errorCode == invalidConfig, "\(name) op \(op)")
        }
        // Nothing of it was kept.
        #expect(services.cache.topic("cfg")?.configs == ["compression.type": "zstd", "compression.zstd.level": "7", "remote.storage.enable": "false"])
        await broker.shutdown()
    }

    @Test func unusedBrokerSettingsAreReportedNotFatal() throws {
        let config = try BrokerConfig(["log.dirs": "/tmp/x", "num.io.threads": "8", "socket.send.buffer.bytes": "102400", "log.retention.hourz": "1"])
        #expect(config.unusedKeys == ["log.retention.hourz", "num.io.threads", "socket.send.buffer.bytes"])
        #expect(throws: ConfigError.self) { try BrokerConfig(["compression.type": "brotli"]) }
        #expect(throws: ConfigError.self) { try BrokerConfig(["compression.zstd.level": "23"]) }
        #expect(throws: ConfigError.self) { try BrokerConfig(["log.preallocate": "true"]) }
        let segments = try BrokerConfig(["log.roll.jitter.ms": "5000"]).logConfig(overrides: ["segment.index.bytes": "4096"])
        #expect(segments.segmentJitterMs == 5000 && segments.segmentIndexBytes == 4096)
    }

    @Test func compressionTypeResolvesToALogConfig() throws {
        let config = try BrokerConfig(["compression.type": "gzip", "compression.gzip.level": "4"])
        let broker = config.logConfig(overrides: [:])
        #expect(broker.compression == .gzip && broker.compressionLevel == 4)
        let topic = config.logConfig(overrides: ["compression.type": "lz4"])
        #expect(topic.compression == .lz4 && topic.compressionLevel == nil)
        #expect(config.logConfig(overrides: ["compression.type": "uncompressed"]).compression == CompressionCodec.none)
        #expect(config.logConfig(overrides: ["compression.type": "producer"]).compression == nil)
        #expect(try BrokerConfig([:]).logConfig(overrides: [:]).compression == nil)
        #expect(config.logConfig(overrides: ["compression.type": "zstd", "compression.zstd.level": "-5"]).compressionLevel == -5)
    }

    @Test func produceReportsWhichRecordsWereRefused() async throws {
        let dir = TempDir()
        defer { dir.cleanup() }
        let broker = try await startBroker(dir: dir.path)
        #expect(try await Self.createTopic(broker, "compacted", ["cleanup.policy": "compact"]).errorCode == 0)
        var b = RecordBatchBuilder()
        for (i, key) in ["a", nil, "c", nil, nil].enumerated() {
            b.append(key: key.map { ByteBuffer(string: $0) }, value: ByteBuffer(string: "v\(i)"), timestamp: currentTimeMillis())
        }
        let keyless = try b.build(compression: .lz4)
        let response = try await Self.produce(broker, "compacted", keyless)
        #expect(response.errorCode == KafkaErrorCode.invalidRecord.rawValue)
        #expect(response.recordErrors.map(\.batchIndex) == [1, 3, 4])
        #expect(response.recordErrors.allSatisfy { $0.batchIndexErrorMessage?.contains("without key") == true })
        #expect(response.errorMessage?.contains("3 record errors") == true)
        #expect(response.baseOffset == -1)
        // Before KIP-467 (v7) the same error, without the list.
        let old = try await Self.produce(broker, "compacted", keyless, version: 7)
        #expect(old.errorCode == KafkaErrorCode.invalidRecord.rawValue && old.recordErrors.isEmpty)
        #expect(broker.services.replicas.partition(TopicPartition("compacted", 0))?.log.logEndOffset == 0)
        #expect(try await Self.produce(broker, "compacted", batch(["keyed"], key: "k")).errorCode == 0)
        await broker.shutdown()
    }

    @Test func topicAndBrokerCompressionTypeRecompressProducedBatches() async throws {
        let dir = TempDir()
        defer { dir.cleanup() }
        let broker = try await startBroker(dir: dir.path, ["compression.type": "gzip"])
        #expect(try await Self.createTopic(broker, "z", ["compression.type": "zstd"]).errorCode == 0)
        #expect(try await Self.createTopic(broker, "g").errorCode == 0)
        #expect(try await Self.createTopic(broker, "p", ["compression.type": "producer"]).errorCode == 0)
        for topic in ["z", "g", "p"] {
            #expect(try await Self.produce(broker, topic, batch(["one", "two", "three"])).errorCode == 0)
        }
        func storedCodec(_ topic: String) throws -> CompressionCodec? {
            let log = try #require(broker.services.replicas.partition(TopicPartition(topic, 0))?.log)
            let batch = try RecordBatch(from: try log.readBatches(from: 0, maxBytes: 1 << 20))
            #expect(try batch.records().map { String(buffer: $0.value!) } == ["one", "two", "three"])
            return batch.header.attributes.compression
        }
        #expect(try storedCodec("z") == .zstd)
        #expect(try storedCodec("g") == .gzip, "the broker's compression.type is the default")
        #expect(try storedCodec("p") == CompressionCodec.none)
        await broker.shutdown()
    }

    @Test func idleProducerIdsExpireOnTheBroker() async throws {
        let dir = TempDir()
        defer { dir.cleanup() }
        let broker = try await startBroker(dir: dir.path, ["producer.id.expiration.ms": "1000", "producer.id.expiration.check.interval.ms": "50"])
        #expect(try await Self.createTopic(broker, "pid").errorCode == 0)
        var b = RecordBatchBuilder(producerId: 42, producerEpoch: 0, baseSequence: 0)
        b.append(key: nil, value: ByteBuffer(string: "x"), timestamp: currentTimeMillis())
        #expect(try await Self.produce(broker, "pid", b.build()).errorCode == 0)
        let log = try #require(broker.services.replicas.partition(TopicPartition("pid", 0))?.log)
        #expect(log.producerState.producers[42] != nil)
        #expect(eventually(10) { log.producerState.producers[42] == nil }, "producer 42 was not expired after producer.id.expiration.ms")
        await broker.shutdown()
    }
}
