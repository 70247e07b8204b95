import Foundation
import KafkaProtocol
import KafkaRecords
import KafkaWire
import NIOCore
import NIOPosix
import SamsaMetadata
import SamsaStorage
import Synchronization
import Testing
@testable import SamsaBroker

/// The leader side of replication without sockets: the high watermark follows the in-sync
/// followers' fetch offsets, followers join and leave the ISR, and acks=all waits complete.
@Suite struct ReplicationTests {
    func leaderPartition(_ dir: TempDir, isr: [Int32] = [1, 2, 3]) throws -> Partition {
        let log = try PartitionLog.open(directory: dir.path + "/t-0", topicPartition: TopicPartition("t", 0), config: LogConfig())
        let l = PartitionLeadership(partition: 0, leader: 1, leaderEpoch: 5, replicas: [1, 2, 3], isr: isr)
        let p = Partition(topicPartition: TopicPartition("t", 0), topicId: .zero, log: log, leadership: l, minInsyncReplicas: 2, brokerId: 1)
        p.makeLeader(l, partitionEpoch: 7, now: 1000)
        return p
    }

    @Test func highWatermarkIsTheSmallestLogEndOfTheIsr() throws {
        let dir = TempDir()
        defer { dir.cleanup() }
        let p = try leaderPartition(dir)
        _ = try p.log.append(batch(["a", "b", "c"]), leaderEpoch: 5)
        #expect(p.maybeIncrementHighWatermark() == nil)  // followers not heard from yet
        #expect(p.log.highWatermark == 0)
        #expect(p.recordFollowerFetch(replica: 2, fetchOffset: 3, now: 1100).highWatermark == nil)  // 3 still at -1
        #expect(p.recordFollowerFetch(replica: 3, fetchOffset: 2, now: 1100).highWatermark == 2)
        #expect(p.recordFollowerFetch(replica: 3, fetchOffset: 3, now: 1200).highWatermark == 3)
        #expect(p.log.highWatermark == 3)
        // A follower fetching again from an older offset never moves the high watermark back.
        _ = p.recordFollowerFetch(replica: 3, fetchOffset: 1, now: 1300)
        #expect(p.log.highWatermark == 3)
    }

    @Test func laggingFollowersLeaveAndCaughtUpOnesJoinTheIsr() throws {
        let dir = TempDir()
        defer { dir.cleanup() }
        let p = try leaderPartition(dir)
        _ = try p.log.append(batch(["a", "b"]), leaderEpoch: 5)
        _ = p.recordFollowerFetch(replica: 2, fetchOffset: 2, now: 2000)  // caught up at 2000
        _ = p.recordFollowerFetch(replica: 3, fetchOffset: 0, now: 2000)  // behind since becoming leader at 1000
        #expect(p.shrinkIsrIfNeeded(lagMs: 5000, now: 5000) == nil)
        #expect(p.shrinkIsrIfNeeded(lagMs: 5000, now: 6500) == [1, 2])
        // Only one change in flight at a time.
        #expect(p.shrinkIsrIfNeeded(lagMs: 5000, now: 9000) == nil)
        p.isrChangeCompleted(PartitionLeadership(partition: 0, leader: 1, leaderEpoch: 5, replicas: [1, 2, 3], isr: [1, 2]), partitionEpoch: 8)
        #expect(p.leadership.isr == [1, 2] && p.partitionEpoch == 8)
        #expect(p.log.highWatermark == 2)  // replica 3 no longer holds it back
        // Replica 3 catches up to the high watermark: proposed for the ISR.
        #expect(p.recordFollowerFetch(replica: 3, fetchOffset: 1, now: 9100).expandIsr == nil)
        #expect(p.recordFollowerFetch(replica: 3, fetchOffset: 2, now: 9200).expandIsr == [1, 2, 3])
        // A refused change (stale partition epoch) leaves the ISR as it was.
        p.isrChangeCompleted(nil, partitionEpoch: 8)
        #expect(p.leadership.isr == [1, 2])
    }

    @Test func acksAllWaitsCompleteOnTheHighWatermarkOrTimeOutOrMove() async throws {
        let loop = MultiThreadedEventLoopGroup.singleton.next()
        let purgatory = ProducePurgatory()
        let tp = TopicPartition("t", 0)
        let results = Mutex<[String: KafkaErrorCode]>([:])
        func watch(_ name: String, _ offset: Int64, hw: Int64, timeoutMs: Int64 = 600_000) {
            purgatory.watch(tp, lastOffset: offset, timeoutMs: timeoutMs, on: loop, currentHighWatermark: { hw }) { code in
                results.withLock { $0[name] = code }
            }
        }
        watch("already", 4, hw: 5)
        watch("low", 9, hw: 5)
        watch("high", 20, hw: 5)
        watch("timeout", 30, hw: 5, timeoutMs: 50)
        #expect(results.withLock { $0 } == ["already": .none])
        purgatory.highWatermarkMoved(tp, to: 10)
        #expect(results.withLock { $0["low"] } == KafkaErrorCode.none)
        #expect(results.withLock { $0["high"] } == nil)
        #expect(eventually(30) { results.withLock { $0["timeout"] } != nil })
        #expect(results.withLock { $0["timeout"] } == .requestTimedOut)
        purgatory.leadershipLost(tp)
        #expect(results.withLock { $0["high"] } == .notLeaderOrFollower)
        #expect(purgatory.waitingCount == 0)
    }
}
