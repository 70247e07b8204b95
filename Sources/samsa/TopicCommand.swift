import ArgumentParser
import KafkaProtocol
import SamsaClient

struct TopicCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "topic",
        abstract: "Create, list, describe, delete topics and change their configs.",
        subcommands: [Create.self, List.self, Describe.self, Delete.self, AlterConfig.self, Reassign.self])

    struct Create: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Create a topic.",
            discussion: """
                Examples:
                  samsa topic create orders -p 6
                  samsa topic create clicks -p 12 -c retention.ms=86400000 -c segment.bytes=104857600
                """)
        @OptionGroup var connection: ConnectionOptions
        @Argument(help: "Topic name.") var name: String
        @Option(name: [.short, .long], help: "Partitions (default: the broker's num.partitions).") var partitions: Int32 = -1
        @Option(name: [.short, .customLong("replication-factor")], help: "Replicas per partition (default: the broker's).") var replicationFactor: Int16 = -1
        @Option(name: [.short, .customLong("config")], help: "A topic config, key=value (repeatable).") var configs: [String] = []
        @Flag(name: .long, help: "Only check that the topic could be created.") var dryRun = false

        func run() async throws {
            try await runClient("topic create") {
                let admin = KafkaAdmin(configuration: connection.client)
                defer { Task { await admin.close() } }
                try await admin.createTopic(name, partitions: partitions, replicationFactor: replicationFactor,
                                            configs: try parseKeyValues(configs, what: "--config"), validateOnly: dryRun)
                print(dryRun ? "topic \(name) can be created" : "created topic \(name)")
            }
        }
    }

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List topics.", discussion: "Example:\n  samsa topic list")
        @OptionGroup var connection: ConnectionOptions
        @Flag(name: .customLong("internal"), help: "Include internal topics (__consumer_offsets).") var includeInternal = false

        func run() async throws {
            try await runClient("topic list") {
                let admin = KafkaAdmin(configuration: connection.client)
                defer { Task { await admin.close() } }
                let topics = try await admin.describeTopics(try await admin.listTopics(includeInternal: includeInternal))
                printTable(["NAME", "PARTITIONS", "REPLICAS"], topics.map { [$0.name, String($0.partitions.count), String($0.partitions.first?.replicas.count ?? 0)] })
            }
        }
    }

    struct Describe: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Show a topic's partitions, offsets and configs.", discussion: "Example:\n  samsa topic describe orders")
        @OptionGroup var connection: ConnectionOptions
        @Argument(help: "Topic name.") var name: String
        @Flag(name: .long, help: "Show every config, not only the ones set for this topic.") var allConfigs = false

        func run() async throws {
            try await runClient("topic describe") {
                let admin = KafkaAdmin(configuration: connection.client)
                defer { Task { await admin.close() } }
                guard let topic = try await admin.describeTopics([name]).first else { return }
                let tps = topic.partitions.map { TopicPartition(name, $0.partition) }
                let start = try await admin.listOffsets(tps, spec: .earliest), end = try await admin.listOffsets(tps, spec: .latest)
                print("NAME \(topic.name)\nTOPIC ID \(topic.topicId)\nINTERNAL \(topic.isInternal)\n")
                printTable(["PARTITION", "LEADER", "EPOCH", "REPLICAS", "ISR", "LOG-START-OFFSET", "HIGH-WATERMARK"], topic.partitions.map { p in
                    let tp = TopicPartition(name, p.partition)
                    return [String(p.partition), String(p.leader), String(p.leaderEpoch), p.replicas.map(String.init).joined(separator: ","),
                            p.isr.map(String.init).joined(separator: ","), String(start[tp] ?? -1), String(end[tp] ?? -1)]
                })
                let configs = try await admin.describeTopicConfigs(name).filter { allConfigs || $0.source == .dynamicTopic }
                print("")
                printTable(["CONFIG", "VALUE", "SOURCE"], configs.map { [$0.name, $0.value ?? "", "\($0.source)"] })
            }
        }
    }

    struct Delete: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Delete topics and all their data.", discussion: "Example:\n  samsa topic delete orders")
        @OptionGroup var connection: ConnectionOptions
        @Argument(help: "Topic names.") var names: [String]

        func run() async throws {
            try await runClient("topic delete") {
                let admin = KafkaAdmin(configuration: connection.client)
                defer { Task { await admin.close() } }
                try await admin.deleteTopics(names)
                for n in names { print("deleted topic \(n)") }
            }
        }
    }

    struct AlterConfig: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "alter-config", abstract: "Set or remove topic config overrides.",
            discussion: "Examples:\n  samsa topic alter-config orders --set retention.ms=3600000\n  samsa topic alter-config orders --delete retention.ms")
        @OptionGroup var connection: ConnectionOptions
        @Argument(help: "Topic name.") var name: String
        @Option(name: .long, help: "key=value to set (repeatable).") var set: [String] = []
        @Option(name: .long, help: "Config to remove, back to the default (repeatable).") var delete: [String] = []

        func validate() throws {
            if set.isEmpty && delete.isEmpty { throw ValidationError("give at least one --set or --delete") }
        }

        func run() async throws {
            try await runClient("topic alter-config") {
                let admin = KafkaAdmin(configuration: connection.client)
                defer { Task { await admin.close() } }
                try await admin.alterTopicConfigs(name, set: try parseKeyValues(set, what: "--set"), delete: delete)
                print("updated configs of \(name)")
            }
        }
    }
}

extension TopicCommand {
    struct Reassign: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Move partitions to new replicas, cancel a move, or list moves in progress.",
            discussion: """
                The first replica of --replicas becomes the preferred leader. The controller adds the
                new replicas, waits until they are in sync, then removes the old ones.

                Examples:
                  samsa topic reassign orders --partition 0 --replicas 1,2,3
                  samsa topic reassign orders --partition 0 --partition 1 --replicas 2,3,4
                  samsa topic reassign orders --partition 0 --cancel
                  samsa topic reassign --list
                  samsa topic reassign orders --list
                """)
        @OptionGroup var connection: ConnectionOptions
        @Argument(help: "Topic name (with --list: only this topic's moves).") var name: String?
        @Option(name: .long, help: "Partition to move (repeatable).") var partition: [Int32] = []
        @Option(name: .long, help: "The new replica broker ids, comma-separated, preferred leader first.") var replicas: String?
        @Flag(name: .long, help: "Cancel the move in progress of these partitions.") var cancel = false
        @Flag(name: .long, help: "List the moves in progress.") var list = false

        func validate() throws {
            if list {
                if !partition.isEmpty || replicas != nil || cancel { throw ValidationError("--list takes no --partition, --replicas or --cancel") }
                return
            }
            guard name != nil else { throw ValidationError("give a topic (or --list)") }
            if partition.isEmpty { throw ValidationError("give at least one --partition") }
            if (replicas == nil) == !cancel { throw ValidationError("give either --replicas or --cancel") }
            _ = try replicaIds()
        }

        func replicaIds() throws -> [Int32]? {
            guard let replicas else { return nil }
            let ids = try replicas.split(separator: ",", omittingEmptySubsequences: false).map { part -> Int32 in
                guard let id = Int32(String(part.filter { $0 != " " })), id >= 0 else {
                    throw ValidationError("--replicas expects broker ids like 1,2,3, got '\(replicas)'")
                }
                return id
            }
            if Set(ids).count != ids.count { throw ValidationError("--replicas names a broker twice: '\(replicas)'") }
            return ids
        }

        func run() async throws {
            try await runClient("topic reassign") {
                let admin = KafkaAdmin(configuration: connection.client)
                defer { Task { await admin.close() } }
                if list {
                    let moves = try await admin.listPartitionReassignments().filter { name == nil || $0.key.topic == name }
                    if moves.isEmpty { print("no reassignments in progress"); return }
                    func ids(_ l: [Int32]) -> String { l.map(String.init).joined(separator: ",") }
                    printTable(["TOPIC", "PARTITION", "REPLICAS", "ADDING", "REMOVING"], moves.keys.sorted().map { tp in
                        let m = moves[tp]!
                        return [tp.topic, String(tp.partition), ids(m.replicas), ids(m.addingReplicas), ids(m.removingReplicas)]
                    })
                    return
                }
                let target = try replicaIds()
                let results = try await admin.alterPartitionReassignments(
                    Dictionary(partition.map { (TopicPartition(name!, $0), target) }, uniquingKeysWith: { a, _ in a }))
                try printPartitionResults(results, success: cancel ? "cancelled" : "started", what: cancel ? "cancelling" : "reassignment")
            }
        }
    }
}
