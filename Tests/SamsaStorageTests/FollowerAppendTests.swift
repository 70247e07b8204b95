import Foundation
import KafkaProtocol
import KafkaRecords
import KafkaWire
import NIOCore
import Testing
@testable import SamsaStorage

/// A follower's append (replication): batches copied from the leader are written unchanged, so
/// the replicas' segment files are byte-identical; the leader-epoch cache follows the batches.
@Suite struct FollowerAppendTests {
    /// The bytes of every segment of `log`, in order.
    func segmentBytes(_ log: PartitionLog) throws -> [Data] {
        try log.segmentBaseOffsets.map { base in
            try Data(contentsOf: URL(fileURLWithPath: log.directory + "/" + String(format: "%020lld.log", base)))
        }
    }

    @Test func replicatedBatchesAreByteIdenticalAcrossSegmentsAndEpochs() throws {
        var config = LogConfig()
        config.segmentBytes = 1500
        let leader = try openLog(temporaryDirectory(), config: config)
        let follower = try openLog(temporaryDirectory(), config: config)
        for i in 0..<8 { try appendAndCommit(leader, makeBatch(3, prefix: "a\(i)", valueSize: 40), epoch: 1) }
        for i in 0..<8 { try appendAndCommit(leader, makeBatch(2, prefix: "b\(i)", valueSize: 40), epoch: 4) }
        // Copy as a follower fetches: from its log end, a few batches at a time.
        while follower.logEndOffset < leader.logEndOffset {
            let bytes = try leader.readBatches(from: follower.logEndOffset, maxBytes: 500, upperBound: leader.logEndOffset)
            #expect(try follower.appendAsFollower(bytes) != nil)
        }
        #expect(follower.logEndOffset == leader.logEndOffset)
        #expect(follower.leaderEpochCache == leader.leaderEpochCache)
        #expect(follower.segmentBaseOffsets == leader.segmentBaseOffsets)
        #expect(try segmentBytes(follower) == segmentBytes(leader))
        follower.updateHighWatermark(follower.logEndOffset)
        #expect(try readAll(follower).map(\.1) == readAll(leader).map(\.1))
    }

    @Test func batchesAlreadyHereAreSkippedAndCorruptOnesRefused() throws {
        let leader = try openLog(temporaryDirectory())
        let follower = try openLog(temporaryDirectory())
        for i in 0..<3 { try appendAndCommit(leader, makeBatch(2, prefix: "x\(i)"), epoch: 2) }
        let all = try leader.readBatches(from: 0, maxBytes: 1 << 20, upperBound: leader.logEndOffset)
        #expect(try follower.appendAsFollower(all)?.firstOffset == 0)
        // The same bytes again (a retried fetch): nothing is appended twice.
        #expect(try follower.appendAsFollower(all) == nil)
        #expect(follower.logEndOffset == 6)
        // A flipped byte fails the CRC check and nothing is written.
        try appendAndCommit(leader, makeBatch(2, prefix: "y"), epoch: 2)
        var tail = try leader.readBatches(from: 6, maxBytes: 1 << 20, upperBound: leader.logEndOffset)
        let at = tail.readerIndex + tail.readableBytes - 1
        tail.setInteger(tail.getInteger(at: at, as: UInt8.self)! ^ 0xFF, at: at)
        #expect(throws: StorageError.self) { try follower.appendAsFollower(tail) }
        #expect(follower.logEndOffset == 6)
    }

    @Test func truncationToTheLeadersEpochEndThenCatchingUp() throws {
        // KIP-101: a follower with a divergent tail (epoch 3, never committed) truncates where
        // the leader says epoch 2 ended, then copies the leader's epoch-4 records.
        let leader = try openLog(temporaryDirectory())
        let follower = try openLog(temporaryDirectory())
        for i in 0..<2 { try appendAndCommit(leader, makeBatch(2, prefix: "c\(i)"), epoch: 2) }
        _ = try follower.appendAsFollower(try leader.readBatches(from: 0, maxBytes: 1 << 20, upperBound: leader.logEndOffset))
        _ = try follower.append(makeBatch(3, prefix: "divergent"), leaderEpoch: 3)
        for i in 0..<2 { try appendAndCommit(leader, makeBatch(1, prefix: "d\(i)"), epoch: 4) }
        let (epoch, end) = leader.endOffset(forLeaderEpoch: 3)
        #expect(epoch == 2 && end == 4)
        try follower.truncate(to: end)
        _ = try follower.appendAsFollower(try leader.readBatches(from: follower.logEndOffset, maxBytes: 1 << 20, upperBound: leader.logEndOffset))
        #expect(follower.leaderEpochCache == leader.leaderEpochCache)
        #expect(try segmentBytes(follower) == segmentBytes(leader))
    }

    @Test func severalBatchesInOneProduceBufferAreEachWritten() throws {
        // A produce request may carry several batches for one partition: each is written once, in order.
        let log = try openLog(temporaryDirectory())
        var records = makeBatch(2, prefix: "first")
        var second = makeBatch(3, prefix: "second")
        records.writeBuffer(&second)
        let r = try appendAndCommit(log, records, epoch: 1)
        #expect(r.firstOffset == 0 && r.lastOffset == 4)
        #expect(try readAll(log).map(\.1) == ["first-0", "first-1", "second-0", "second-1", "second-2"])
    }
}
