import KafkaCompression
import KafkaProtocol
import KafkaRecords
import NIOCore
import SamsaBroker
import SamsaClient
import Synchronization
import Testing

@Suite(.serialized) struct ClientIntegrationTests {
    @Test func murmur2MatchesTheJavaClient() {
        // Values of Java's Utils.murmur2(String.valueOf(n).getBytes()) (kafkajs' defaultJava vectors).
        let java: [String: Int32] = ["0": 971027396, "1": -1993445489, "128": -326012175, "2187": -1508407203,
                                     "16384": -325739742, "78125": -1654490814, "279936": 1462227128, "823543": -2014198330]
        for (key, expected) in java { #expect(Murmur2.hash(Array(key.utf8)) == expected, "key \(key)") }
        #expect(Murmur2.partition(for: ByteBuffer(string: "1"), partitionCount: 6) == Int32((-1993445489 & 0x7fffffff) % 6))
    }

    @Test func produceAndConsumeKeysHeadersAndTimestamps() async throws {
        try await withBroker { bootstrap, _ in
            let client = ClientConfiguration(bootstrapServers: [bootstrap])
            let admin = KafkaAdmin(configuration: client)
            try await admin.createTopic("rt", partitions: 3)
            let producer = try KafkaProducer(configuration: ProducerConfiguration(client: client))
            var sent: [(key: String, value: String, ts: Int64, meta: RecordMetadata)] = []
            for i in 0..<300 {
                let key = "key-\(i % 17)", value = "value-\(i)", ts = 1_700_000_000_000 + Int64(i)
                let meta = try await producer.send(ProducerRecord(topic: "rt", key: key, value: value, headers: [("h", "\(i)"), ("x", "y")], timestamp: ts))
                #expect(meta.partition == Murmur2.partition(for: ByteBuffer(string: key), partitionCount: 3))
                sent.append((key, value, ts, meta))
            }
            await producer.close()
            let consumer = try KafkaConsumer(configuration: ConsumerConfiguration(client: client))
            let partitions = try await admin.partitions(of: ["rt"])
            consumer.assign(partitions)
            consumer.seekToBeginning(partitions)
            var got: [String: ConsumerRecord] = [:]
            let deadline = TestDeadline()
            while got.count < 300 {
                try deadline.check("300 records (\(got.count) so far)")
                for r in try await consumer.poll(timeoutMs: 5000) { got[String(buffer: r.value!)] = r }
            }
            for s in sent {
                let r = try #require(got[s.value])
                #expect(String(buffer: r.key!) == s.key && r.timestamp == s.ts && r.partition == s.meta.partition && r.offset == s.meta.offset)
                #expect(r.headers.map(\.key) == ["h", "x"] && r.headers.last?.value == ByteBuffer(string: "y"))
            }
            await consumer.close()
            await admin.close()
        }
    }

    @Test(arguments: [CompressionCodec.gzip, .snappy, .lz4, .zstd])
    func compressedBatchesRoundTrip(codec: CompressionCodec) async throws {
        try await withBroker { bootstrap, _ in
            let client = ClientConfiguration(bootstrapServers: [bootstrap])
            var config = ProducerConfiguration(client: client)
            config.compression = codec
            config.lingerMs = 20
            let producer = try KafkaProducer(configuration: config)
            for i in 0..<500 { try await producer.enqueue(ProducerRecord(topic: "c", partition: 0, value: "compressed-\(i)")) }
            await producer.close()
            let consumer = try KafkaConsumer(configuration: ConsumerConfiguration(client: client))
            consumer.assign([TopicPartition("c", 0)])
            consumer.seekToBeginning([TopicPartition("c", 0)])
            var values: [String] = []
            let deadline = TestDeadline()
            while values.count < 500 {
                try deadline.check("500 records (\(values.count) so far)")
                values += try await consumer.poll(timeoutMs: 5000).map { String(buffer: $0.value!) }
            }
            #expect(values == (0..<500).map { "compressed-\($0)" })
            await consumer.close()
        }
    }

    /// KIP-390: the producer compresses at the configured level. The broker keeps the producer's batches
    /// (`compression.type=producer`), so each stored records section must be exactly what the library makes of
    /// the uncompressed records at that level (the libraries are deterministic).
    @Test(arguments: [(CompressionCodec.gzip, 1), (.gzip, 9), (.lz4, 1), (.lz4, 17), (.zstd, -5), (.zstd, 19)])
    func compressionLevelsReachTheBatches(codec: CompressionCodec, level: Int) async throws {
        try await withBroker { bootstrap, broker in
            var config = ProducerConfiguration(client: ClientConfiguration(bootstrapServers: [bootstrap]))
            try config.set("compression.type", "\(codec)")
            try config.set("compression.\(codec).level", "\(level)")
            #expect(config.compressionLevel == level)
            config.lingerMs = 20
            let producer = try KafkaProducer(configuration: config)
            for i in 0..<400 { try await producer.enqueue(ProducerRecord(topic: "levels", partition: 0, value: "record \(i) \(i * 7919 % 1000)")) }
            await producer.close()
            let log = try #require(broker.logManager.log(TopicPartition("levels", 0)))
            var records = 0
            var batches = 0
            var offset: Int64 = 0
            while offset < log.highWatermark {
                let before = offset
                var reader = RecordBatchReader(try log.readBatches(from: offset, maxBytes: 1 << 20), allowsPartialTrailingBatch: true)
                while let batch = try reader.next() {
                    #expect(batch.header.attributes.compression == codec)
                    let plain = try batch.uncompressedRecords()
                    let expected = try KafkaCompression.compress(codec, plain, level: level)
                    #expect(batch.recordsPayload == expected, "batch at \(batch.header.baseOffset) not compressed at level \(level)")
                    records += Int(batch.header.recordCount)
                    batches += 1
                    offset = batch.header.lastOffset + 1
                }
                if offset == before {
                    Issue.record("no batch at offset \(offset) below the high watermark")
                    break
                }
            }
            #expect(records == 400 && batches > 0)
        }
    }

    @Test func invalidCompressionSettingsAreRefused() throws {
        var config = ProducerConfiguration()
        config.compression = .lz4
        config.compressionLevel = 18
        #expect(throws: KafkaClientError.invalidConfiguration("compression.lz4.level 18 is out of range 1...17")) {
            try KafkaProducer(configuration: config)
        }
        config = ProducerConfiguration()
        try config.set("compression.gzip.level", "0")
        #expect(throws: KafkaClientError.self) { try KafkaProducer(configuration: config) }
        config = ProducerConfiguration()
        config.compression = .snappy
        config.compressionLevel = 3
        #expect(throws: KafkaClientError.self) { try KafkaProducer(configuration: config) }
        #expect(throws: KafkaClientError.self) { try config.set("compression.zstd.level", "high") }
        #expect(throws: KafkaClientError.self) { try config.set("compression.brotli.level", "1") }
        // Defaults are Kafka's, and -1 is a valid gzip level.
        let defaults = ProducerConfiguration()
        #expect(defaults.compressionGzipLevel == -1 && defaults.compressionLz4Level == 9 && defaults.compressionZstdLevel == 3)
        config = ProducerConfiguration()
        try config.set("compression.type", "gzip")
        try config.set("compression.gzip.level", "-1")
        _ = try KafkaProducer(configuration: config)
    }

    @Test func commitAsyncReportsItsFailureToTheCaller() async throws {
        // No groupId: the commit cannot happen, and the completion hears why (it used to be dropped).
        let consumer = try KafkaConsumer(configuration: ConsumerConfiguration(client: ClientConfiguration(bootstrapServers: ["127.0.0.1:1"])))
        let outcome = try await withThrowingTaskGroup(of: KafkaClientError?.self) { group in
            group.addTask {
                await withCheckedContinuation { (c: CheckedContinuation<KafkaClientError?, Never>) in consumer.commitAsync { c.resume(returning: $0) } }
            }
            group.addTask {
                try await Task.sleep(nanoseconds: 10_000_000_000)
                throw KafkaClientError.timedOut(operation: "commitAsync completion", milliseconds: 10_000)
            }
            defer { group.cancelAll() }
            return try await group.next()!
        }
        #expect(outcome == .invalidConfiguration("committing offsets needs a groupId"))
        await consumer.close()
    }

    @Test func idempotentRetriesLeaveNoDuplicatesWhenConnectionsAreCut() async throws {
        let proxy = try await ChaosProxy(cutEvery: 7)
        try await withBroker(advertisedPort: proxy.port) { _, broker in
            proxy.forward(to: broker.boundPort)
            let bootstrap = "127.0.0.1:\(proxy.port)"
            var config = ProducerConfiguration(client: ClientConfiguration(bootstrapServers: [bootstrap]))
            config.batchSize = 512
            config.lingerMs = 1
            let producer = try KafkaProducer(configuration: config)
            let failures = Atomic<Int>(0)
            for i in 0..<3000 {
                try await producer.enqueue(ProducerRecord(topic: "idem", partition: 0, value: "m-\(i)")) { result in
                    if case .failure = result { failures.wrappingAdd(1, ordering: .relaxed) }
                }
            }
            await producer.close()
            #expect(failures.load(ordering: .relaxed) == 0)
            #expect(proxy.cutCount > 0, "the proxy must actually have cut connections with responses in flight")
            // Read back directly from the broker: every record exactly once, in order.
            let consumer = try KafkaConsumer(configuration: ConsumerConfiguration(client: ClientConfiguration(bootstrapServers: ["127.0.0.1:\(broker.boundPort)"])))
            _ = consumer
            let log = try #require(broker.logManager.log(TopicPartition("idem", 0)))
            var values: [String] = []
            var offset: Int64 = 0
            while offset < log.highWatermark {
                let before = offset
                let bytes = try log.readBatches(from: offset, maxBytes: 1 << 20)
                var reader = RecordBatchReader(bytes, allowsPartialTrailingBatch: true)
                while let batch = try reader.next() {
                    try batch.forEachRecord { values.append(String(buffer: $0.value!)) }
                    offset = batch.header.lastOffset + 1
                }
                if offset == before {
                    Issue.record("no batch at offset \(offset) below the high watermark")
                    break
                }
            }
            #expect(values.count == 3000)
            #expect(values == (0..<3000).map { "m-\($0)" })
            await consumer.close()
        }
        await proxy.close()
    }

    @Test func aGroupOfThreeSharesPartitionsAndRebalancesWhenOneLeaves() async throws {
        try await withBroker { bootstrap, _ in
            let client = ClientConfiguration(bootstrapServers: [bootstrap])
            let admin = KafkaAdmin(configuration: client)
            try await admin.createTopic("shared", partitions: 6)
            var config = ConsumerConfiguration(client: client, groupId: "three")
            config.autoOffsetReset = .earliest
            config.sessionTimeoutMs = 6000
            config.heartbeatIntervalMs = 200
            let consumers = try (0..<3).map { _ in try KafkaConsumer(configuration: config) }
            for c in consumers { try c.subscribe(["shared"]) }
            let seen = Mutex<Set<String>>([])
            let producer = try KafkaProducer(configuration: ProducerConfiguration(client: client))
            for i in 0..<600 { try await producer.enqueue(ProducerRecord(topic: "shared", key: "k\(i)", value: "v\(i)")) }
            await producer.flush()

            func pollAll(_ cs: [KafkaConsumer], until done: () -> Bool) async throws {
                for _ in 0..<300 where !done() {
                    for c in cs { for r in try await c.poll(timeoutMs: 20) { _ = seen.withLock { $0.insert(String(buffer: r.value!)) } } }
                }
            }
            try await pollAll(consumers) { consumers.allSatisfy { $0.assignment.count == 2 } }
            #expect(consumers.map { $0.assignment.count } == [2, 2, 2])
            #expect(Set(consumers.flatMap(\.assignment)).count == 6)
            await consumers[2].close()
            let rest = Array(consumers[0..<2])
            try await pollAll(rest) { rest.allSatisfy { $0.assignment.count == 3 } }
            #expect(rest.map { $0.assignment.count } == [3, 3])
            for i in 600..<700 { try await producer.enqueue(ProducerRecord(topic: "shared", key: "k\(i)", value: "v\(i)")) }
            await producer.close()
            try await pollAll(rest) { seen.withLock { $0.count } >= 700 }
            #expect(seen.withLock { $0.count } == 700)
            for c in rest { await c.close() }
            await admin.close()
        }
    }

    @Test func adminDescribesGroupsAndCommittedOffsets() async throws {
        try await withBroker { bootstrap, _ in
            let client = ClientConfiguration(bootstrapServers: [bootstrap])
            let admin = KafkaAdmin(configuration: client)
            try await admin.createTopic("ad", partitions: 2, configs: ["retention.ms": "1234567"])
            #expect(try await admin.describeTopicConfigs("ad").first { $0.name == "retention.ms" }?.value == "1234567")
            try await admin.alterTopicConfigs("ad", set: ["retention.ms": "7654321"])
            #expect(try await admin.describeTopicConfigs("ad").first { $0.name == "retention.ms" }?.source == .dynamicTopic)
            var config = ConsumerConfiguration(client: client, groupId: "ad-group")
            config.enableAutoCommit = false
            let consumer = try KafkaConsumer(configuration: config)
            consumer.assign([TopicPartition("ad", 0)])
            try await consumer.commit([TopicPartition("ad", 0): 0])
            #expect(try await admin.listGroupOffsets("ad-group") == [TopicPartition("ad", 0): 0])
            #expect(try await admin.listGroups().contains { $0.groupId == "ad-group" })
            try await admin.deleteGroups(["ad-group"])
            #expect(try await admin.listGroupOffsets("ad-group").isEmpty)
            await consumer.close()
            do {
                try await admin.createTopic("ad")
                Issue.record("creating an existing topic must fail")
            } catch let e as KafkaClientError {
                #expect(e.description.contains("TOPIC_ALREADY_EXISTS") && !e.isRetriable)
            }
            await admin.close()
        }
    }
}

import Logging
import ServiceLifecycle

@Suite(.serialized) struct ServiceLifecycleTests {
    @Test func gracefulShutdownFlushesAndClosesTheProducer() async throws {
        try await withBroker { bootstrap, broker in
            var config = ProducerConfiguration(client: ClientConfiguration(bootstrapServers: [bootstrap]))
            config.lingerMs = 60_000  // only a flush sends these
            let producer = try KafkaProducer(configuration: config)
            for i in 0..<10 { try await producer.enqueue(ProducerRecord(topic: "svc", partition: 0, value: "s\(i)")) }
            let group = ServiceGroup(services: [producer], gracefulShutdownSignals: [], cancellationSignals: [], logger: Logger(label: "svc"))
            try await withThrowingTaskGroup(of: Void.self) { tasks in
                tasks.addTask { try await group.run() }
                await group.triggerGracefulShutdown()
                try await tasks.waitForAll()
            }
            #expect(broker.logManager.log(TopicPartition("svc", 0))?.highWatermark == 10)
            await #expect(throws: KafkaClientError.closed) { try await producer.send(ProducerRecord(topic: "svc", value: "late")) }
        }
    }
}

@Suite(.serialized) struct MinInsyncReplicasTests {
    @Test func acksAllIsRefusedWhenTheTopicWantsMoreInSyncReplicasThanItHas() async throws {
        try await withBroker { bootstrap, _ in
            let client = ClientConfiguration(bootstrapServers: [bootstrap])
            let admin = KafkaAdmin(configuration: client)
            try await admin.createTopic("isr", partitions: 1, configs: ["min.insync.replicas": "2"])
            var config = ProducerConfiguration(client: client)
            config.deliveryTimeoutMs = 2000
            let strict = try KafkaProducer(configuration: config)
            do {
                try await strict.send(ProducerRecord(topic: "isr", value: "x"))
                Issue.record("acks=all must fail with one in-sync replica and min.insync.replicas=2")
            } catch let e as KafkaClientError {
                #expect(e.description.contains("NOT_ENOUGH_REPLICAS"), "\(e)")
            }
            await strict.close()
            config.acks = .leader
            config.enableIdempotence = false
            let relaxed = try KafkaProducer(configuration: config)
            #expect(try await relaxed.send(ProducerRecord(topic: "isr", value: "y")).offset == 0)
            await relaxed.close()
            await admin.close()
        }
    }
}
