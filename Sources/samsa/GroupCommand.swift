import ArgumentParser
#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
import KafkaProtocol
import SamsaClient

struct GroupCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "group",
        abstract: "List, describe, reset and delete consumer groups.",
        subcommands: [List.self, Describe.self, ResetOffsets.self, Delete.self])

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List consumer groups.", discussion: "Example:\n  samsa group list")
        @OptionGroup var connection: ConnectionOptions

        func run() async throws {
            try await runClient("group list") {
                let admin = KafkaAdmin(configuration: connection.client)
                defer { Task { await admin.close() } }
                printTable(["GROUP", "STATE", "PROTOCOL-TYPE"], try await admin.listGroups().map { [$0.groupId, $0.state, $0.protocolType] })
            }
        }
    }

    struct PartitionLag: Encodable {
        var topic: String
        var partition: Int32
        var currentOffset: Int64?
        var logEndOffset: Int64
        var lag: Int64?
        var consumerId: String?
        var host: String?
        var clientId: String?
    }

    struct Description: Encodable {
        var group: String
        var state: String
        var protocolName: String
        var members: Int
        var partitions: [PartitionLag]
    }

    static func describe(_ admin: KafkaAdmin, _ groupId: String) async throws -> Description {
        guard let g = try await admin.describeGroups([groupId]).first else {
            throw KafkaClientError.broker(code: .groupIdNotFound, message: "group \(groupId)", broker: nil, topicPartition: nil)
        }
        let committed = try await admin.listGroupOffsets(groupId)
        var owner: [TopicPartition: GroupMemberDescription] = [:]
        for m in g.members { for tp in m.assignment { owner[tp] = m } }
        let partitions = Array(Set(committed.keys).union(owner.keys)).sorted()
        let ends = partitions.isEmpty ? [:] : try await admin.listOffsets(partitions, spec: .latest)
        let rows = partitions.map { tp -> PartitionLag in
            let end = ends[tp] ?? -1, current = committed[tp]
            return PartitionLag(topic: tp.topic, partition: tp.partition, currentOffset: current, logEndOffset: end,
                                lag: current.map { max(end - $0, 0) }, consumerId: owner[tp]?.memberId, host: owner[tp]?.clientHost,
                                clientId: owner[tp]?.clientId)
        }
        return Description(group: groupId, state: g.state, protocolName: g.protocolName, members: g.members.count, partitions: rows)
    }

    struct Describe: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Show a group's members, assignments, committed offsets, log end offsets and lag.",
            discussion: "Examples:\n  samsa group describe billing\n  samsa group describe billing --json")
        @OptionGroup var connection: ConnectionOptions
        @Argument(help: "Group id.") var group: String
        @Flag(name: .long, help: "Print JSON instead of a table.") var json = false

        func run() async throws {
            try await runClient("group describe") {
                let admin = KafkaAdmin(configuration: connection.client)
                defer { Task { await admin.close() } }
                let d = try await GroupCommand.describe(admin, group)
                if json {
                    print(jsonString(d))
                    return
                }
                print("GROUP \(d.group)  STATE \(d.state)  PROTOCOL \(d.protocolName.isEmpty ? "-" : d.protocolName)  MEMBERS \(d.members)\n")
                printTable(["TOPIC", "PARTITION", "CURRENT-OFFSET", "LOG-END-OFFSET", "LAG", "CONSUMER-ID", "HOST", "CLIENT-ID"], d.partitions.map {
                    [$0.topic, String($0.partition), $0.currentOffset.map(String.init) ?? "-", String($0.logEndOffset), $0.lag.map(String.init) ?? "-",
                     $0.consumerId ?? "-", $0.host ?? "-", $0.clientId ?? "-"]
                })
            }
        }
    }

    struct ResetOffsets: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "reset-offsets",
            abstract: "Move a group's committed offsets (the group must have no active members).",
            discussion: """
                Examples:
                  samsa group reset-offsets billing --topic orders --to-earliest
                  samsa group reset-offsets billing --topic orders:0,1 --to-offset 100 --dry-run
                  samsa group reset-offsets billing --topic orders --to-datetime 2026-11-24T08:00:00Z
                  samsa group reset-offsets billing --topic orders --shift-by -50
                """)
        @OptionGroup var connection: ConnectionOptions
        @Argument(help: "Group id.") var group: String
        @Option(name: .long, help: "Topic, or topic:p1,p2 for some partitions (repeatable; default: the topics the group has offsets for).") var topic: [String] = []
        @Flag(name: .long) var toEarliest = false
        @Flag(name: .long) var toLatest = false
        @Option(name: .long) var toOffset: Int64?
        @Option(name: .long, help: "ISO-8601 date-time or epoch milliseconds.") var toDatetime: String?
        @Option(name: .long, parsing: .unconditional, help: "Move by this many offsets (negative: back).") var shiftBy: Int64?
        @Flag(name: .long, help: "Show the new offsets without changing anything.") var dryRun = false

        func validate() throws {
            let n = [toEarliest, toLatest, toOffset != nil, toDatetime != nil, shiftBy != nil].filter { $0 }.count
            if n != 1 { throw ValidationError("give exactly one of --to-earliest, --to-latest, --to-offset, --to-datetime, --shift-by") }
        }

        func run() async throws {
            try await runClient("group reset-offsets") {
                let admin = KafkaAdmin(configuration: connection.client)
                defer { Task { await admin.close() } }
                if let g = try await admin.describeGroups([group]).first, !g.members.isEmpty || (g.state != "Empty" && g.state != "Dead") {
                    throw ValidationError("offsets can only be reset while group \(group) is inactive; its state is \(g.state) with \(g.members.count) member(s)")
                }
                let committed = try await admin.listGroupOffsets(group)
                var partitions: [TopicPartition] = []
                if topic.isEmpty {
                    partitions = committed.keys.sorted()
                } else {
                    for t in topic {
                        let parts = t.split(separator: ":", maxSplits: 1)
                        let name = String(parts[0])
                        if parts.count == 2 {
                            partitions += try parts[1].split(separator: ",").map {
                                guard let p = Int32($0) else { throw ValidationError("bad partition list in '\(t)'") }
                                return TopicPartition(name, p)
                            }
                        } else {
                            partitions += try await admin.partitions(of: [name])
                        }
                    }
                }
                guard !partitions.isEmpty else { throw ValidationError("no partitions to reset: give --topic") }
                let earliest = try await admin.listOffsets(partitions, spec: .earliest)
                let latest = try await admin.listOffsets(partitions, spec: .latest)
                var target: [TopicPartition: Int64] = [:]
                if toEarliest { target = earliest }
                if toLatest { target = latest }
                if let toOffset { for tp in partitions { target[tp] = toOffset } }
                if let shiftBy { for tp in partitions { target[tp] = (committed[tp] ?? latest[tp] ?? 0) + shiftBy } }
                if let toDatetime {
                    let ts = try parseDateTime(toDatetime)
                    let found = try await admin.listOffsets(partitions, spec: .timestamp(ts))
                    for tp in partitions { target[tp] = (found[tp] ?? -1) < 0 ? latest[tp] : found[tp] }
                }
                // Clamp into [log start, log end], as Kafka's tool does.
                for tp in partitions { target[tp] = min(max(target[tp] ?? 0, earliest[tp] ?? 0), latest[tp] ?? 0) }
                printTable(["TOPIC", "PARTITION", "OLD-OFFSET", "NEW-OFFSET"], partitions.map {
                    [$0.topic, String($0.partition), committed[$0].map(String.init) ?? "-", String(target[$0]!)]
                })
                if dryRun {
                    print("\n(dry run: nothing changed)")
                } else {
                    try await admin.alterGroupOffsets(group, target)
                }
            }
        }
    }

    struct Delete: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Delete inactive groups and their offsets.", discussion: "Example:\n  samsa group delete billing")
        @OptionGroup var connection: ConnectionOptions
        @Argument(help: "Group ids.") var groups: [String]

        func run() async throws {
            try await runClient("group delete") {
                let admin = KafkaAdmin(configuration: connection.client)
                defer { Task { await admin.close() } }
                try await admin.deleteGroups(groups)
                for g in groups { print("deleted group \(g)") }
            }
        }
    }
}

/// JSON for machine-readable CLI output.
func jsonString<T: Encodable>(_ value: T) -> String {
    let encoder = JSONEncoder()
    encoder.outputFormatting = [.sortedKeys]
    guard let data = try? encoder.encode(value) else { return "{}" }
    return String(decoding: data, as: UTF8.self)
}
