import Foundation
import KafkaProtocol
import KafkaRecords
import KafkaWire
import NIOCore
import Testing
@testable import SamsaBroker
@testable import SamsaStorage

/// The hand-written zero-copy Fetch encoder must produce exactly what the generated decoder reads.
@Suite struct FetchResponseEncoderTests {
    /// Concatenates a payload's parts, reading file regions from their descriptors, and closes them.
    static func flatten(_ payload: ResponsePayload) throws -> ByteBuffer {
        switch payload {
        case let .buffer(b): return b
        case let .parts(parts):
            var out = ByteBuffer()
            for part in parts {
                switch part {
                case let .bytes(b): out.writeImmutableBuffer(b)
                case let .file(file, position, length):
                    var chunk = [UInt8](repeating: 0, count: length)
                    let n = chunk.withUnsafeMutableBytes { pread(file.fd, $0.baseAddress, $0.count, off_t(position)) }
                    #expect(n == length)
                    out.writeBytes(chunk)
                }
            }
            return out
        }
    }

    @Test(arguments: Array(Int16(4)...17))
    func encodesWhatTheGeneratedDecoderReads(version: Int16) throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("samsa-fetch-\(UUID().uuidString)").path
        let log = try PartitionLog.open(directory: dir, topicPartition: TopicPartition("t", 0), config: LogConfig())
        var builder = RecordBatchBuilder()
        builder.append(key: ByteBuffer(string: "k"), value: ByteBuffer(string: "value"), timestamp: 1000)
        let batch = builder.build()
        _ = try log.append(batch, leaderEpoch: 0)
        log.updateHighWatermark(1)
        let slice = try #require(try log.read(from: 0, maxBytes: 1 << 20).slice)
        let id = KafkaUUID.random()
        var p0 = FetchResponseEncoder.Partition(index: 0, highWatermark: 1, lastStableOffset: 1, logStartOffset: 0)
        p0.records = .file(slice)
        var p1 = FetchResponseEncoder.Partition(index: 1, errorCode: .notLeaderOrFollower)
        p1.currentLeader = (2, 7)
        var p2 = FetchResponseEncoder.Partition(index: 2, highWatermark: 5, lastStableOffset: 5, logStartOffset: 1)
        p2.records = .buffer(batch)
        let payload = FetchResponseEncoder.encode(version: version, correlationId: 42, errorCode: .none, sessionId: 0,
                                                      topics: [.init(name: "t", topicId: id, partitions: [p0, p1, p2])])
        var bytes = try Self.flatten(payload)
        let size = bytes.readInteger(as: Int32.self) ?? -1
        #expect(Int(size) == bytes.readableBytes)
        let (correlationId, decoded) = try FetchResponse.decodeFrame(bytes, version: version)
        #expect(correlationId == 42)
        let topic = try #require(decoded.responses.first)
        if version >= 13 { #expect(topic.topicId == id) } else { #expect(topic.topic == "t") }
        #expect(topic.partitions.count == 3)
        #expect(topic.partitions[0].records?.readableBytes == batch.readableBytes)
        #expect(topic.partitions[0].highWatermark == 1 && topic.partitions[0].logStartOffset == (version >= 5 ? 0 : -1))
        #expect(topic.partitions[1].errorCode == KafkaErrorCode.notLeaderOrFollower.rawValue)
        if version >= 12 { #expect(topic.partitions[1].currentLeader.leaderId == 2 && topic.partitions[1].currentLeader.leaderEpoch == 7) }
        #expect(topic.partitions[2].records == batch)
        // The stored batch read back through the file region is a valid batch at offset 0.
        var reader = RecordBatchReader(try #require(topic.partitions[0].records))
        let stored = try #require(try reader.next())
        try stored.validate()
        let records = try stored.records()
        #expect(stored.header.baseOffset == 0 && records.first?.value == ByteBuffer(string: "value"))
    }
}
