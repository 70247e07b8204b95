import Testing
@testable import SamsaBroker

@Suite struct BrokerConfigTests {
    @Test func parsesKafkaPropertiesFiles() {
        let text = """
            # comment
            ! also a comment
            broker.id=3
            listeners = PLAINTEXT://0.0.0.0:9093
            log.dirs: /var/lib/samsa
            long.value=a,\\
              b
            """
        let values = BrokerConfig.parseProperties(text)
        #expect(values == ["broker.id": "3", "listeners": "PLAINTEXT://0.0.0.0:9093", "log.dirs": "/var/lib/samsa", "long.value": "a,b"])
    }

    @Test func defaultsAndDerivedValues() throws {
        let c = try BrokerConfig(["listeners": "PLAINTEXT://0.0.0.0:9093", "log.retention.hours": "1"])
        #expect(c.brokerId == 0 && c.listener == Endpoint(host: "0.0.0.0", port: 9093))
        #expect(c.advertised == Endpoint(host: "127.0.0.1", port: 9093))
        #expect(c.logDir == "./samsa-data" && c.numPartitions == 1 && c.autoCreateTopics)
        #expect(c.logConfig(overrides: [:]).retentionMs == 3_600_000)
        #expect(c.logConfig(overrides: ["retention.ms": "5"]).retentionMs == 5)
        #expect(c.logConfig(overrides: ["message.timestamp.type": "LogAppendTime"]).logAppendTime)
        #expect(c.brokerDefault(forTopicConfig: "retention.ms")?.source == .staticBrokerConfig)
        #expect(c.brokerDefault(forTopicConfig: "segment.bytes")?.source == .defaultConfig)
    }

    @Test func rejectsBadValuesWithKafkasMessages() {
        #expect(throws: ConfigError.self) { try BrokerConfig(["num.partitions": "many"]) }
        #expect(throws: ConfigError.self) { try BrokerConfig(["listeners": "nonsense"]) }
        #expect(BrokerConfig.validateTopicConfigs(["retention.ms": "abc"]) == "Invalid value abc for configuration retention.ms: Not a number of type LONG")
        #expect(BrokerConfig.validateTopicConfigs(["no.such.config": "1"]) == "Unknown topic config name: no.such.config")
        #expect(BrokerConfig.validateTopicConfigs(["cleanup.policy": "delete,compact"]) == nil)
        #expect(BrokerConfig.validateTopicConfigs(["message.timestamp.type": "Now"]) != nil)
    }

    @Test func topicNames() {
        #expect(Topics.invalidReason("orders.v1_x-2") == nil)
        #expect(Topics.invalidReason("bad name") != nil)
        #expect(Topics.invalidReason("..") != nil)
        #expect(Topics.invalidReason(String(repeating: "a", count: 250)) != nil)
    }
}
