import KafkaWire
import ArgumentParser
import Dispatch
import KafkaProtocol
import KafkaRecords
import NIOCore
import SamsaClient
import Synchronization
#if canImport(Glibc)
import Glibc
#endif

struct ProduceCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "produce",
        abstract: "Send each line of standard input as a record.",
        discussion: """
            Examples:
              echo hello | samsa produce greetings
              printf 'k1:v1\\nk2:v2\\n' | samsa produce orders --key-separator :
              samsa produce clicks --header source=web --acks 1 --compression zstd < clicks.txt
            """)

    @OptionGroup var connection: ConnectionOptions
    @Argument(help: "Topic to write to.") var topic: String
    @Option(name: .long, help: "Split each line into key and value at the first occurrence of this text.") var keySeparator: String?
    @Option(name: .long, help: "A header for every record, key=value (repeatable).") var header: [String] = []
    @Option(name: .long, help: "0, 1 or all.") var acks: String = "all"
    @Option(name: .long, help: "none, gzip, snappy, lz4 or zstd.") var compression: String = "none"
    @Option(name: .long, help: "Write to this partition only.") var partition: Int32?
    @Option(name: .long, help: "A producer setting by its Java client name, e.g. compression.zstd.level=9 (repeatable).")
    var producerProperty: [String] = []

    func run() async throws {
        try await runClient("produce") {
            var config = ProducerConfiguration(client: connection.client)
            config.acks = try parseAcks(acks)
            config.enableIdempotence = config.acks == .all
            config.compression = try parseCompression(compression)
            for (name, value) in try parsePairs(producerProperty, what: "--producer-property") { try config.set(name, value) }
            let headers = try parsePairs(header, what: "--header").map { RecordHeader(key: $0.0, value: ByteBuffer(string: $0.1)) }
            let separator = keySeparator.map { Array($0.utf8) }
            let producer = try KafkaProducer(configuration: config)
            let failures = Mutex<(count: Int, first: KafkaClientError?)>((0, nil))
            var sent = 0
            var lines = StdinLines()
            while let line = lines.next() {
                var key: ByteBuffer?, value = ByteBuffer(bytes: line)
                if let sep = separator, !sep.isEmpty, let at = line.firstRange(of: sep) {
                    key = ByteBuffer(bytes: line[..<at.lowerBound])
                    value = ByteBuffer(bytes: line[at.upperBound...])
                }
                try await producer.enqueue(ProducerRecord(topic: topic, partition: partition, key: key, value: value, headers: headers)) { result in
                    if case let .failure(e) = result { failures.withLock { f in f.count += 1; if f.first == nil { f.first = e } } }
                }
                sent += 1
            }
            await producer.close()
            let (count, first) = failures.withLock { $0 }
            if let first {
                printError("samsa produce: \(count) of \(sent) records failed: \(first)")
                throw ExitCode(1)
            }
        }
    }
}

struct ConsumeCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "consume",
        abstract: "Print records of a topic.",
        discussion: """
            --format placeholders: %t topic, %p partition, %o offset, %k key, %v value, %h headers (k=v,...),
            %T timestamp (ms), %% a percent sign; \\n and \\t are newline and tab.

            Examples:
              samsa consume orders --from-beginning --count 10
              samsa consume orders --group billing                 # as a member of a consumer group
              samsa consume orders --partition 2 --offset 1000 --format '%p:%o %k=%v\\n'
            """)

    @OptionGroup var connection: ConnectionOptions
    @Argument(help: "Topic to read.") var topic: String
    @Option(name: .long, help: "Consume as a member of this group (committing offsets).") var group: String?
    @Flag(name: .long, help: "Start at the earliest offset (without a committed one).") var fromBeginning = false
    @Option(name: .long, help: "Start at this offset (needs --partition unless the topic has one partition).") var offset: Int64?
    @Option(name: .long, help: "Read only this partition.") var partition: Int32?
    @Option(name: .long, help: "Exit after this many records.") var count: Int?
    @Option(name: .long, help: "Exit when no record arrives for this many milliseconds.") var idleTimeoutMs: Int64?
    @Option(name: .long, help: "Output format (see above).") var format: String = "%v\\n"

    func run() async throws {
        try await runClient("consume") {
            var config = ConsumerConfiguration(client: connection.client, groupId: group)
            config.autoOffsetReset = fromBeginning ? .earliest : .latest
            // Commit exactly what was printed (not everything polled), like a careful console consumer.
            config.enableAutoCommit = false
            let consumer = try KafkaConsumer(configuration: config)
            let admin = KafkaAdmin(configuration: connection.client)
            defer { Task { await admin.close() } }
            if let group, partition == nil, offset == nil {
                _ = group
                try consumer.subscribe([topic])
            } else {
                var partitions = try await admin.partitions(of: [topic])
                if let partition {
                    guard partitions.contains(TopicPartition(topic, partition)) else {
                        throw KafkaClientError.broker(code: .unknownTopicOrPartition, message: "no partition \(partition)", broker: nil, topicPartition: nil)
                    }
                    partitions = [TopicPartition(topic, partition)]
                }
                consumer.assign(partitions)
                if let offset {
                    guard partitions.count == 1 else { throw ValidationError("--offset needs --partition when the topic has several partitions") }
                    consumer.seek(partitions[0], to: offset)
                } else if fromBeginning && group == nil {
                    consumer.seekToBeginning(partitions)
                }
            }
            let stop = installInterruptFlag()
            let formatter = RecordFormatter(format)
            var printed = 0
            var lastRecord = monotonicNanos()
            var lastCommit = lastRecord
            var out: [UInt8] = []
            // The next offset to show per partition: after the last printed record, or the first
            // polled record that was not printed (so a later consumer of the group starts there).
            var toCommit: [TopicPartition: Int64] = [:]
            var held = Set<TopicPartition>()
            func commitPrinted(final: Bool) async throws {
                guard group != nil else { return }
                if final {
                    for tp in consumer.assignment where toCommit[tp] == nil { toCommit[tp] = consumer.position(tp) }
                }
                guard !toCommit.isEmpty else { return }
                try await consumer.commit(toCommit)
            }
            loop: while !stop.isSet {
                let records = try await consumer.poll(timeoutMs: 200)
                for r in records {
                    if let count, printed >= count {
                        if held.insert(r.topicPartition).inserted { toCommit[r.topicPartition] = r.offset }
                        continue
                    }
                    formatter.append(r, to: &out)
                    toCommit[r.topicPartition] = r.offset + 1
                    printed += 1
                }
                if !out.isEmpty {
                    out.withUnsafeBytes { _ = write(1, $0.baseAddress, $0.count) }
                    out.removeAll(keepingCapacity: true)
                }
                if let count, printed >= count { break loop }
                if records.isEmpty {
                    if let idle = idleTimeoutMs, monotonicNanos() - lastRecord > UInt64(idle) * 1_000_000 { break }
                } else {
                    lastRecord = monotonicNanos()
                }
                if lastRecord - lastCommit > 5_000_000_000 {
                    try await commitPrinted(final: false)
                    lastCommit = lastRecord
                }
            }
            try await commitPrinted(final: true)
            await consumer.close()
        }
    }
}

/// Set by SIGINT/SIGTERM so that commands can stop and clean up.
final class StopFlag: Sendable {
    private let value = Atomic<Bool>(false)
    var isSet: Bool { value.load(ordering: .relaxed) }
    func set() { value.store(true, ordering: .relaxed) }
}

/// Sets the returned flag on SIGINT/SIGTERM (so commands can stop and clean up).
func installInterruptFlag() -> StopFlag {
    let flag = StopFlag()
    signal(SIGINT, SIG_IGN)
    signal(SIGTERM, SIG_IGN)
    let queue = DispatchQueue(label: "samsa.interrupt")
    for sig in [SIGINT, SIGTERM] {
        let source = DispatchSource.makeSignalSource(signal: sig, queue: queue)
        source.setEventHandler { flag.set() }
        source.resume()
        signalSources.append(source)
    }
    return flag
}

/// Kept alive for the life of the process (set up once, from the main task).
nonisolated(unsafe) private var signalSources: [any DispatchSourceSignal] = []

/// Renders records with kcat-like placeholders.
struct RecordFormatter {
    enum Part { case literal([UInt8]), topic, partition, offset, key, value, headers, timestamp }
    let parts: [Part]

    init(_ format: String) {
        var parts: [Part] = []
        var literal: [UInt8] = []
        var chars = Array(format.utf8)[...]
        func flush() { if !literal.isEmpty { parts.append(.literal(literal)); literal = [] } }
        while let c = chars.popFirst() {
            if c == UInt8(ascii: "%"), let n = chars.popFirst() {
                let part: Part? = switch n {
                case UInt8(ascii: "t"): .topic
                case UInt8(ascii: "p"): .partition
                case UInt8(ascii: "o"): .offset
                case UInt8(ascii: "k"): .key
                case UInt8(ascii: "v"), UInt8(ascii: "s"): .value
                case UInt8(ascii: "h"): .headers
                case UInt8(ascii: "T"): .timestamp
                default: nil
                }
                if let part { flush(); parts.append(part) } else { literal.append(n) }
            } else if c == UInt8(ascii: "\\"), let n = chars.popFirst() {
                literal.append(n == UInt8(ascii: "n") ? 10 : n == UInt8(ascii: "t") ? 9 : n)
            } else {
                literal.append(c)
            }
        }
        flush()
        self.parts = parts
    }

    func append(_ r: ConsumerRecord, to out: inout [UInt8]) {
        for part in parts {
            switch part {
            case let .literal(bytes): out += bytes
            case .topic: out += Array(r.topic.utf8)
            case .partition: out += Array(String(r.partition).utf8)
            case .offset: out += Array(String(r.offset).utf8)
            case .timestamp: out += Array(String(r.timestamp).utf8)
            case .key: if let k = r.key { k.withUnsafeReadableBytes { out += $0 } }
            case .value: if let v = r.value { v.withUnsafeReadableBytes { out += $0 } }
            case .headers:
                for (i, h) in r.headers.enumerated() {
                    if i > 0 { out.append(UInt8(ascii: ",")) }
                    out += Array(h.key.utf8)
                    out.append(UInt8(ascii: "="))
                    if let v = h.value { v.withUnsafeReadableBytes { out += $0 } }
                }
            }
        }
    }
}
