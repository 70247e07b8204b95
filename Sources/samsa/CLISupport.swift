import ArgumentParser
import KafkaProtocol
import KafkaRecords
import Logging
import SamsaClient
#if canImport(Glibc)
import Glibc
#endif

/// Options every client command takes.
struct ConnectionOptions: ParsableArguments {
    @Option(name: .long, help: "Broker(s) to bootstrap from, host:port[,host:port].")
    var bootstrapServer: String = "127.0.0.1:9092"

    var client: ClientConfiguration {
        var c = ClientConfiguration(bootstrapServers: bootstrapServer.split(separator: ",").map(String.init), clientId: "samsa-cli")
        c.connectTimeoutMs = 5000
        // A command reports its own failure in one line; the client's background retries stay
        // quiet unless asked for (SAMSA_LOG_LEVEL=warning, info, debug, trace).
        c.logger.logLevel = getenv("SAMSA_LOG_LEVEL").flatMap { Logger.Level(rawValue: String(cString: $0)) } ?? .error
        return c
    }
}

/// Runs a client command body; any failure becomes one readable line on stderr and exit code 1.
func runClient(_ command: String, _ body: () async throws -> Void) async throws {
    do {
        try await body()
    } catch let e as ExitCode {
        throw e
    } catch {
        printError("samsa \(command): \(error)")
        throw ExitCode(1)
    }
}

/// Prints rows as aligned columns.
func printTable(_ header: [String], _ rows: [[String]]) {
    var widths = header.map(\.count)
    for row in rows { for (i, cell) in row.enumerated() where i < widths.count { widths[i] = max(widths[i], cell.count) } }
    func line(_ cells: [String]) -> String {
        cells.enumerated().map { i, c in i == cells.count - 1 ? c : c.padding(toLength: widths[i] + 2) }.joined()
    }
    print(line(header))
    for r in rows { print(line(r)) }
}

extension String {
    func padding(toLength n: Int) -> String { count >= n ? self : self + String(repeating: " ", count: n - count) }
}

func parseKeyValues(_ items: [String], what: String) throws -> [String: String] {
    Dictionary(try parsePairs(items, what: what), uniquingKeysWith: { _, last in last })
}

/// key=value items in the order given, repeats kept (record headers).
func parsePairs(_ items: [String], what: String) throws -> [(String, String)] {
    try items.map { item in
        guard let eq = item.firstIndex(of: "=") else { throw ValidationError("\(what) expects key=value, got '\(item)'") }
        return (String(item[..<eq]), String(item[item.index(after: eq)...]))
    }
}

/// Reads standard input as raw bytes, one line at a time (without the newline), so that any
/// bytes, not only UTF-8, pass through unchanged.
struct StdinLines {
    private var buffer: [UInt8] = []
    private var start = 0
    private var eof = false

    mutating func next() -> [UInt8]? {
        while true {
            if let nl = buffer[start...].firstIndex(of: 10) {
                let line = Array(buffer[start..<nl])
                start = nl + 1
                return line
            }
            if eof {
                guard start < buffer.count else { return nil }
                let line = Array(buffer[start...])
                start = buffer.count
                return line
            }
            if start > 0 { buffer.removeFirst(start); start = 0 }
            var chunk = [UInt8](repeating: 0, count: 1 << 16)
            let n = chunk.withUnsafeMutableBytes { read(0, $0.baseAddress, $0.count) }
            if n <= 0 { eof = true } else { buffer += chunk[0..<n] }
        }
    }
}

func parseCompression(_ name: String) throws -> CompressionCodec {
    switch name.lowercased() {
    case "none", "uncompressed": return .none
    case "gzip": return .gzip
    case "snappy": return .snappy
    case "lz4": return .lz4
    case "zstd": return .zstd
    default: throw ValidationError("unknown compression '\(name)' (none, gzip, snappy, lz4, zstd)")
    }
}

func parseAcks(_ text: String) throws -> ProducerConfiguration.Acks {
    switch text.lowercased() {
    case "0": return .none
    case "1": return .leader
    case "all", "-1": return .all
    default: throw ValidationError("acks must be 0, 1 or all")
    }
}

/// Parses an ISO-8601 date-time (`2026-01-02T03:04:05`, optional `.SSS` and `Z`/`±hh:mm`; UTC when
/// no zone) or epoch milliseconds.
func parseDateTime(_ text: String) throws -> Int64 {
    if let ms = Int64(text) { return ms }
    var s = Substring(text)
    func number(_ n: Int) throws -> Int {
        guard s.count >= n, let v = Int(s.prefix(n)) else { throw ValidationError("cannot parse date-time '\(text)' (use 2026-01-02T03:04:05Z or epoch ms)") }
        s = s.dropFirst(n)
        return v
    }
    func expect(_ c: Character) throws {
        guard s.first == c else { throw ValidationError("cannot parse date-time '\(text)' (use 2026-01-02T03:04:05Z or epoch ms)") }
        s = s.dropFirst()
    }
    let year = try number(4); try expect("-"); let month = try number(2); try expect("-"); let day = try number(2)
    var hour = 0, minute = 0, second = 0, millis = 0
    if s.first == "T" || s.first == " " {
        s = s.dropFirst()
        hour = try number(2); try expect(":"); minute = try number(2)
        if s.first == ":" { s = s.dropFirst(); second = try number(2) }
        if s.first == "." {
            s = s.dropFirst()
            let digits = s.prefix { $0.isNumber }
            millis = Int((digits + "000").prefix(3)) ?? 0
            s = s.dropFirst(digits.count)
        }
    }
    var offsetMinutes = 0
    if s.first == "Z" { s = s.dropFirst() } else if let sign = s.first, sign == "+" || sign == "-" {
        s = s.dropFirst()
        let h = try number(2)
        if s.first == ":" { s = s.dropFirst() }
        let m = try number(2)
        offsetMinutes = (h * 60 + m) * (sign == "-" ? -1 : 1)
    }
    guard s.isEmpty else { throw ValidationError("cannot parse date-time '\(text)'") }
    // Days from civil (Howard Hinnant's algorithm).
    let y = year - (month <= 2 ? 1 : 0)
    let era = (y >= 0 ? y : y - 399) / 400
    let yoe = y - era * 400
    let doy = (153 * (month + (month > 2 ? -3 : 9)) + 2) / 5 + day - 1
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy
    let days = era * 146_097 + doe - 719_468
    let seconds = Int64(days) * 86_400 + Int64(hour * 3600 + minute * 60 + second) - Int64(offsetMinutes * 60)
    return seconds * 1000 + Int64(millis)
}
