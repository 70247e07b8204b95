/// A ZooKeeper connect string: `host:port[,host:port...][/chroot]`, as Kafka's `zookeeper.connect`.
/// The port defaults to 2181; the chroot is a path every request is relative to.
public struct ZooKeeperConnectString: Sendable, Equatable, CustomStringConvertible {
    public struct Server: Sendable, Equatable, CustomStringConvertible {
        public var host: String
        public var port: Int
        public init(host: String, port: Int) {
            self.host = host
            self.port = port
        }
        public var description: String { host.contains(":") ? "[\(host)]:\(port)" : "\(host):\(port)" }
    }

    public var servers: [Server]
    /// "" for none, else a path like "/samsa" (no trailing slash).
    public var chroot: String

    public init(servers: [Server], chroot: String = "") {
        self.servers = servers
        self.chroot = chroot
    }

    public init(_ string: String) throws {
        var hosts = Substring(string.trimmingWhitespace())
        var chroot = ""
        if let slash = hosts.firstIndex(of: "/") {
            chroot = String(hosts[slash...])
            hosts = hosts[..<slash]
            while chroot.hasSuffix("/") { chroot.removeLast() }
            if chroot.contains("//") { throw ZooKeeperConnectStringError("bad chroot in \"\(string)\"") }
        }
        var servers: [Server] = []
        for part in hosts.split(separator: ",", omittingEmptySubsequences: true) {
            let entry = part.trimmingWhitespace()
            if entry.isEmpty { continue }
            var host = Substring(entry)
            var port = 2181
            if entry.hasPrefix("["), let close = entry.firstIndex(of: "]") {  // [ipv6]:port
                host = entry[entry.index(after: entry.startIndex)..<close]
                let rest = entry[entry.index(after: close)...]
                if rest.hasPrefix(":") {
                    guard let p = Int(rest.dropFirst()), (1...65535).contains(p) else {
                        throw ZooKeeperConnectStringError("bad port in \"\(entry)\"")
                    }
                    port = p
                }
            } else if let colon = entry.lastIndex(of: ":") {
                host = entry[..<colon]
                guard let p = Int(entry[entry.index(after: colon)...]), (1...65535).contains(p) else {
                    throw ZooKeeperConnectStringError("bad port in \"\(entry)\"")
                }
                port = p
            }
            guard !host.isEmpty else { throw ZooKeeperConnectStringError("empty host in \"\(string)\"") }
            servers.append(Server(host: String(host), port: port))
        }
        guard !servers.isEmpty else { throw ZooKeeperConnectStringError("no servers in \"\(string)\"") }
        self.servers = servers
        self.chroot = chroot
    }

    public var description: String {
        servers.map(\.description).joined(separator: ",") + chroot
    }
}

public struct ZooKeeperConnectStringError: Error, Sendable, Equatable, CustomStringConvertible {
    public var description: String
    init(_ d: String) { description = "invalid ZooKeeper connect string: " + d }
}

extension StringProtocol {
    func trimmingWhitespace() -> String {
        var s = Substring(self)
        while let f = s.first, f.isWhitespace { s.removeFirst() }
        while let l = s.last, l.isWhitespace { s.removeLast() }
        return String(s)
    }
}
