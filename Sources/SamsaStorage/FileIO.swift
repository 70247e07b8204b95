#if canImport(Glibc)
import KafkaProtocol
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif
import NIOCore
import Synchronization

/// An open file descriptor owned by the storage engine. Reference counted: the descriptor is
/// closed when the last holder lets go, so a fetch that is still sending a segment keeps it
/// readable after retention has unlinked it.
public final class FileDescriptorBox: Sendable {
    public let fd: CInt
    public let path: String

    init(fd: CInt, path: String) {
        self.fd = fd
        self.path = path
    }

    deinit { _ = close(fd) }

    /// Opens (creating when asked) `path` for reading and writing.
    static func open(_ path: String, create: Bool) throws -> FileDescriptorBox {
        try IOFaults.check("open", path)
        let flags = O_RDWR | O_CLOEXEC | (create ? O_CREAT : 0)
        let fd = path.withCString { Glibc.open($0, flags, 0o644) }
        guard fd >= 0 else { throw StorageError.io(op: "open", path: path, errno: errno) }
        return FileDescriptorBox(fd: fd, path: path)
    }

    /// A new descriptor for the same open file, owned by the caller (for sendfile).
    public func duplicate() throws -> CInt {
        let d = dup(fd)
        guard d >= 0 else { throw StorageError.io(op: "dup", path: path, errno: errno) }
        return d
    }

    func size() throws -> Int {
        var st = stat()
        guard fstat(fd, &st) == 0 else { throw StorageError.io(op: "fstat", path: path, errno: errno) }
        return Int(st.st_size)
    }

    /// Writes all of `bytes` at `offset`.
    func pwriteAll(_ bytes: UnsafeRawBufferPointer, at offset: Int) throws {
        var done = 0
        if let fault = IOFaults.fault("pwrite", path) {
            // An injected failure after `fault.after` bytes (a torn write).
            let n = min(fault.after, bytes.count)
            if n > 0 { _ = pwrite(fd, bytes.baseAddress!, n, off_t(offset)) }
            throw StorageError.io(op: "pwrite", path: path, errno: fault.errno)
        }
        while done < bytes.count {
            let n = pwrite(fd, bytes.baseAddress! + done, bytes.count - done, off_t(offset + done))
            if n < 0 {
                if errno == EINTR { continue }
                throw StorageError.io(op: "pwrite", path: path, errno: errno)
            }
            done += n
        }
    }

    func pwriteAll(_ buffer: ByteBuffer, at offset: Int) throws {
        try buffer.withUnsafeReadableBytes { try pwriteAll($0, at: offset) }
    }

    /// Writes the iovecs in order starting at `offset` (pwritev), finishing short writes.
    func pwritevAll(_ iovecs: inout [iovec], at offset: Int) throws {
        var position = offset
        var first = 0
        if let fault = IOFaults.fault("pwritev", path) {
            // An injected failure after `fault.after` bytes (a torn write).
            var left = fault.after
            for v in iovecs where left > 0 {
                let n = min(left, v.iov_len)
                _ = pwrite(fd, v.iov_base, n, off_t(position))
                position += n
                left -= n
            }
            throw StorageError.io(op: "pwritev", path: path, errno: fault.errno)
        }
        while first < iovecs.count {
            let n = iovecs.withUnsafeMutableBufferPointer { p in
                pwritev(fd, p.baseAddress! + first, CInt(min(p.count - first, 1024)), off_t(position))
            }
            if n < 0 {
                if errno == EINTR { continue }
                throw StorageError.io(op: "pwritev", path: path, errno: errno)
            }
            position += n
            var left = n
            while left > 0, first < iovecs.count {
                if left >= iovecs[first].iov_len {
                    left -= iovecs[first].iov_len
                    first += 1
                } else {
                    iovecs[first].iov_base = iovecs[first].iov_base! + left
                    iovecs[first].iov_len -= left
                    left = 0
                }
            }
            while first < iovecs.count, iovecs[first].iov_len == 0 { first += 1 }
        }
    }

    /// Reads up to `length` bytes at `offset` into a new buffer (shorter at end of file).
    func pread(length: Int, at offset: Int, allocator: ByteBufferAllocator = ByteBufferAllocator()) throws -> ByteBuffer {
        var buffer = allocator.buffer(capacity: length)
        let n = try buffer.writeWithUnsafeMutableBytes(minimumWritableBytes: length) { p -> Int in
            var done = 0
            while done < length {
                let r = Glibc.pread(fd, p.baseAddress! + done, length - done, off_t(offset + done))
                if r < 0 {
                    if errno == EINTR { continue }
                    throw StorageError.io(op: "pread", path: path, errno: errno)
                }
                if r == 0 { break }
                done += r
            }
            return done
        }
        _ = n
        return buffer
    }

    /// Reads exactly `count` bytes at `offset` into `into`, or returns false at end of file.
    func preadExactly(_ into: UnsafeMutableRawBufferPointer, at offset: Int) throws -> Bool {
        var done = 0
        while done < into.count {
            let r = Glibc.pread(fd, into.baseAddress! + done, into.count - done, off_t(offset + done))
            if r < 0 {
                if errno == EINTR { continue }
                throw StorageError.io(op: "pread", path: path, errno: errno)
            }
            if r == 0 { return false }
            done += r
        }
        return true
    }

    func truncate(to size: Int) throws {
        try IOFaults.check("ftruncate", path)
        guard ftruncate(fd, off_t(size)) == 0 else { throw StorageError.io(op: "ftruncate", path: path, errno: errno) }
    }

    func sync() throws {
        try IOFaults.check("fdatasync", path)
        guard fdatasync(fd) == 0 else { throw StorageError.io(op: "fdatasync", path: path, errno: errno) }
    }
}

/// Small file-system helpers (no Foundation on these paths).
enum FS {
    static func exists(_ path: String) -> Bool { access(path, F_OK) == 0 }

    static func isDirectory(_ path: String) -> Bool {
        var st = stat()
        return stat(path, &st) == 0 && (st.st_mode & S_IFMT) == S_IFDIR
    }

    static func makeDirectory(_ path: String) throws {
        if mkdir(path, 0o755) != 0 && errno != EEXIST {
            throw StorageError.io(op: "mkdir", path: path, errno: errno)
        }
    }

    static func makeDirectories(_ path: String) throws {
        var current = path.hasPrefix("/") ? "" : "."
        for part in path.split(separator: "/") {
            current += "/" + part
            try makeDirectory(current)
        }
    }

    static func list(_ path: String) throws -> [String] {
        guard let dir = opendir(path) else { throw StorageError.io(op: "opendir", path: path, errno: errno) }
        defer { closedir(dir) }
        var names: [String] = []
        while let entry = readdir(dir) {
            let name = withUnsafeBytes(of: entry.pointee.d_name) { raw in
                String(decoding: raw.prefix { $0 != 0 }, as: UTF8.self)
            }
            if name != "." && name != ".." { names.append(name) }
        }
        return names.sorted()
    }

    static func remove(_ path: String) throws {
        if unlink(path) != 0 && errno != ENOENT { throw StorageError.io(op: "unlink", path: path, errno: errno) }
    }

    static func removeTree(_ path: String) throws {
        if isDirectory(path) {
            for name in try list(path) { try removeTree(path + "/" + name) }
            if rmdir(path) != 0 && errno != ENOENT { throw StorageError.io(op: "rmdir", path: path, errno: errno) }
        } else {
            try remove(path)
        }
    }

    static func rename(_ from: String, _ to: String) throws {
        try IOFaults.check("rename", from)
        if Glibc.rename(from, to) != 0 { throw StorageError.io(op: "rename", path: from, errno: errno) }
    }

    static func syncDirectory(_ path: String) {
        let fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        if fd >= 0 { _ = fsync(fd); close(fd) }
    }

    static func readFile(_ path: String) throws -> ByteBuffer? {
        guard exists(path) else { return nil }
        let file = try FileDescriptorBox.open(path, create: false)
        return try file.pread(length: file.size(), at: 0)
    }

    /// Replaces `path` atomically: write a temporary file, fsync it, rename over, fsync the folder.
    /// On failure (a full disk, say) the temporary file is removed again: no stray `.tmp` files.
    static func writeAtomically(_ path: String, _ bytes: ByteBuffer, sync: Bool = true) throws {
        let tmp = path + ".tmp"
        try remove(tmp)
        do {
            let file = try FileDescriptorBox.open(tmp, create: true)
            try file.pwriteAll(bytes, at: 0)
            if sync { try file.sync() }
            try rename(tmp, path)
        } catch {
            _ = unlink(tmp)
            throw error
        }
        if sync, let slash = path.lastIndex(of: "/") { syncDirectory(String(path[..<slash])) }
    }

    /// Free bytes for unprivileged writers on the file system holding `path` (-1 when unknown).
    static func freeBytes(_ path: String) -> Int64 {
        var st = statvfs()
        guard statvfs(path, &st) == 0 else { return -1 }
        return Int64(st.f_bavail) * Int64(st.f_frsize)
    }

    static func writeAtomically(_ path: String, _ text: String, sync: Bool = true) throws {
        try writeAtomically(path, ByteBuffer(string: text), sync: sync)
    }
}

/// A seam for tests: injected failures of file operations, by path prefix. Off (one atomic load
/// per operation) unless a test installs a fault.
enum IOFaults {
    struct Fault: Sendable {
        /// The errno the operation fails with.
        var errno: Int32
        /// For writes: how many bytes reach the file before the failure (a torn write).
        var after: Int = 0
    }

    /// Decides, per operation ("open", "pwrite", "pwritev", "ftruncate", "fdatasync", "rename") and
    /// path, whether it fails.
    typealias Rule = @Sendable (_ op: String, _ path: String) -> Fault?

    private static let active = Atomic<Int>(0)
    private static let rules = Mutex<[String: Rule]>([:])

    /// Installs `rule` for paths under `prefix` (replacing an earlier one for the same prefix).
    static func install(under prefix: String, _ rule: @escaping Rule) {
        rules.withLock { $0[prefix] = rule; active.store($0.count, ordering: .releasing) }
    }

    static func remove(under prefix: String) {
        rules.withLock { $0.removeValue(forKey: prefix); active.store($0.count, ordering: .releasing) }
    }

    static func fault(_ op: String, _ path: String) -> Fault? {
        guard active.load(ordering: .acquiring) > 0 else { return nil }
        let matching = rules.withLock { $0.filter { path.hasPrefix($0.key) }.map(\.value) }
        for rule in matching { if let f = rule(op, path) { return f } }
        return nil
    }

    static func check(_ op: String, _ path: String) throws {
        if let f = fault(op, path) { throw StorageError.io(op: op, path: path, errno: f.errno) }
    }
}
