import Foundation
import NIOCore
import Testing
import ZooKeeperClient
import ZooKeeperTestSupport

/// The client against a real 3-node ZooKeeper 3.8 ensemble started by scripts/zookeeper.sh.
/// Serialized: each test starts its own ensemble (three JVMs) and the machine is small.
@Suite(.serialized) struct EnsembleTests {
    func connected(_ connect: String, timeout: TimeAmount = .seconds(6), requestTimeout: TimeAmount? = nil,
                   renew: Bool = false) async throws -> ZooKeeperClient {
        let zk = try ZooKeeperClient(connectString: connect, sessionTimeout: timeout, requestTimeout: requestTimeout, renewExpiredSession: renew)
        try await zk.connect(timeout: .seconds(20))
        return zk
    }

    @Test func everyOperation() async throws {
        let ensemble = try Ensemble(nodes: 3)
        defer { ensemble.shutdown() }
        let zk = try await connected(ensemble.connectString)
        let other = try await connected(ensemble.connectString)

        // create: persistent, ephemeral, sequential, container
        #expect(try await zk.create("/app", data: Array("v0".utf8)) == "/app")
        #expect(try await zk.create("/app/eph", data: [1], mode: .ephemeral) == "/app/eph")
        let seq1 = try await zk.create("/app/seq-", mode: .persistentSequential)
        let seq2 = try await zk.create("/app/seq-", mode: .ephemeralSequential)
        #expect(seq1 == "/app/seq-0000000001" && seq2 == "/app/seq-0000000002")
        try await zk.create("/box", mode: .container)
        await #expect(throws: ZooKeeperError(.nodeExists, path: "/app")) { try await zk.create("/app") }
        await #expect(throws: ZooKeeperError(.noNode, path: "/nothere/x")) { try await zk.create("/nothere/x") }

        // exists, getData, setData with versions
        let eph = try #require(try await other.exists("/app/eph"))
        #expect(eph.ephemeralOwner == (await zk.sessionId) && eph.dataLength == 1)
        #expect(try await zk.exists("/missing") == nil)
        let (data, stat) = try await zk.getData("/app")
        #expect(data == Array("v0".utf8) && stat.version == 0 && stat.numChildren == 3)
        #expect(try await zk.setData("/app", data: Array("v1".utf8), version: 0).version == 1)
        await #expect(throws: ZooKeeperError(.badVersion, path: "/app")) { try await zk.setData("/app", data: [], version: 0) }
        await #expect(throws: ZooKeeperError(.noNode, path: "/missing")) { try await zk.getData("/missing") }

        // getChildren2, sync
        let (children, cstat) = try await other.getChildren("/app")
        #expect(children.sorted() == ["eph", "seq-0000000001", "seq-0000000002"] && cstat.numChildren == 3)
        try await other.sync("/app")
        #expect(try await other.getData("/app").data == Array("v1".utf8))

        // delete with version; not empty
        await #expect(throws: ZooKeeperError(.notEmpty, path: "/app")) { try await zk.delete("/app") }
        await #expect(throws: ZooKeeperError(.badVersion, path: "/app/seq-0000000001")) { try await zk.delete("/app/seq-0000000001", version: 4) }
        try await zk.delete("/app/seq-0000000001", version: 0)
        await #expect(throws: ZooKeeperError(.noNode, path: "/app/seq-0000000001")) { try await zk.delete("/app/seq-0000000001") }

        // multi: all or nothing
        await #expect(throws: ZooKeeperError(.badVersion, path: "/app")) {
            try await zk.multi([.create("/m1", data: [1]), .setData("/app", data: [9], version: 1), .check("/app", version: 0)])
        }
        #expect(try await other.exists("/m1") == nil)
        #expect(try await other.getData("/app").data == Array("v1".utf8))
        let results = try await zk.multi([.create("/m1", data: [1]), .check("/app", version: 1), .setData("/app", data: [9], version: 1),
                                          .create("/m1/s-", data: [], mode: .persistentSequential), .delete("/app/eph")])
        #expect(results.count == 5 && results[0] == .created(path: "/m1") && results[1] == .checked && results[4] == .deleted)
        #expect(results[3] == .created(path: "/m1/s-0000000000"))
        #expect(try await other.getData("/app").data == [9])
        #expect(try await other.exists("/app/eph") == nil)

        // chroot: a client under /m1 sees /m1/... as /...
        let rooted = try await connected(ensemble.connectString + "/m1")
        #expect(try await rooted.getChildren("/").children == ["s-0000000000"])
        #expect(try await rooted.create("/r", data: [7]) == "/r")
        #expect(try await zk.getData("/m1/r").data == [7])

        // a container goes once its last child is gone
        try await zk.create("/box/c")
        try await zk.delete("/box/c")
        // (scripts/zookeeper.sh runs the container check every 500 ms; ZooKeeper's default is 60 s)
        #expect(await eventually { (try? await zk.exists("/box")) == nil })

        // ephemeral nodes go with the session
        #expect(try await other.exists("/app/seq-0000000002") != nil)
        await zk.close()
        #expect(try await other.exists("/app/seq-0000000002") == nil)
        await #expect(throws: ZooKeeperError(.closed, path: "/app")) { try await zk.getData("/app") }
        await rooted.close()
        await other.close()
    }

    @Test func watchesFireOncePerChange() async throws {
        let ensemble = try Ensemble(nodes: 3)
        defer { ensemble.shutdown() }
        let zk = try await connected(ensemble.connectString)
        let writer = try await connected(ensemble.connectString)
        try await writer.create("/w", data: [0])

        let data = WatchLog(), exist = WatchLog(), child = WatchLog()
        _ = try await zk.getData("/w", watch: data.watcher)
        #expect(try await zk.exists("/later", watch: exist.watcher) == nil)
        _ = try await zk.getChildren("/w", watch: child.watcher)

        try await writer.setData("/w", data: [1])
        try await writer.setData("/w", data: [2])  // the watch already fired: not again
        try await writer.create("/later")
        try await writer.create("/w/a")
        try await writer.create("/w/b")
        try await writer.sync("/")
        try await zk.sync("/")  // notifications come before the sync reply
        #expect(await eventually { data.all.count == 1 && exist.all.count == 1 && child.all.count == 1 })
        try await Task.sleep(for: .milliseconds(300))
        #expect(data.all == [ZooKeeperWatchedEvent(type: .nodeDataChanged, state: .connected, path: "/w")])
        #expect(exist.all == [ZooKeeperWatchedEvent(type: .nodeCreated, state: .connected, path: "/later")])
        #expect(child.all == [ZooKeeperWatchedEvent(type: .nodeChildrenChanged, state: .connected, path: "/w")])

        // A delete reaches the data and the child watch of the node, each once.
        let dataAgain = WatchLog(), childAgain = WatchLog()
        _ = try await zk.getData("/w/a", watch: dataAgain.watcher)
        _ = try await zk.getChildren("/w/a", watch: childAgain.watcher)
        try await writer.delete("/w/a")
        #expect(await eventually { dataAgain.all.count == 1 && childAgain.all.count == 1 })
        try await Task.sleep(for: .milliseconds(300))
        #expect(dataAgain.all == [ZooKeeperWatchedEvent(type: .nodeDeleted, state: .connected, path: "/w/a")])
        #expect(childAgain.all == [ZooKeeperWatchedEvent(type: .nodeDeleted, state: .connected, path: "/w/a")])
        await zk.close()
        await writer.close()
    }

    @Test func survivesTheStopOfItsServer() async throws {
        let ensemble = try Ensemble(nodes: 3)
        defer { ensemble.shutdown() }
        let zk = try await connected(ensemble.connectString, timeout: .seconds(6))
        let states = StateRecorder(zk)
        let session = await zk.sessionId
        try await zk.create("/eph", data: [1], mode: .ephemeral)
        let first = try #require(await zk.currentServer)
        let node = try #require(ensemble.node(port: first.port))
        try ensemble.stop(node: node)
        #expect(await eventually { states.count(.disconnected) >= 1 && states.last == .connected })
        let second = try #require(await zk.currentServer)
        #expect(second.port != first.port)
        #expect(await zk.sessionId == session)
        #expect(try await zk.exists("/eph")?.ephemeralOwner == session)
        // The node comes back; the session is still the same everywhere.
        try ensemble.start(node: node)
        let observer = try await connected(ensemble.connectString)
        #expect(try await observer.exists("/eph")?.ephemeralOwner == session)
        await observer.close()
        await zk.close()
    }

    @Test func watchesAreReArmedAfterAReconnect() async throws {
        let ensemble = try Ensemble(nodes: 1)
        defer { ensemble.shutdown() }
        let proxy = try PartitionProxy(target: ensemble.ports[0])
        defer { proxy.shutdown() }
        let zk = try await connected("127.0.0.1:\(proxy.port)", timeout: .seconds(8))
        let writer = try await connected(ensemble.connectString)
        let states = StateRecorder(zk)
        try await writer.create("/w", data: [0])
        let log = WatchLog(), created = WatchLog()
        _ = try await zk.getData("/w", watch: log.watcher)
        #expect(try await zk.exists("/born", watch: created.watcher) == nil)
        let session = await zk.sessionId

        try proxy.cut()
        #expect(await eventually { states.last == .disconnected })
        // Changes while the client cannot hear them.
        try await writer.setData("/w", data: [1])
        try await writer.create("/born")
        // A request waits for the connection, or fails as a connection problem, never as no-node.
        try await Task.sleep(for: .milliseconds(500))
        #expect(log.all.isEmpty && created.all.isEmpty)
        try proxy.restore()
        #expect(await eventually { states.last == .connected })
        #expect(await zk.sessionId == session)
        #expect(await eventually { log.all.count == 1 && created.all.count == 1 })
        #expect(log.all == [ZooKeeperWatchedEvent(type: .nodeDataChanged, state: .connected, path: "/w")])
        #expect(created.all == [ZooKeeperWatchedEvent(type: .nodeCreated, state: .connected, path: "/born")])
        await zk.close()
        await writer.close()
    }

    @Test func quorumLostAndRegained() async throws {
        let ensemble = try Ensemble(nodes: 3)
        defer { ensemble.shutdown() }
        let zk = try await connected(ensemble.connectString, timeout: .seconds(10), requestTimeout: .seconds(1))
        let states = StateRecorder(zk)
        let session = await zk.sessionId
        try await zk.create("/eph", mode: .ephemeral)
        let current = try #require(await zk.currentServer)
        let keep = try #require(ensemble.node(port: current.port))
        let others = [1, 2, 3].filter { $0 != keep }
        for n in others { try ensemble.stop(node: n) }
        // The remaining server stops serving: the client is disconnected, and requests fail as
        // connection problems (not as "no node").
        #expect(await eventually { states.last != .connected })
        do {
            _ = try await zk.getData("/missing")
            Issue.record("getData answered without a quorum")
        } catch let e as ZooKeeperError {
            #expect(e.code == .connectionLoss || e.code == .requestTimeout)
        }
        for n in others { try ensemble.start(node: n) }
        #expect(await eventually(.seconds(30)) { states.last == .connected })
        #expect(await zk.sessionId == session)
        #expect(try await zk.exists("/eph")?.ephemeralOwner == session)
        #expect(!states.all.contains(.expired))
        await zk.close()
    }

    @Test func sessionLeftDisconnectedPastItsTimeoutIsReportedExpired() async throws {
        let ensemble = try Ensemble(nodes: 1)
        defer { ensemble.shutdown() }
        let proxy = try PartitionProxy(target: ensemble.ports[0])
        defer { proxy.shutdown() }
        let plain = try await connected("127.0.0.1:\(proxy.port)", timeout: .seconds(2))
        let renewing = try await connected("127.0.0.1:\(proxy.port)", timeout: .seconds(2), renew: true)
        let observer = try await connected(ensemble.connectString)
        let plainStates = StateRecorder(plain), renewingStates = StateRecorder(renewing)
        let oldSession = await renewing.sessionId
        try await plain.create("/a", mode: .ephemeral)
        try await renewing.create("/b", mode: .ephemeral)
        let watch = WatchLog()
        _ = try await plain.getData("/a", watch: watch.watcher)

        try proxy.cut()
        // The server expires both sessions after 2 s; their ephemeral nodes go.
        #expect(await eventually {
            let a = try? await observer.exists("/a")
            let b = try? await observer.exists("/b")
            return a == nil && b == nil
        })
        try proxy.restore()
        #expect(await eventually { plainStates.last == .expired && renewingStates.last == .connected })
        #expect(renewingStates.all.contains(.expired))
        #expect(watch.all == [ZooKeeperWatchedEvent(type: .none, state: .expired, path: "/a")])
        await #expect(throws: ZooKeeperError(.sessionExpired, path: "/a")) { try await plain.create("/a", mode: .ephemeral) }
        // The renewing client has a new session and can register again.
        #expect(await renewing.sessionId != oldSession)
        try await renewing.create("/b", mode: .ephemeral)
        #expect(try await observer.exists("/b")?.ephemeralOwner == (await renewing.sessionId))
        await plain.close()
        await renewing.close()
        await observer.close()
    }

    @Test func unreachableEnsembleFailsToConnectInTime() async throws {
        let zk = try ZooKeeperClient(connectString: "127.0.0.1:1,127.0.0.1:2", sessionTimeout: .seconds(2))
        let start = ContinuousClock.now
        await #expect(throws: ZooKeeperConnectError.self) { try await zk.connect(timeout: .milliseconds(700)) }
        #expect(ContinuousClock.now - start < .seconds(3))
        await #expect(throws: ZooKeeperError.self) { try await zk.exists("/") }
        await zk.close()
    }
}
