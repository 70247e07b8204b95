import KafkaProtocol
import KafkaWire
import Logging
import NIOCore
import SamsaController
import SamsaMetadata
import Synchronization

/// Runs the controller role on this broker (Kafka's KafkaController + ControllerEventManager):
/// every broker competes for the ephemeral `/controller` node; the winner bumps
/// `/controller_epoch`, loads the cluster from ZooKeeper into the sans-IO `Controller` and from then
/// on turns ZooKeeper watches and controller-bound requests into events on one serial queue. Each
/// event's actions are carried out in order: versioned ZooKeeper writes first (a failed one means
/// another controller took over: resign), then LeaderAndIsr / UpdateMetadata / StopReplica to the
/// brokers, each broker's requests in order on its own connection.
public final class ControllerDriver: Sendable {
    enum Event: Sendable {
        case elect
        case brokersChanged
        case topicsChanged
        case deletionsChanged
        case topicChanged(String)
        case request(ControllerEvent, @Sendable (ControllerOutput.Reply?) -> Void)
    }

    private struct Active: Sendable {
        var controller: Controller
        var registrations: [Int32: BrokerRegistration]
        var topicIds: [String: KafkaUUID]
        var watches: [String: Task<Void, Never>] = [:]
    }

    let brokerId: Int32
    let store: ZooKeeperCoordinationStore
    let metadata: ClusterMetadataStore
    let group: any EventLoopGroup
    let logger: Logger
    let controllerConfig: ControllerConfig
    let rebalanceIntervalMs: Int64
    private let continuation: AsyncStream<Event>.Continuation
    private let events: AsyncStream<Event>
    private let state = Mutex<Active?>(nil)
    private let tasks = Mutex<[Task<Void, Never>]>([])
    private let senders: ControllerChannelManager
    /// The epoch of the controller this broker is (nil: not the controller).
    public var activeEpoch: Int32? { state.withLock { $0?.controller.epoch } }

    init(brokerId: Int32, store: ZooKeeperCoordinationStore, group: any EventLoopGroup, config: BrokerConfig, logger: Logger) {
        self.brokerId = brokerId
        self.store = store
        self.metadata = ClusterMetadataStore(store: store)
        self.group = group
        self.logger = logger
        var c = ControllerConfig()
        c.uncleanLeaderElectionEnable = config.bool("unclean.leader.election.enable")
        c.autoLeaderRebalanceEnable = config.string("auto.leader.rebalance.enable") != "false"
        c.leaderImbalancePerBrokerPercentage = config.int("leader.imbalance.per.broker.percentage") ?? 10
        self.controllerConfig = c
        self.rebalanceIntervalMs = (config.int64("leader.imbalance.check.interval.seconds") ?? 300) * 1000
        let (events, continuation) = AsyncStream.makeStream(of: Event.self)
        self.events = events
        self.continuation = continuation
        senders = ControllerChannelManager(brokerId: brokerId, group: group, logger: logger) { broker, topic, partition, error in
            continuation.yield(.request(.replicaDeletionCompleted(broker: broker, topic: topic, partition: partition, error: error), { _ in }))
        }
    }

    func start() {
        let loop = Task { [self] in
            for await event in events {
                await process(event)
            }
        }
        let controllerWatch = Task { [self] in
            for await _ in store.changes(of: ClusterMetadataStore.controllerPath, armed: { [continuation] in continuation.yield(.elect) }) {
                continuation.yield(.elect)
            }
        }
        let brokersWatch = Task { [self] in
            for await _ in store.childChanges(of: "/brokers/ids") { continuation.yield(.brokersChanged) }
        }
        let topicsWatch = Task { [self] in
            for await _ in store.childChanges(of: "/brokers/topics") { continuation.yield(.topicsChanged) }
        }
        let deletionsWatch = Task { [self] in
            for await _ in store.childChanges(of: ClusterMetadataStore.deleteTopicsPath) { continuation.yield(.deletionsChanged) }
        }
        let rebalance = Task { [self] in
            while !Task.isCancelled {
                try? await Task.sleep(for: .milliseconds(rebalanceIntervalMs))
                if Task.isCancelled { return }
                continuation.yield(.request(.preferredLeaderImbalanceCheck, { _ in }))
            }
        }
        tasks.withLock { $0 = [loop, controllerWatch, brokersWatch, topicsWatch, deletionsWatch, rebalance] }
    }

    /// Stops the role; a controller gives up `/controller` at once, so another broker takes over
    /// without waiting for this one's session to end.
    func stop() async {
        continuation.finish()
        for t in tasks.withLock({ $0 }) { t.cancel() }
        let wasActive = state.withLock { $0 != nil }
        // Requests already decided (a controlled shutdown's LeaderAndIsr) still go out.
        await senders.drain(timeoutMs: 3000)
        resign(reason: nil)
        senders.shutdown()
        if wasActive, (try? await metadata.controllerId()) == brokerId {
            try? await store.delete(ClusterMetadataStore.controllerPath, recursive: false)
            logger.info("gave up the controller role")
        }
    }

    /// Runs a controller-bound request (AlterPartition, ControlledShutdown, ElectLeaders) on the queue.
    func submit(_ event: ControllerEvent) async -> ControllerOutput.Reply? {
        await withCheckedContinuation { (c: CheckedContinuation<ControllerOutput.Reply?, Never>) in
            let result = continuation.yield(.request(event, { c.resume(returning: $0) }))
            if case .terminated = result {
                // Stopped: the event will never run.
                c.resume(returning: .error(.notController, message: "This broker is no longer the controller."))
            }
        }
    }

    // MARK: Events

    private func process(_ event: Event) async {
        do {
            switch event {
            case .elect:
                try await elect()
            case .brokersChanged:
                try await brokersChanged()
            case .topicsChanged:
                try await topicsChanged()
            case .deletionsChanged:
                try await deletionsChanged()
            case .topicChanged(let name):
                try await topicChanged(name)
            case .request(let e, let reply):
                guard state.withLock({ $0 != nil }) else {
                    reply(.error(.notController, message: "This broker is not the controller."))
                    return
                }
                let output = state.withLock { s -> ControllerOutput in s!.controller.handle(e) }
                await execute(output.actions)
                reply(output.reply)
            }
        } catch {
            logger.warning("controller event \(event) failed: \(error)")
            if state.withLock({ $0 != nil }) {
                // ZooKeeper trouble: give up the role; the next election starts clean.
                resign(reason: "\(error)")
                try? await store.delete(ClusterMetadataStore.controllerPath, recursive: false)
            }
        }
    }

    private func elect() async throws {
        let current = try await metadata.controllerId()
        let active = state.withLock { $0 != nil }
        if let current {
            if current != brokerId, active { resign(reason: "broker \(current) is the controller now") }
            if current == brokerId, !active {
                // Our own node from before (e.g. a failed start): remove it and compete again.
                try? await store.delete(ClusterMetadataStore.controllerPath, recursive: false)
            }
            return
        }
        if active { resign(reason: "/controller was removed") }
        do {
            try await store.create(ClusterMetadataStore.controllerPath, data: try ClusterMetadataStore.controllerJSON(brokerId: brokerId), ephemeral: true)
        } catch CoordinationError.nodeExists {
            return
        }
        try await becomeController()
    }

    private func becomeController() async throws {
        let epoch = try await metadata.incrementControllerEpoch()
        let registered = try await metadata.brokersWithEpochs()
        var loaded: [LoadedTopic] = []
        var ids: [String: KafkaUUID] = [:]
        var reassignments: [TopicPartitionKey: PartitionReassignment] = [:]
        for name in try await metadata.topicNames() {
            guard let (record, versions, reassigning) = try await metadata.topicWithReassignments(name) else { continue }
            ids[name] = record.topicId
            for (p, r) in reassigning where Int(p) < record.partitions.count {
                reassignments[TopicPartitionKey(name, p)] = PartitionReassignment(replicas: record.partitions[Int(p)].replicas, adding: r.adding, removing: r.removing)
            }
            loaded.append(LoadedTopic(name: name, configs: record.configs, partitions: Array(zip(record.partitions, versions)).map { ($0.0, $0.1) }))
        }
        var controller = Controller(controllerId: brokerId, epoch: epoch, config: controllerConfig,
                                    brokers: registered.map { LiveBroker(id: $0.broker.id, epoch: $0.epoch, rack: $0.broker.rack) }, topics: loaded)
        if !reassignments.isEmpty { controller.restoreReassignments(reassignments) }
        var active = Active(controller: controller, registrations: Dictionary(uniqueKeysWithValues: registered.map { ($0.broker.id, $0.broker) }), topicIds: ids)
        for name in ids.keys { active.watches[name] = watchTopic(name) }
        let registrations = active.registrations
        state.withLock { $0 = active }
        senders.update(registrations)
        logger.notice("this broker is the controller", metadata: ["epoch": "\(epoch)", "brokers": "\(registered.map(\.broker.id))", "topics": "\(ids.count)"])
        let actions = state.withLock { $0!.controller.handle(.startup).actions }
        await execute(actions)
        try await deletionsChanged()
        try await topicsChanged()
    }

    private func resign(reason: String?) {
        let old = state.withLock { s -> Active? in
            defer { s = nil }
            return s
        }
        guard let old else { return }
        for w in old.watches.values { w.cancel() }
        senders.update([:])
        if let reason { logger.notice("no longer the controller: \(reason)") }
    }

    private func watchTopic(_ name: String) -> Task<Void, Never> {
        Task { [self] in
            for await change in store.changes(of: "/brokers/topics/\(name)") where change.kind == .dataChanged {
                continuation.yield(.topicChanged(name))
            }
        }
    }

    private func brokersChanged() async throws {
        guard state.withLock({ $0 != nil }) else { return }
        let current = try await metadata.brokersWithEpochs()
        let known = state.withLock { $0!.controller.brokers }
        var outputs: [ControllerAction] = []
        state.withLock { s in
            for (id, _) in known where !current.contains(where: { $0.broker.id == id }) {
                logger.notice("broker \(id) is gone")
                outputs += s!.controller.handle(.brokerGone(id)).actions
            }
            for (b, epoch) in current where known[b.id]?.epoch != epoch {
                logger.notice("broker \(b.id) registered", metadata: ["address": "\(b.host):\(b.port)"])
                s!.registrations[b.id] = b
                outputs += s!.controller.handle(.brokerRegistered(LiveBroker(id: b.id, epoch: epoch, rack: b.rack))).actions
            }
            for (id, _) in known where !current.contains(where: { $0.broker.id == id }) { s!.registrations[id] = nil }
        }
        senders.update(state.withLock { $0?.registrations ?? [:] })
        await execute(outputs)
    }

    private func topicsChanged() async throws {
        guard state.withLock({ $0 != nil }) else { return }
        let names = try await metadata.topicNames()
        let known = Set(state.withLock { $0!.controller.topicNames })
        for name in names where !known.contains(name) {
            guard let (record, _) = try await metadata.topicWithVersions(name) else { continue }
            let assignment = record.replicas
            let output = state.withLock { s -> ControllerOutput in
                s!.topicIds[name] = record.topicId
                return s!.controller.handle(.createTopic(name: name, partitions: assignment.count, replicationFactor: assignment.first?.count ?? 1,
                                                         configs: record.configs, assignment: assignment))
            }
            if case let .error(code, message)? = output.reply, code != .none {
                logger.error("cannot bring topic \(name) online: \(code) \(message ?? "")")
                continue
            }
            state.withLock { $0!.watches[name] = watchTopic(name) }
            await execute(output.actions)
        }
    }

    private func topicChanged(_ name: String) async throws {
        guard state.withLock({ $0 != nil }) else { return }
        guard let (record, _) = try await metadata.topicWithVersions(name) else { return }
        let current = state.withLock { s -> Int in (0..<Int32.max).prefix { s!.controller.leadership(name, $0) != nil }.count }
        guard record.partitions.count > current else { return }
        let added = Array(record.replicas[current...])
        let output = state.withLock { $0!.controller.handle(.createPartitions(topic: name, newTotal: record.partitions.count, assignment: added)) }
        if case let .error(code, message)? = output.reply, code != .none {
            logger.error("cannot add partitions to \(name): \(code) \(message ?? "")")
            return
        }
        await execute(output.actions)
    }

    private func deletionsChanged() async throws {
        guard state.withLock({ $0 != nil }) else { return }
        for name in try await metadata.topicsMarkedForDeletion() {
            let (known, deleting) = state.withLock { s in (s!.controller.topicNames.contains(name), s!.controller.isDeleting(name)) }
            if !known {
                try await metadata.removeDeletedTopic(name)
                continue
            }
            if deleting { continue }
            logger.info("deleting topic \(name)")
            let output = state.withLock { $0!.controller.handle(.deleteTopic(name)) }
            await execute(output.actions)
        }
    }

    // MARK: Actions

    private func execute(_ actions: [ControllerAction]) async {
        for action in actions {
            switch action {
            case let .writePartitionState(topic, leadership, expectedVersion):
                do {
                    try await metadata.writePartitionState(topic, leadership, expectedVersion: expectedVersion)
                } catch CoordinationError.badVersion, CoordinationError.nodeExists {
                    logger.warning("the state of \(topic)-\(leadership.partition) was changed by another controller")
                    state.withLock { _ = $0?.controller.handle(.controllerMoved) }
                    resign(reason: "a conditional write was fenced")
                    return
                } catch {
                    logger.error("cannot write the state of \(topic)-\(leadership.partition): \(error)")
                    resign(reason: "\(error)")
                    try? await store.delete(ClusterMetadataStore.controllerPath, recursive: false)
                    return
                }
            case let .writeAssignment(topic, replicas):
                do { try await metadata.setAssignment(topic, replicas: replicas) } catch {
                    logger.error("cannot write the assignment of \(topic): \(error)")
                }
            case let .writeReassignment(topic, replicas, adding, removing):
                // Kafka's adding_replicas / removing_replicas: a new controller resumes the move.
                do { try await metadata.setAssignment(topic, replicas: replicas, adding: adding, removing: removing) } catch {
                    logger.error("cannot write the assignment of \(topic): \(error)")
                }
            case let .deleteTopicNodes(topic):
                do { try await metadata.removeDeletedTopic(topic) } catch {
                    logger.error("cannot remove the nodes of deleted topic \(topic): \(error)")
                }
                state.withLock { s in
                    s?.watches.removeValue(forKey: topic)?.cancel()
                    s?.topicIds[topic] = nil
                }
                logger.info("topic \(topic) deleted")
            case let .send(broker, request):
                guard let (ids, registrations) = state.withLock({ s in s.map { ($0.topicIds, $0.registrations) } }) else { return }
                senders.send(to: broker, ControllerMessages.encode(request, topicIds: ids, registrations: registrations))
            }
        }
    }
}

/// Controller → broker requests in their generated wire form.
enum ControllerMessages {
    enum Outgoing: Sendable {
        case leaderAndIsr(LeaderAndIsrRequest)
        case updateMetadata(UpdateMetadataRequest)
        case stopReplica(StopReplicaRequest)
    }

    static func encode(_ request: BrokerRequest, topicIds: [String: KafkaUUID], registrations: [Int32: BrokerRegistration]) -> Outgoing {
        switch request {
        case .leaderAndIsr(let c):
            let byTopic = Dictionary(grouping: c.partitions, by: \.topic)
            return .leaderAndIsr(LeaderAndIsrRequest(
                controllerId: c.controllerId, controllerEpoch: c.controllerEpoch, brokerEpoch: c.brokerEpoch, type: 0,
                topicStates: byTopic.keys.sorted().map { t in
                    .init(topicName: t, topicId: topicIds[t] ?? .zero, partitionStates: byTopic[t]!.map { p in
                        .init(partitionIndex: p.partition, controllerEpoch: p.controllerEpoch, leader: p.leader, leaderEpoch: p.leaderEpoch,
                              isr: p.isr, partitionEpoch: p.partitionEpoch, replicas: p.replicas, isNew: p.isNew)
                    })
                },
                liveLeaders: c.liveLeaders.compactMap { id in registrations[id].map { .init(brokerId: id, hostName: $0.host, port: $0.port) } }))
        case .updateMetadata(let c):
            let byTopic = Dictionary(grouping: c.partitions, by: \.topic)
            return .updateMetadata(UpdateMetadataRequest(
                controllerId: c.controllerId, controllerEpoch: c.controllerEpoch, brokerEpoch: c.brokerEpoch,
                topicStates: byTopic.keys.sorted().map { t in
                    .init(topicName: t, topicId: topicIds[t] ?? .zero, partitionStates: byTopic[t]!.map { p in
                        .init(topicName: t, partitionIndex: p.partition, controllerEpoch: p.controllerEpoch, leader: p.leader, leaderEpoch: p.leaderEpoch,
                              isr: p.isr, zkVersion: p.partitionEpoch, replicas: p.replicas, offlineReplicas: p.offlineReplicas)
                    })
                },
                liveBrokers: c.liveBrokers.compactMap { b in
                    registrations[b.id].map { r in
                        .init(id: b.id, endpoints: [.init(port: r.port, host: r.host, listener: "PLAINTEXT", securityProtocol: 0)], rack: r.rack)
                    }
                }))
        case .stopReplica(let c):
            let byTopic = Dictionary(grouping: c.partitions, by: \.topic)
            return .stopReplica(StopReplicaRequest(
                controllerId: c.controllerId, controllerEpoch: c.controllerEpoch, brokerEpoch: c.brokerEpoch,
                topicStates: byTopic.keys.sorted().map { t in
                    .init(topicName: t, partitionStates: byTopic[t]!.map { .init(partitionIndex: $0.partition, leaderEpoch: $0.leaderEpoch, deletePartition: $0.deletePartition) })
                }))
        }
    }
}

/// One ordered request queue per broker (Kafka's ControllerChannelManager / RequestSendThread):
/// requests to a broker go out one at a time, retried until sent or the broker is gone.
final class ControllerChannelManager: Sendable {
    private final class Sender: Sendable {
        let continuation: AsyncStream<ControllerMessages.Outgoing>.Continuation
        let task: Task<Void, Never>
        init(continuation: AsyncStream<ControllerMessages.Outgoing>.Continuation, task: Task<Void, Never>) {
            self.continuation = continuation
            self.task = task
        }
    }

    let brokerId: Int32
    let group: any EventLoopGroup
    let logger: Logger
    private let senders = Mutex<[Int32: (registration: BrokerRegistration, sender: Sender)]>([:])
    let onStopReplicaResult: @Sendable (Int32, String, Int32, KafkaErrorCode) -> Void

    init(brokerId: Int32, group: any EventLoopGroup, logger: Logger, onStopReplicaResult: @escaping @Sendable (Int32, String, Int32, KafkaErrorCode) -> Void) {
        self.brokerId = brokerId
        self.group = group
        self.logger = logger
        self.onStopReplicaResult = onStopReplicaResult
    }

    /// The brokers to talk to: new ones get a queue, gone (or moved) ones lose theirs.
    func update(_ registrations: [Int32: BrokerRegistration]) {
        let stopped = senders.withLock { all -> [Sender] in
            var stopped: [Sender] = []
            for (id, entry) in all where registrations[id] != entry.registration {
                stopped.append(entry.sender)
                all[id] = nil
            }
            for (id, r) in registrations where all[id] == nil {
                all[id] = (r, makeSender(id, r))
            }
            return stopped
        }
        for s in stopped {
            s.continuation.finish()
            s.task.cancel()
        }
    }

    func send(to broker: Int32, _ request: ControllerMessages.Outgoing) {
        guard let sender = senders.withLock({ $0[broker]?.sender }) else { return }
        sender.continuation.yield(request)
    }

    func shutdown() { update([:]) }

    /// Lets every queue send what it holds (up to `timeoutMs`); the queues then end.
    func drain(timeoutMs: Int64) async {
        let all = senders.withLock { s -> [Sender] in
            defer { s.removeAll() }
            return s.values.map(\.sender)
        }
        for s in all { s.continuation.finish() }
        let deadline = monotonicMillis() + timeoutMs
        for s in all {
            let remaining = deadline - monotonicMillis()
            if remaining <= 0 { s.task.cancel(); continue }
            let timer = Task {
                try? await Task.sleep(for: .milliseconds(remaining))
                s.task.cancel()
            }
            await s.task.value
            timer.cancel()
        }
    }

    private func makeSender(_ id: Int32, _ r: BrokerRegistration) -> Sender {
        let (stream, continuation) = AsyncStream.makeStream(of: ControllerMessages.Outgoing.self)
        let onStop = onStopReplicaResult
        let task = Task { [group, logger, brokerId] in
            var channel: InterBrokerChannel?
            defer { channel?.close() }
            for await request in stream {
                while !Task.isCancelled {
                    do {
                        if channel == nil || !(channel!.isActive) {
                            channel = try await InterBrokerChannel.connect(host: r.host, port: Int(r.port), clientId: "samsa-controller-\(brokerId)", group: group)
                        }
                        switch request {
                        case .leaderAndIsr(let req):
                            let resp = try await channel!.send(req, version: 6)
                            if resp.errorCode != 0 { logger.warning("LeaderAndIsr to broker \(id): error \(resp.errorCode)") }
                        case .updateMetadata(let req):
                            let resp = try await channel!.send(req, version: 7)
                            if resp.errorCode != 0 { logger.warning("UpdateMetadata to broker \(id): error \(resp.errorCode)") }
                        case .stopReplica(let req):
                            let resp = try await channel!.send(req, version: 3)
                            let top = KafkaErrorCode(rawValue: resp.errorCode)
                            for t in req.topicStates {
                                for p in t.partitionStates where p.deletePartition {
                                    let e = resp.partitionErrors.first { $0.topicName == t.topicName && $0.partitionIndex == p.partitionIndex }
                                    let code = top != .none ? top : (e.flatMap { KafkaErrorCode(rawValue: $0.errorCode) } ?? .none)
                                    onStop(id, t.topicName, p.partitionIndex, code)
                                }
                            }
                        }
                        break
                    } catch {
                        logger.debug("controller request to broker \(id) failed, retrying: \(error)")
                        channel?.close()
                        channel = nil
                        try? await Task.sleep(for: .milliseconds(200))
                    }
                }
            }
        }
        return Sender(continuation: continuation, task: task)
    }
}
