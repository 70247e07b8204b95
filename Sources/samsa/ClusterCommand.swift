import ArgumentParser
import KafkaProtocol
import SamsaClient

struct ClusterCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "cluster", abstract: "Cluster information, leader elections and log directories.", subcommands: [Info.self, ElectLeaders.self, LogDirs.self])

    struct Info: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Show the cluster id, the controller, the brokers and the partitions that need attention.",
            discussion: """
                Brokers are "live" when registered, "offline" when some partition names them as a
                replica but they are not registered. Under-replicated partitions have fewer in-sync
                replicas than replicas; offline partitions have no leader.

                Example:
                  samsa cluster info
                """)
        @OptionGroup var connection: ConnectionOptions

        func run() async throws {
            try await runClient("cluster info") {
                let admin = KafkaAdmin(configuration: connection.client)
                defer { Task { await admin.close() } }
                let c = try await admin.describeCluster()
                let names = try await admin.listTopics(includeInternal: true)
                let topics = names.isEmpty ? [] : try await admin.describeTopics(names)
                print("CLUSTER \(c.clusterId)\nCONTROLLER \(c.controllerId)\n")
                ClusterCommand.printInfoTables(brokers: c.brokers, topics: topics)
            }
        }
    }

    /// Prints the broker table and the under-replicated and offline partition sections of `cluster info`.
    static func printInfoTables(brokers: [ClusterMetadata.Broker], topics: [TopicDescription]) {
        let live = Set(brokers.map(\.id))
        let offline = Set(topics.flatMap { $0.partitions.flatMap(\.replicas) }).subtracting(live).filter { $0 >= 0 }
        var rows = brokers.sorted { $0.id < $1.id }.map { [String($0.id), $0.host, String($0.port), $0.rack ?? "", "live"] }
        rows += offline.sorted().map { [String($0), "-", "-", "", "offline"] }
        printTable(["ID", "HOST", "PORT", "RACK", "STATUS"], rows)

        func ids(_ list: [Int32]) -> String { list.map(String.init).joined(separator: ",") }
        let sorted = topics.sorted { $0.name < $1.name }
        for (title, wanted) in [("UNDER-REPLICATED PARTITIONS", { (p: ClusterMetadata.Partition) in p.isr.count < p.replicas.count }),
                                ("OFFLINE PARTITIONS", { (p: ClusterMetadata.Partition) in p.leader < 0 })] {
            print("\n\(title)")
            let rows = sorted.flatMap { t in
                t.partitions.filter(wanted).sorted { $0.partition < $1.partition }.map {
                    [t.name, String($0.partition), String($0.leader), ids($0.replicas), ids($0.isr)]
                }
            }
            if rows.isEmpty { print("none") } else { printTable(["TOPIC", "PARTITION", "LEADER", "REPLICAS", "ISR"], rows) }
        }
    }

    struct ElectLeaders: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "elect-leaders",
            abstract: "Elect partition leaders: the preferred replica, or any live replica (unclean).",
            discussion: """
                Prints one line per partition: "elected", or why not (ELECTION_NOT_NEEDED: the wanted
                leader already leads). Exits non-zero when an election failed for another reason.
                An unclean election may elect a replica that misses acknowledged records.

                Examples:
                  samsa cluster elect-leaders                              # preferred leaders, every partition
                  samsa cluster elect-leaders --topic orders
                  samsa cluster elect-leaders --topic orders --partition 3 --type unclean
                """)
        @OptionGroup var connection: ConnectionOptions
        @Option(name: .long, help: "preferred or unclean.") var type: String = "preferred"
        @Option(name: .long, help: "Only this topic's partitions (default: every partition).") var topic: String?
        @Option(name: .long, help: "Only this partition of --topic (repeatable).") var partition: [Int32] = []

        func validate() throws {
            if !partition.isEmpty && topic == nil { throw ValidationError("--partition needs --topic") }
            _ = try electionType()
        }

        func electionType() throws -> ElectionType {
            switch type.lowercased() {
            case "preferred": return .preferred
            case "unclean": return .unclean
            default: throw ValidationError("--type must be preferred or unclean, got '\(type)'")
            }
        }

        func run() async throws {
            try await runClient("cluster elect-leaders") {
                let admin = KafkaAdmin(configuration: connection.client)
                defer { Task { await admin.close() } }
                var partitions: [TopicPartition]?
                if let topic {
                    partitions = partition.isEmpty ? try await admin.partitions(of: [topic]) : partition.map { TopicPartition(topic, $0) }
                }
                let results = try await admin.electLeaders(type: try electionType(), partitions: partitions)
                try printPartitionResults(results, success: "elected", acceptable: [.electionNotNeeded], what: "election")
            }
        }
    }
}

extension ClusterCommand {
    struct LogDirs: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "log-dirs",
            abstract: "Show each broker's log directories and the size and lag of every replica in them.",
            discussion: """
                The first table lists the directories (STATUS is "ok" or why the directory is
                offline) with their volume's total and usable bytes; the second one row per replica.
                OFFSET-LAG is how far a leader's log end is beyond its high watermark, or how far a
                follower is behind its leader.

                Examples:
                  samsa cluster log-dirs
                  samsa cluster log-dirs --broker 2 --topic orders
                """)
        @OptionGroup var connection: ConnectionOptions
        @Option(name: .long, help: "Only this broker (repeatable; default: every live broker).") var broker: [Int32] = []
        @Option(name: .long, help: "Only this topic's replicas.") var topic: String?

        func run() async throws {
            try await runClient("cluster log-dirs") {
                let admin = KafkaAdmin(configuration: connection.client)
                defer { Task { await admin.close() } }
                let dirs = try await admin.describeLogDirs(brokers: broker.isEmpty ? nil : broker)
                func bytes(_ n: Int64) -> String { n < 0 ? "-" : String(n) }
                printTable(["BROKER", "DIR", "STATUS", "TOTAL-BYTES", "USABLE-BYTES"], dirs.keys.sorted().flatMap { id in
                    dirs[id]!.map { [String(id), $0.path, $0.error == .none ? "ok" : $0.error.name, bytes($0.totalBytes), bytes($0.usableBytes)] }
                })
                let rows = dirs.keys.sorted().flatMap { id in
                    dirs[id]!.flatMap { dir in
                        dir.replicas.keys.filter { topic == nil || $0.topic == topic }.sorted().map { tp in
                            let r = dir.replicas[tp]!
                            return [String(id), dir.path, tp.topic, String(tp.partition), String(r.size), String(r.offsetLag) + (r.isFuture ? " (future)" : "")]
                        }
                    }
                }
                print("")
                if rows.isEmpty { print("no replicas") } else { printTable(["BROKER", "DIR", "TOPIC", "PARTITION", "SIZE", "OFFSET-LAG"], rows) }
            }
        }
    }
}

/// Prints one row per partition (TOPIC, PARTITION, RESULT, MESSAGE): `success` or the error's
/// name; throws a one-line error when some partition failed with an error not in `acceptable`.
func printPartitionResults(_ results: [PartitionResult], success: String, acceptable: Set<KafkaErrorCode> = [], what: String) throws {
    if results.isEmpty {
        print("no partitions")
        return
    }
    printTable(["TOPIC", "PARTITION", "RESULT", "MESSAGE"], results.map {
        [$0.topicPartition.topic, String($0.topicPartition.partition), $0.error == .none ? success : $0.error.name,
         $0.error == .none ? "" : ($0.errorMessage.flatMap { $0.isEmpty ? nil : $0 } ?? $0.error.message)]
    })
    let failed = results.filter { $0.error != .none && !acceptable.contains($0.error) }
    if !failed.isEmpty {
        throw CLIFailure("\(what) failed for \(failed.count) of \(results.count) partition(s): "
                         + failed.prefix(5).map { "\($0.topicPartition) \($0.error.name)" }.joined(separator: ", "))
    }
}

/// A failure the command explains itself (printed as `samsa <command>: <message>`).
struct CLIFailure: Error, CustomStringConvertible {
    let description: String
    init(_ message: String) { description = message }
}
