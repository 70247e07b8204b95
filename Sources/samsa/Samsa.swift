import ArgumentParser
import KafkaProtocol
import KafkaRecords

/// The single `samsa` command, in the style of rpk: `samsa <subcommand> ...`.
@main
struct Samsa: AsyncParsableCommand {
    static let version = "0.1.0"

    static let configuration = CommandConfiguration(
        commandName: "samsa",
        abstract: "Samsa: a Kafka-compatible event streaming platform in one small binary.",
        discussion: """
            Real Kafka clients (librdkafka/kcat, confluent-kafka, kafka-python, the Java client) work
            against Samsa unchanged.

            Examples:
              samsa broker                 # run a broker on 127.0.0.1:9092, data in ./samsa-data
              samsa topic create orders -p 6
              echo hello | samsa produce orders
              samsa consume orders --from-beginning --count 1
              samsa group describe billing
              samsa version
              samsa version --apis
            """,
        version: version,
        subcommands: [BrokerCommand.self, TopicCommand.self, ProduceCommand.self, ConsumeCommand.self, GroupCommand.self,
                      ClusterCommand.self, PerfCommand.self, VersionCommand.self])
}

struct VersionCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "version",
        abstract: "Print Samsa's version and build details.",
        discussion: """
            Examples:
              samsa broker                 # run a broker on 127.0.0.1:9092, data in ./samsa-data
              samsa topic create orders -p 6
              echo hello | samsa produce orders
              samsa consume orders --from-beginning --count 1
              samsa group describe billing
              samsa version          # version, protocol schema and CRC32C implementation
              samsa version --apis   # also every Kafka API with its request versions
            """)

    @Flag(name: .long, help: "List every Kafka API the protocol layer knows, with its versions.")
    var apis = false

    func run() {
        print("samsa \(Samsa.version)")
        print("kafka protocol: \(ApiKey.allCases.count) APIs generated from Apache Kafka 4.0 schemas")
        print("crc32c: \(CRC32C.implementation)")
        if apis {
            for key in ApiKey.allCases {
                let v = key.validVersions
                print("  \(key.rawValue)\t\(key.name)\tv\(v.lowerBound)-\(v.upperBound)")
            }
        }
    }
}
