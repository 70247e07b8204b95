import KafkaWire
import ArgumentParser
import KafkaProtocol
import KafkaRecords
import NIOCore
import SamsaClient
import Synchronization
#if canImport(Glibc)
import Glibc
#endif

struct PerfCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "perf",
        abstract: "Measure produce, consume and end-to-end performance (like kafka-producer-perf-test).",
        subcommands: [Produce.self, Consume.self, EndToEnd.self])

    /// Latency statistics over recorded samples (nanoseconds).
    struct Latency: Encodable {
        var avg: Double, p50: Double, p95: Double, p99: Double, p999: Double, max: Double

        init(_ samples: inout [UInt64]) {
            guard !samples.isEmpty else { self.init(avg: 0, p50: 0, p95: 0, p99: 0, p999: 0, max: 0); return }
            samples.sort()
            func ms(_ q: Double) -> Double { Double(samples[min(samples.count - 1, Int(Double(samples.count) * q))]) / 1e6 }
            self.init(avg: Double(samples.reduce(0, +)) / Double(samples.count) / 1e6, p50: ms(0.5), p95: ms(0.95), p99: ms(0.99),
                      p999: ms(0.999), max: Double(samples.last!) / 1e6)
        }

        init(avg: Double, p50: Double, p95: Double, p99: Double, p999: Double, max: Double) {
            self.avg = avg; self.p50 = p50; self.p95 = p95; self.p99 = p99; self.p999 = p999; self.max = max
        }
    }

    struct Summary: Encodable {
        var records: Int
        var records_per_sec: Double
        var mb_per_sec: Double
        var latency_ms: Latency?
        var errors: Int?
    }

    static func fmt(_ x: Double, _ digits: Int = 2) -> String {
        var scale = 1.0
        for _ in 0..<digits { scale *= 10 }
        let r = (x * scale).rounded() / scale
        return "\(r)"
    }

    /// Payload of record `seq`: a 12-digit sequence number then deterministic filler.
    static func payload(_ seq: Int, size: Int) -> ByteBuffer {
        var b = ByteBuffer()
        fillPayload(&b, seq: seq, size: size)
        return b
    }

    /// The alphabet repeated, for payload filler.
    static let filler: [UInt8] = (0..<(26 * 160)).map { UInt8(97 + $0 % 26) }

    /// Writes the payload of `seq` into `b`, reusing its storage (no allocation once it is big enough).
    static func fillPayload(_ b: inout ByteBuffer, seq: Int, size: Int) {
        b.clear()
        guard size > 0 else { return }
        b.writeWithUnsafeMutableBytes(minimumWritableBytes: size) { p in
            var n = seq
            var digits: (UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8) = (48, 48, 48, 48, 48, 48, 48, 48, 48, 48, 48, 48)
            withUnsafeMutableBytes(of: &digits) { d in
                var i = 11
                while n > 0, i >= 0 { d[i] = UInt8(48 + n % 10); n /= 10; i -= 1 }
                for j in 0..<min(12, size) { p[j] = d[j] }
            }
            if size > 12 {
                // Filler byte i is 'a' + (seq + i) % 26: a copy out of a repeated alphabet.
                let start = seq % 26
                filler.withUnsafeBytes { f in
                    var written = 0
                    while written < size - 12 {
                        let from = (start + written) % 26
                        let n = min(size - 12 - written, f.count - from)
                        (p.baseAddress! + 12 + written).copyMemory(from: f.baseAddress! + from, byteCount: n)
                        written += n
                    }
                }
            }
            return size
        }
    }

    struct Produce: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Produce records as fast as possible (or at --throughput) and report throughput and latency.",
            discussion: "Example:\n  samsa perf produce --topic perf --num-records 1000000 --record-size 100 --acks 1")
        @OptionGroup var connection: ConnectionOptions
        @Option(name: .long) var topic: String
        @Option(name: .long) var numRecords: Int
        @Option(name: .long) var recordSize: Int = 100
        @Option(name: .long, parsing: .unconditional, help: "Records per second; -1: as fast as possible.") var throughput: Int = -1
        @Option(name: .long, help: "0, 1 or all.") var acks: String = "all"
        @Option(name: .long) var compression: String = "none"
        @Option(name: .long, help: "A producer setting by its Java client name, e.g. compression.lz4.level=1 (repeatable).")
        var producerProperty: [String] = []
        @Option(name: .long) var lingerMs: Int64 = 5
        @Option(name: .long) var batchSize: Int = 65_536
        @Flag(name: .long, help: "Disable idempotence (the default with acks=all).") var noIdempotence = false
        @Flag(name: .long, help: "End with a JSON summary line.") var json = false

        func run() async throws {
            try await runClient("perf produce") {
                var config = ProducerConfiguration(client: connection.client)
                config.acks = try parseAcks(acks)
                config.enableIdempotence = config.acks == .all && !noIdempotence
                config.compression = try parseCompression(compression)
                config.lingerMs = lingerMs
                config.batchSize = batchSize
                for (name, value) in try parsePairs(producerProperty, what: "--producer-property") { try config.set(name, value) }
                config.trackLatency = true
                let stats = Mutex<(done: Int, errors: Int, firstError: KafkaClientError?, latencies: [UInt64], bytes: Int)>((0, 0, nil, [], 0))
                stats.withLock { $0.latencies.reserveCapacity(numRecords) }
                let size = recordSize
                config.onBatchCompleted = { report in
                    stats.withLock { s in
                        s.done += report.recordCount
                        if let e = report.error {
                            s.errors += report.recordCount
                            if s.firstError == nil { s.firstError = e }
                        } else {
                            s.bytes += report.recordCount * size
                        }
                        for t in report.enqueueNanos { s.latencies.append(report.completedNanos - t) }
                    }
                }
                let producer = try KafkaProducer(configuration: config)
                // Warm up metadata and the producer id outside the timed loop.
                let start = monotonicNanos()
                var lastReport = start
                var lastReportedCount = 0
                // Options read once: property-wrapper getters are slow in a hot loop.
                let topic = self.topic, count = self.numRecords, throughput = self.throughput
                var value = ByteBuffer()
                for i in 0..<count {
                    // The producer copies the value into its batch, so one buffer serves every record.
                    PerfCommand.fillPayload(&value, seq: i, size: size)
                    try await producer.enqueue(ProducerRecord(topic: topic, value: value))
                    if throughput > 0, i % 64 == 0 {
                        let due = start + UInt64(Double(i) / Double(throughput) * 1e9)
                        let now = monotonicNanos()
                        if due > now { try await Task.sleep(nanoseconds: due - now) }
                    }
                    if i & 0x3FFF == 0 {
                        let now = monotonicNanos()
                        if now - lastReport > 5_000_000_000 {
                            let done = stats.withLock { $0.done }
                            let secs = Double(now - lastReport) / 1e9
                            print("\(done) records acknowledged, \(fmt(Double(done - lastReportedCount) / secs, 1)) records/sec")
                            lastReport = now
                            lastReportedCount = done
                        }
                    }
                }
                await producer.flush()
                let elapsed = Double(monotonicNanos() - start) / 1e9
                await producer.close()
                var (done, errors, firstError, latencies, bytes) = stats.withLock { ($0.done, $0.errors, $0.firstError, $0.latencies, $0.bytes) }
                let latency = Latency(&latencies)
                let rps = Double(done - errors) / elapsed
                print("\(done) records sent, \(fmt(rps, 1)) records/sec (\(fmt(Double(bytes) / elapsed / 1_048_576)) MB/sec), "
                      + "\(fmt(latency.avg)) ms avg latency, \(fmt(latency.max)) ms max latency, \(fmt(latency.p50)) ms 50th, "
                      + "\(fmt(latency.p95)) ms 95th, \(fmt(latency.p99)) ms 99th, \(fmt(latency.p999)) ms 99.9th.")
                if json { print(jsonString(Summary(records: done, records_per_sec: rps, mb_per_sec: Double(bytes) / elapsed / 1_048_576, latency_ms: latency, errors: errors))) }
                if let firstError {
                    printError("samsa perf produce: \(errors) records failed: \(firstError)")
                    throw ExitCode(1)
                }
            }
        }
    }

    struct Consume: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Consume records from the beginning and report throughput.",
            discussion: "Example:\n  samsa perf consume --topic perf --num-records 1000000 --verify")
        @OptionGroup var connection: ConnectionOptions
        @Option(name: .long) var topic: String
        @Option(name: .long) var numRecords: Int
        @Option(name: .long, help: "Consume as a member of this group (default: assign all partitions).") var group: String?
        @Option(name: .long, help: "Give up after this many ms without progress.") var timeoutMs: Int64 = 30_000
        @Flag(name: .long, help: "Check that every record of `perf produce` (0..<num-records) arrives exactly once, intact.") var verify = false
        @Flag(name: .long, help: "End with a JSON summary line.") var json = false

        func run() async throws {
            try await runClient("perf consume") {
                var config = ConsumerConfiguration(client: connection.client, groupId: group)
                config.autoOffsetReset = .earliest
                config.enableAutoCommit = group != nil
                let consumer = try KafkaConsumer(configuration: config)
                if group != nil {
                    try consumer.subscribe([topic])
                } else {
                    let admin = KafkaAdmin(configuration: connection.client)
                    let partitions = try await admin.partitions(of: [topic])
                    await admin.close()
                    consumer.assign(partitions)
                    consumer.seekToBeginning(partitions)
                }
                var seen = [Bool](repeating: false, count: verify ? numRecords : 0)
                var count = 0, bytes = 0, problems = 0
                var start: UInt64 = 0
                var lastProgress = monotonicNanos()
                while count < numRecords {
                    let records = try await consumer.poll(timeoutMs: 500)
                    if records.isEmpty {
                        if monotonicNanos() - lastProgress > UInt64(timeoutMs) * 1_000_000 { break }
                        continue
                    }
                    if start == 0 { start = monotonicNanos() }
                    lastProgress = monotonicNanos()
                    for r in records {
                        count += 1
                        let size = r.value?.readableBytes ?? 0
                        bytes += size
                        if verify {
                            guard let v = r.value, let digits = v.getString(at: v.readerIndex, length: min(12, size)), let seq = Int(digits),
                                  seq >= 0, seq < numRecords, !seen[seq], v == PerfCommand.payload(seq, size: size) else {
                                problems += 1
                                continue
                            }
                            seen[seq] = true
                        }
                    }
                }
                let elapsed = max(Double(monotonicNanos() - start) / 1e9, 1e-9)
                await consumer.close()
                let rps = Double(count) / elapsed
                print("\(count) records consumed, \(fmt(rps, 1)) records/sec (\(fmt(Double(bytes) / elapsed / 1_048_576)) MB/sec)")
                if count < numRecords {
                    printError("samsa perf consume: only \(count) of \(numRecords) records arrived within \(timeoutMs) ms")
                    throw ExitCode(1)
                }
                if verify {
                    let missing = seen.filter { !$0 }.count
                    if problems > 0 || missing > 0 {
                        printError("samsa perf consume: verification failed: \(problems) duplicate or damaged records, \(missing) missing")
                        throw ExitCode(1)
                    }
                    print("verified: every record arrived exactly once, intact")
                }
                if json { print(jsonString(Summary(records: count, records_per_sec: rps, mb_per_sec: Double(bytes) / elapsed / 1_048_576))) }
            }
        }
    }

    struct EndToEnd: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "e2e",
            abstract: "Produce at a fixed rate and measure the time until each record is consumed.",
            discussion: "Example:\n  samsa perf e2e --topic lat --num-records 300000 --throughput 10000 --record-size 100")
        @OptionGroup var connection: ConnectionOptions
        @Option(name: .long) var topic: String
        @Option(name: .long) var numRecords: Int
        @Option(name: .long) var throughput: Int = 10_000
        @Option(name: .long) var recordSize: Int = 100
        @Option(name: .long) var acks: String = "1"
        @Flag(name: .long, help: "End with a JSON summary line.") var json = false

        func run() async throws {
            try await runClient("perf e2e") {
                let admin = KafkaAdmin(configuration: connection.client)
                if (try? await admin.describeTopics([topic])) == nil { try? await admin.createTopic(topic, partitions: 1) }
                let partitions = try await admin.partitions(of: [topic])
                await admin.close()
                var cconfig = ConsumerConfiguration(client: connection.client)
                cconfig.autoOffsetReset = .latest
                let consumer = try KafkaConsumer(configuration: cconfig)
                consumer.assign(partitions)
                var pconfig = ProducerConfiguration(client: connection.client)
                pconfig.acks = try parseAcks(acks)
                pconfig.enableIdempotence = pconfig.acks == .all
                pconfig.lingerMs = 0
                let producer = try KafkaProducer(configuration: pconfig)
                // Wait until the consumer has its start positions before producing.
                while partitions.contains(where: { consumer.position($0) == nil }) { try await Task.sleep(nanoseconds: 10_000_000) }
                let size = max(recordSize, 16)
                let rate = throughput
                let producing = Task {
                    let start = monotonicNanos()
                    for i in 0..<numRecords {
                        let due = start + UInt64(Double(i) / Double(rate) * 1e9)
                        let now = monotonicNanos()
                        if due > now { try await Task.sleep(nanoseconds: due - now) }
                        var value = ByteBuffer()
                        value.writeInteger(monotonicNanos())
                        value.writeRepeatingByte(120, count: size - 8)
                        try await producer.enqueue(ProducerRecord(topic: topic, value: value))
                    }
                    await producer.flush()
                }
                var latencies: [UInt64] = []
                latencies.reserveCapacity(numRecords)
                var lastProgress = monotonicNanos()
                while latencies.count < numRecords {
                    let records = try await consumer.poll(timeoutMs: 500)
                    let now = monotonicNanos()
                    for r in records {
                        if let sent = r.value?.getInteger(at: r.value!.readerIndex, as: UInt64.self), sent <= now { latencies.append(now - sent) }
                    }
                    if !records.isEmpty { lastProgress = now } else if now - lastProgress > 30_000_000_000 { break }
                }
                try await producing.value
                await producer.close()
                await consumer.close()
                let count = latencies.count
                let latency = Latency(&latencies)
                print("\(count) records, end-to-end latency: \(fmt(latency.avg)) ms avg, \(fmt(latency.p50)) ms 50th, \(fmt(latency.p95)) ms 95th, "
                      + "\(fmt(latency.p99)) ms 99th, \(fmt(latency.p999)) ms 99.9th, \(fmt(latency.max)) ms max.")
                if json { print(jsonString(Summary(records: count, records_per_sec: Double(rate), mb_per_sec: Double(rate * size) / 1_048_576, latency_ms: latency))) }
                if count < numRecords {
                    printError("samsa perf e2e: only \(count) of \(numRecords) records arrived")
                    throw ExitCode(1)
                }
            }
        }
    }
}
