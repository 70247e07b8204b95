import Testing
@testable import SamsaStorage

/// OffsetForLeaderEpoch answers as Kafka's LeaderEpochFileCache.endOffsetFor.
@Suite struct LeaderEpochCacheTests {
    func cache(_ entries: [(Int32, Int64)]) -> LeaderEpochCache {
        var c = LeaderEpochCache()
        for (e, o) in entries { c.assign(epoch: e, startOffset: o) }
        return c
    }

    @Test func endOffsetsFollowKafka() {
        let c = cache([(1, 0), (3, 10), (4, 25)])
        #expect(c.endOffset(for: 4, logEndOffset: 40) == (4, 40), "the latest epoch ends at the log end")
        #expect(c.endOffset(for: 3, logEndOffset: 40) == (3, 25), "a known epoch ends where the next starts")
        #expect(c.endOffset(for: 2, logEndOffset: 40) == (1, 10), "an unknown epoch between: the epoch below it, ending where the next above starts")
        #expect(c.endOffset(for: 0, logEndOffset: 40) == (0, 0), "older than every epoch: itself, ending at the first epoch's start")
        #expect(c.endOffset(for: 5, logEndOffset: 40) == (-1, -1), "newer than every epoch: undefined")
        #expect(c.endOffset(for: -1, logEndOffset: 40) == (-1, -1))
        #expect(LeaderEpochCache().endOffset(for: 0, logEndOffset: 0) == (-1, -1), "nothing known")
    }
}
