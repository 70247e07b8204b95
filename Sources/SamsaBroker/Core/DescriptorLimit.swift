#if canImport(Glibc)
import Glibc
#endif

/// The process's open-file limit, checked at start-up against what the data on disk needs.
enum DescriptorLimit {
    /// Descriptors kept for connections, index writes, checkpoints and the listener beyond the
    /// one descriptor each segment holds open.
    static let headroom = 1024

    /// Raises the soft limit to the hard limit; returns the limit now in force.
    @discardableResult
    static func raiseToHard() -> Int {
        var limit = rlimit()
        guard getrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit) == 0 else { return 1024 }
        if limit.rlim_cur < limit.rlim_max {
            var raised = limit
            raised.rlim_cur = limit.rlim_max
            if setrlimit(Int32(RLIMIT_NOFILE.rawValue), &raised) == 0 { limit = raised }
        }
        return limit.rlim_cur >= rlim_t(Int.max) ? Int.max : Int(limit.rlim_cur)
    }

    /// Counts the segment files (`*.log`) in the partition folders of `logDir`: each stays open.
    static func segmentFiles(in logDir: String) -> (segments: Int, partitions: Int) {
        var segments = 0, partitions = 0
        guard let dir = opendir(logDir) else { return (0, 0) }
        defer { closedir(dir) }
        while let entry = readdir(dir) {
            let name = withUnsafeBytes(of: entry.pointee.d_name) { String(decoding: $0.prefix(while: { $0 != 0 }), as: UTF8.self) }
            guard !name.hasPrefix("."), name.contains("-"), !name.hasSuffix("-delete") else { continue }
            guard let sub = opendir(logDir + "/" + name) else { continue }
            partitions += 1
            while let e = readdir(sub) {
                let file = withUnsafeBytes(of: e.pointee.d_name) { String(decoding: $0.prefix(while: { $0 != 0 }), as: UTF8.self) }
                if file.hasSuffix(".log") { segments += 1 }
            }
            closedir(sub)
        }
        return (segments, partitions)
    }

    /// Raises the limit and checks it against the segments on disk: a clear, one-line error when
    /// they cannot all be opened, instead of a failure on whichever file comes last.
    static func check(logDir: String) throws -> (limit: Int, segments: Int) {
        let limit = raiseToHard()
        let (segments, partitions) = segmentFiles(in: logDir)
        let needed = segments + headroom
        if needed > limit {
            throw ConfigError("the \(segments) segments of the \(partitions) partitions in \(logDir) need about \(needed) open files, but the limit is \(limit); raise it (for example `ulimit -n \(max(needed * 2, 65536))` in the shell that starts samsa, or LimitNOFILE=\(max(needed * 2, 65536)) in a systemd unit) and start again")
        }
        return (limit, segments)
    }
}
