import Foundation
import Glibc
import KafkaProtocol
import KafkaRecords
import KafkaWire
import NIOCore
import Synchronization
import Testing
@testable import SamsaStorage

struct MountFailed: Error, CustomStringConvertible {
    var description: String
}

/// A small tmpfs mounted on a fresh temporary folder, so a test can fill a real file system.
/// The tests run as root; when the mount is refused the test fails with this message (never skips).
final class SmallFileSystem {
    let path: String

    init(kilobytes: Int) throws {
        path = temporaryDirectory()
        let rc = mount("tmpfs", path, "tmpfs", 0, "size=\(kilobytes)k")
        guard rc == 0 else {
            let code = errno
            throw MountFailed(description: "mount -t tmpfs -o size=\(kilobytes)k on \(path) failed: \(String(cString: strerror(code))); "
                                 + "the full-disk storage tests need root (CAP_SYS_ADMIN) to mount a small file system")
        }
    }

    deinit {
        _ = umount2(path, Int32(MNT_DETACH))
        _ = rmdir(path)
    }

    var freeBytes: Int64 { FS.freeBytes(path) }

    /// Fills the file system with a file `name` until the disk is full.
    func fill(_ name: String = "filler") {
        let fd = open(path + "/" + name, O_WRONLY | O_CREAT | O_APPEND, 0o644)
        guard fd >= 0 else { return }
        defer { close(fd) }
        let chunk = [UInt8](repeating: 0x55, count: 4096)
        while chunk.withUnsafeBytes({ write(fd, $0.baseAddress!, $0.count) }) > 0 {}
        // The last partial block.
        while chunk.withUnsafeBytes({ write(fd, $0.baseAddress!, 1) }) > 0 {}
    }

    func remove(_ name: String = "filler") { unlink(path + "/" + name) }
}

/// Every file under `dir`, recursively (relative names).
func allFiles(_ dir: String) -> [String] {
    let enumerator = FileManager.default.enumerator(atPath: dir)
    var names: [String] = []
    while let name = enumerator?.nextObject() as? String { names.append(name) }
    return names
}

func fileSize(_ path: String) -> Int {
    var st = stat()
    return stat(path, &st) == 0 ? Int(st.st_size) : -1
}

func segmentBytesOnDisk(_ log: PartitionLog) -> Int {
    log.segmentBaseOffsets.reduce(0) { $0 + fileSize(log.directory + "/" + LogSegment.fileName($1, ".log")) }
}

@Suite struct AppendFailureTests {
    @Test func injectedWriteErrorRollsTheAppendBack() throws {
        let dir = temporaryDirectory()
        defer { IOFaults.remove(under: dir) }
        var log: PartitionLog? = try openLog(dir)
        for seq in 0..<3 {
            try appendAndCommit(log!, makeBatch(2, prefix: "ok\(seq)", producerId: 7, epoch: 0, sequence: Int32(seq * 2)))
        }
        let endBefore = log!.logEndOffset, bytesBefore = segmentBytesOnDisk(log!), producersBefore = log!.producerState
        // The next write reaches the file half-way, then fails.
        IOFaults.install(under: dir) { op, _ in op == "pwritev" ? .init(errno: EIO, after: 30) : nil }
        #expect(throws: StorageError.io(op: "pwritev", path: dir + "/t-0/" + LogSegment.fileName(0, ".log"), errno: EIO)) {
            try log!.append(makeBatch(2, prefix: "lost", producerId: 7, epoch: 0, sequence: 6), leaderEpoch: 0)
        }
        #expect(log!.logEndOffset == endBefore)
        #expect(segmentBytesOnDisk(log!) == bytesBefore)
        #expect(log!.producerState == producersBefore)
        #expect(!log!.context.isOffline)
        IOFaults.remove(under: dir)
        // The producer's retry of the same sequence is appended (not "out of order", not a duplicate),
        // at the next offset: no offset is reused or skipped.
        let retry = try appendAndCommit(log!, makeBatch(2, prefix: "retry", producerId: 7, epoch: 0, sequence: 6))
        #expect(!retry.isDuplicate && retry.firstOffset == endBefore)
        log!.waitForBackgroundWork()
        log = nil
        let reopened = try openLog(dir)
        #expect(reopened.recoveryReport.bytesTruncated == 0)
        #expect(try readAll(reopened).map(\.1) == ["ok0-0", "ok0-1", "ok1-0", "ok1-1", "ok2-0", "ok2-1", "retry-0", "retry-1"])
    }

    @Test func aFailedRollbackTakesTheLogDirOffline() throws {
        let dir = temporaryDirectory()
        defer { IOFaults.remove(under: dir) }
        let manager = try LogManager(logDir: dir)
        try manager.loadAll { _ in LogConfig() }
        let seen = Mutex<[LogDirEvent]>([])
        manager.onEvent { e in seen.withLock { $0.append(e) } }
        let log = try manager.getOrCreate(TopicPartition("t", 0), config: LogConfig())
        try appendAndCommit(log, makeBatch(3))
        IOFaults.install(under: dir) { op, _ in op == "pwritev" || op == "ftruncate" ? .init(errno: EIO, after: 10) : nil }
        #expect(throws: StorageError.logDirOffline(path: dir)) { try log.append(makeBatch(1), leaderEpoch: 0) }
        IOFaults.remove(under: dir)
        #expect(manager.isOffline)
        #expect(seen.withLock { $0.count } == 1)
        if case .offline(let path, _)? = seen.withLock({ $0.first }) { #expect(path == dir) } else { Issue.record("no offline event") }
        // Every log of the directory now refuses reads and writes with KAFKA_STORAGE_ERROR.
        #expect(throws: StorageError.logDirOffline(path: dir)) { try log.append(makeBatch(1), leaderEpoch: 0) }
        #expect(throws: StorageError.logDirOffline(path: dir)) { try log.read(from: 0, maxBytes: 100) }
        #expect(throws: StorageError.logDirOffline(path: dir)) { try manager.getOrCreate(TopicPartition("u", 0), config: LogConfig()) }
        #expect(StorageError.logDirOffline(path: dir).kafkaErrorCode == .kafkaStorageError)
        // And the directory is not marked as cleanly shut down.
        #expect(throws: StorageError.self) { try manager.shutdown() }
        #expect(!FS.exists(dir + "/" + LogManager.cleanShutdownMarker))
    }

    @Test func anFsyncFailureIsFatalForTheLogDir() throws {
        let dir = temporaryDirectory()
        defer { IOFaults.remove(under: dir) }
        let manager = try LogManager(logDir: dir)
        try manager.loadAll { _ in LogConfig() }
        let log = try manager.getOrCreate(TopicPartition("t", 0), config: LogConfig())
        try appendAndCommit(log, makeBatch(3))
        IOFaults.install(under: dir) { op, _ in op == "fdatasync" ? .init(errno: EIO) : nil }
        #expect(throws: StorageError.logDirOffline(path: dir)) { try log.flush() }
        IOFaults.remove(under: dir)
        // Not ignored, not retried into success: the directory stays offline.
        #expect(manager.isOffline)
        #expect(log.offsets.recoveryPoint == 0)
        #expect(throws: StorageError.logDirOffline(path: dir)) { try log.flush() }
        #expect(throws: StorageError.logDirOffline(path: dir)) { try log.append(makeBatch(1), leaderEpoch: 0) }
    }

    @Test func aFailedEpochCheckpointNeverLetsOffsetsBeReused() throws {
        let dir = temporaryDirectory()
        defer { IOFaults.remove(under: dir) }
        do {
            let manager = try LogManager(logDir: dir)
            try manager.loadAll { _ in LogConfig() }
            let log = try manager.getOrCreate(TopicPartition("t", 0), config: LogConfig())
            try appendAndCommit(log, makeBatch(3, prefix: "e0"), epoch: 0)
            log.waitForBackgroundWork()
            // Writing the leader-epoch checkpoint for the new epoch fails.
            IOFaults.install(under: dir) { op, path in path.contains("leader-epoch-checkpoint") ? .init(errno: EIO) : nil }
            let r = try appendAndCommit(log, makeBatch(3, prefix: "e1"), epoch: 1)
            #expect(r.firstOffset == 3)
            log.waitForBackgroundWork()
            IOFaults.remove(under: dir)
            // The checkpoint error took the directory offline rather than being ignored.
            #expect(manager.isOffline)
            #expect(throws: StorageError.logDirOffline(path: dir)) { try log.append(makeBatch(1), leaderEpoch: 1) }
            #expect(log.logEndOffset == 6)
        }
        // After a restart the records are there once, and epoch 1 is known from the batch headers.
        let manager = try LogManager(logDir: dir)
        try manager.loadAll { _ in LogConfig() }
        let log = try #require(manager.log(TopicPartition("t", 0)))
        log.updateHighWatermark(log.logEndOffset)
        #expect(try readAll(log).map(\.0) == [0, 1, 2, 3, 4, 5])
        #expect(log.leaderEpochCache.entries == [.init(epoch: 0, startOffset: 0), .init(epoch: 1, startOffset: 3)])
        #expect(try log.append(makeBatch(1), leaderEpoch: 1).firstOffset == 6)
    }

    @Test func aFullFileSystemRefusesWritesAndKeepsTheLog() throws {
        let fs = try SmallFileSystem(kilobytes: 1024)
        let manager = try LogManager(logDir: fs.path + "/data")
        try manager.loadAll { _ in LogConfig() }
        let seen = Mutex<[LogDirEvent]>([])
        manager.onEvent { e in seen.withLock { $0.append(e) } }
        var config = LogConfig()
        config.segmentBytes = 200 * 1024
        let log = try manager.getOrCreate(TopicPartition("t", 0), config: config)
        // Leave ~100 KiB free for the log, then append 10 KiB batches until the disk is full.
        let reserve = fs.path + "/reserve"
        FileManager.default.createFile(atPath: reserve, contents: Data(repeating: 1, count: max(0, Int(fs.freeBytes) - 100 * 1024)))
        var appended = 0
        var failure: StorageError?
        for i in 0..<200 {
            do {
                try appendAndCommit(log, makeBatch(1, prefix: "b\(i)", valueSize: 10 * 1024))
                appended += 1
            } catch let e as StorageError {
                failure = e
                break
            }
        }
        let error = try #require(failure, "the 1 MiB file system never filled up")
        guard case .diskFull(let path, _) = error else { Issue.record("expected diskFull, got \(error)"); return }
        #expect(path == fs.path + "/data")
        #expect(error.kafkaErrorCode == .kafkaStorageError)
        #expect(appended > 0)
        // Nothing half-written, nothing lost, reads go on.
        #expect(log.logEndOffset == Int64(appended))
        #expect(segmentBytesOnDisk(log) == Int(log.sizeInBytes))
        let values = try readAll(log).map(\.1)
        #expect(values.count == appended)
        #expect(values.enumerated().allSatisfy { $0.element.hasPrefix("b\($0.offset)-0") })
        #expect(!manager.isOffline)
        // More attempts fail the same way but the full disk is reported once, with its free space.
        for _ in 0..<3 {
            #expect(throws: StorageError.self) { try log.append(makeBatch(1, valueSize: 10 * 1024), leaderEpoch: 0) }
        }
        let fullEvents = seen.withLock { $0 }.filter { if case .diskFull = $0 { return true } else { return false } }
        #expect(fullEvents.count == 1)
        if case .diskFull(let p, let free)? = fullEvents.first {
            #expect(p == fs.path + "/data")
            #expect(free >= 0 && free < 10 * 1024)
        }
        // Space comes back: the next append continues at the next offset, and that is reported too.
        unlink(reserve)
        let r = try appendAndCommit(log, makeBatch(1, prefix: "after", valueSize: 10 * 1024))
        #expect(r.firstOffset == Int64(appended))
        #expect(seen.withLock { $0.last } == .diskSpaceAvailable(path: fs.path + "/data"))
        try manager.shutdown()
    }
}

@Suite struct FullDiskTests {
    /// Fills a small file system through a log, shuts down, and starts again on the still-full disk.
    @Test func shutdownAndStartOnAFullDisk() throws {
        let fs = try SmallFileSystem(kilobytes: 1024)
        let dataDir = fs.path + "/data"
        var config = LogConfig()
        config.segmentBytes = 64 * 1024
        config.indexIntervalBytes = 1024
        let tp = TopicPartition("t", 0)
        var appended = 0
        do {
            let manager = try LogManager(logDir: dataDir)
            try manager.loadAll { _ in config }
            let log = try manager.getOrCreate(tp, config: config)
            // Kept aside, freed at the end (tmpfs gives each index file a whole page).
            FileManager.default.createFile(atPath: fs.path + "/spare", contents: Data(repeating: 2, count: 200 * 1024))
            while appended < 500 {
                do { try appendAndCommit(log, makeBatch(1, prefix: "f\(appended)", valueSize: 3000)) } catch { break }
                appended += 1
            }
            #expect(appended > 50 && appended < 500)
            fs.fill()  // whatever a flush freed or left
            // A shutdown on the full disk may not be clean, but it leaves no temporary files.
            _ = try? manager.shutdown()
        }
        #expect(allFiles(dataDir).filter { $0.hasSuffix(".tmp") } == [])
        // Force the next start to rebuild indexes too: drop them and fill the space they took.
        for name in allFiles(dataDir) where name.hasSuffix(".index") || name.hasSuffix(".timeindex") {
            unlink(dataDir + "/" + name)
        }
        fs.fill("filler2")
        #expect(fs.freeBytes < 4096)

        let manager = try LogManager(logDir: dataDir)
        let seen = Mutex<[LogDirEvent]>([])
        manager.onEvent { e in seen.withLock { $0.append(e) } }
        try manager.loadAll { _ in config }
        let log = try #require(manager.log(tp))
        #expect(log.logEndOffset == Int64(appended))
        // Reads are served (indexes rebuilt in memory), writes refused with KAFKA_STORAGE_ERROR.
        let values = try readAll(log).map(\.1)
        #expect(values.count == appended)
        #expect(values.enumerated().allSatisfy { $0.element.hasPrefix("f\($0.offset)-0") })
        #expect(try log.read(from: Int64(appended / 2), maxBytes: 10).slice?.firstOffset == Int64(appended / 2))
        do {
            _ = try log.append(makeBatch(1, valueSize: 3000), leaderEpoch: 0)
            Issue.record("an append on a full disk succeeded")
        } catch let e as StorageError {
            #expect(e.kafkaErrorCode == .kafkaStorageError)
            #expect(e.isOutOfSpace)
        }
        // The full disk was reported (once, with the path).
        let full = seen.withLock { $0 }.filter { if case .diskFull(let p, _) = $0 { return p == dataDir } else { return false } }
        #expect(full.count == 1)
        #expect(allFiles(dataDir).filter { $0.hasSuffix(".tmp") } == [])
        // Once there is space again, the indexes held in memory are written and appends continue.
        fs.remove()
        fs.remove("filler2")
        fs.remove("spare")
        #expect(try log.append(makeBatch(1, valueSize: 3000), leaderEpoch: 0).firstOffset == Int64(appended))
        try manager.shutdown()
        #expect(allFiles(dataDir).contains { $0.hasSuffix(".index") })
        #expect(allFiles(dataDir).filter { $0.hasSuffix(".tmp") } == [])
    }

    @Test func writeAtomicallyLeavesNoTemporaryFileWhenTheWriteFails() throws {
        let dir = temporaryDirectory()
        defer { IOFaults.remove(under: dir) }
        IOFaults.install(under: dir) { op, _ in op == "pwrite" ? .init(errno: ENOSPC) : nil }
        #expect(throws: StorageError.io(op: "pwrite", path: dir + "/x.index.tmp", errno: ENOSPC)) {
            try FS.writeAtomically(dir + "/x.index", ByteBuffer(string: "12345678"), sync: false)
        }
        #expect(allFiles(dir) == [])
    }
}

@Suite struct AppendLockTests {
    /// A roll's fsync of the old segment and the leader-epoch checkpoint run on the background
    /// queue: while that fsync is stuck, appends (and ListOffsets by time) go on.
    @Test func appendsGoOnWhileARolledSegmentIsBeingFsynced() throws {
        let dir = temporaryDirectory()
        defer { IOFaults.remove(under: dir) }
        let gate = DispatchSemaphore(value: 0)
        let blocked = DispatchSemaphore(value: 0)
        IOFaults.install(under: dir) { op, _ in
            if op == "fdatasync" {
                blocked.signal()
                _ = gate.wait(timeout: .now() + 20)
            }
            return nil
        }
        var config = LogConfig()
        config.segmentBytes = 500
        let log = try openLog(dir, config: config)
        // The first append starts epoch 0: its checkpoint (and later the rolls) are flushed in the background.
        try appendAndCommit(log, makeBatch(2, valueSize: 100), epoch: 0)
        #expect(blocked.wait(timeout: .now() + 10) == .success, "no background fsync started")
        // The background queue is now stuck in fdatasync; appends roll segments regardless.
        let start = monotonicMillis()
        for i in 0..<20 { try appendAndCommit(log, makeBatch(2, prefix: "p\(i)", valueSize: 100), epoch: 1) }
        #expect(log.segmentCount > 3)
        #expect(try log.offsetForTimestamp(0)?.offset == 0)
        #expect(monotonicMillis() - start < 5_000)
        #expect(log.offsets.recoveryPoint == 0)
        IOFaults.remove(under: dir)
        gate.signal()
        log.waitForBackgroundWork()
        // Once the fsyncs are through, the rolled segments are durable and their index files exist.
        #expect(log.offsets.recoveryPoint >= log.segmentBaseOffsets.last!)
        let names = try FS.list(dir + "/t-0")
        for base in log.segmentBaseOffsets.dropLast() {
            #expect(names.contains(LogSegment.fileName(base, ".index")))
        }
        #expect(names.contains("leader-epoch-checkpoint"))
        #expect(try LeaderEpochCache.load(dir + "/t-0/leader-epoch-checkpoint").entries.map(\.epoch) == [0, 1])
    }
}

@Suite struct CheckpointOnFullDiskTests {
    @Test func periodicCheckpointsOnAFullDiskReportOnceAndDoNotThrow() throws {
        let fs = try SmallFileSystem(kilobytes: 256)
        let manager = try LogManager(logDir: fs.path + "/data")
        try manager.loadAll { _ in LogConfig() }
        let log = try manager.getOrCreate(TopicPartition("t", 0), config: LogConfig())
        try appendAndCommit(log, makeBatch(3))
        log.waitForBackgroundWork()
        fs.fill()
        for _ in 0..<3 { try manager.checkpoint() }
        let full = manager.context.events.filter { if case .diskFull = $0 { return true } else { return false } }
        #expect(full.count == 1)
        #expect(allFiles(fs.path).filter { $0.hasSuffix(".tmp") } == [])
        // A shutdown on the full disk is not marked clean (the next start recovers from the old checkpoints).
        #expect(throws: StorageError.self) { try manager.shutdown() }
        #expect(!FS.exists(fs.path + "/data/" + LogManager.cleanShutdownMarker))
    }
}
