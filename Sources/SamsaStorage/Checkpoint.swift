import KafkaProtocol
import NIOCore

/// Kafka's checkpoint file format (`recovery-point-offset-checkpoint`, `log-start-offset-checkpoint`,
/// `replication-offset-checkpoint`, `leader-epoch-checkpoint`): a version line, a count line,
/// then one entry per line with space-separated fields. Written atomically (temp file + rename).
enum CheckpointFile {
    static func write(_ path: String, lines: [String], sync: Bool = true) throws {
        var text = "0\n\(lines.count)\n"
        for line in lines { text += line + "\n" }
        try FS.writeAtomically(path, text, sync: sync)
    }

    /// The entry lines, split into fields; empty when the file is missing.
    static func read(_ path: String) throws -> [[Substring]] {
        guard let buffer = try FS.readFile(path) else { return [] }
        let text = String(buffer: buffer)
        let lines = text.split(separator: "\n", omittingEmptySubsequences: true)
        guard lines.count >= 2, lines[0] == "0", let count = Int(lines[1]), lines.count - 2 >= count else {
            throw StorageError.corruptLog(path: path, why: "malformed checkpoint file")
        }
        return lines.dropFirst(2).prefix(count).map { $0.split(separator: " ") }
    }

    /// Reads a `topic partition offset` file into a dictionary.
    static func readOffsets(_ path: String) throws -> [TopicPartition: Int64] {
        var result: [TopicPartition: Int64] = [:]
        for fields in try read(path) {
            guard fields.count == 3, let p = Int32(fields[1]), let o = Int64(fields[2]) else {
                throw StorageError.corruptLog(path: path, why: "malformed checkpoint entry")
            }
            result[TopicPartition(String(fields[0]), p)] = o
        }
        return result
    }

    static func writeOffsets(_ path: String, _ offsets: [TopicPartition: Int64]) throws {
        try write(path, lines: offsets.sorted { $0.key < $1.key }.map { "\($0.key.topic) \($0.key.partition) \($0.value)" })
    }
}
