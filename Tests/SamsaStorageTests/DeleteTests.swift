import Foundation
import KafkaProtocol
import KafkaRecords
import KafkaWire
import NIOCore
import Synchronization
import Testing
@testable import SamsaStorage

@Suite struct DeleteTests {
    @Test func deleteRenamesTheFolderAndANewLogStartsFresh() throws {
        let dir = temporaryDirectory()
        let manager = try LogManager(logDir: dir)
        try manager.loadAll { _ in LogConfig() }
        let tp = TopicPartition("orders", 0)
        let old = try manager.getOrCreate(tp, config: LogConfig())
        for i in 0..<5 { try appendAndCommit(old, makeBatch(3, prefix: "old\(i)")) }
        // Keep the background queue busy so the removal cannot have happened yet.
        let gate = DispatchSemaphore(value: 0)
        manager.context.inBackground { gate.wait() }
        try manager.delete(tp)
        let names = try FS.list(dir)
        let deleted = names.filter { LogManager.isDeletedFolder($0) }
        #expect(deleted.count == 1)
        #expect(deleted.first?.hasPrefix("orders-0.") == true)
        #expect(!names.contains("orders-0"))
        // The same partition again (auto-creation, say) meets none of the old files.
        let fresh = try manager.getOrCreate(tp, config: LogConfig())
        #expect(fresh.logEndOffset == 0 && fresh.logStartOffset == 0)
        #expect(try readAll(fresh).isEmpty)
        try appendAndCommit(fresh, makeBatch(1, prefix: "new"))
        #expect(try readAll(fresh).map(\.1) == ["new-0"])
        // The old log refuses further work.
        #expect(throws: StorageError.self) { try old.append(makeBatch(1), leaderEpoch: 0) }
        gate.signal()
        manager.waitForBackgroundWork()
        #expect(try FS.list(dir).filter { LogManager.isDeletedFolder($0) } == [])
        #expect(try FS.list(dir + "/orders-0").contains(LogSegment.fileName(0, ".log")))
    }

    @Test func deleteWhileAppendingAlwaysSucceeds() throws {
        let dir = temporaryDirectory()
        let manager = try LogManager(logDir: dir)
        try manager.loadAll { _ in LogConfig() }
        var c = LogConfig()
        c.segmentBytes = 2048
        let config = c
        let tp = TopicPartition("busy", 0)
        let stop = StopFlag()
        let writer = Thread {
            while !stop.flag.load(ordering: .relaxed) {
                // A producer with auto-creation: whatever log is current.
                if let log = try? manager.getOrCreate(tp, config: config) {
                    _ = try? log.append(makeBatch(2, valueSize: 200), leaderEpoch: 0)
                }
            }
        }
        writer.start()
        defer { stop.flag.store(true, ordering: .relaxed) }
        for _ in 0..<30 {
            _ = try manager.getOrCreate(tp, config: config)
            Thread.sleep(forTimeInterval: 0.002)
            try manager.delete(tp)  // never "directory not empty"
        }
        stop.flag.store(true, ordering: .relaxed)
        let deadline = Date().addingTimeInterval(10)
        while !writer.isFinished, Date() < deadline { Thread.sleep(forTimeInterval: 0.01) }
        manager.waitForBackgroundWork()
        #expect(try FS.list(dir).filter { LogManager.isDeletedFolder($0) } == [])
    }

    @Test func deletedFoldersFoundAtStartAreRemovedNotLoaded() throws {
        let dir = temporaryDirectory()
        do {
            let manager = try LogManager(logDir: dir)
            try manager.loadAll { _ in LogConfig() }
            let log = try manager.getOrCreate(TopicPartition("gone", 2), config: LogConfig())
            try appendAndCommit(log, makeBatch(3))
            try manager.shutdown()
        }
        // As if the broker stopped between the rename and the removal.
        let renamed = "gone-2.0123456789abcdef0123456789abcdef-delete"
        try FS.rename(dir + "/gone-2", dir + "/" + renamed)
        #expect(LogManager.isDeletedFolder(renamed))
        #expect(!LogManager.isDeletedFolder("my-delete-0"))
        let manager = try LogManager(logDir: dir)
        try manager.loadAll { _ in LogConfig() }
        #expect(manager.partitions.isEmpty)
        manager.waitForBackgroundWork()
        #expect(!FS.exists(dir + "/" + renamed))
    }
}

final class StopFlag: Sendable {
    let flag = Atomic<Bool>(false)
}
