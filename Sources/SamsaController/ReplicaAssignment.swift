import KafkaProtocol

/// A broker as replica assignment sees it: its id and, when `broker.rack` is set, its rack.
public struct BrokerPlacement: Sendable, Equatable {
    public var id: Int32
    public var rack: String?
    public init(id: Int32, rack: String? = nil) {
        self.id = id
        self.rack = rack
    }
}

/// Why an assignment could not be made, with the Kafka error code the API reports.
public struct AssignmentError: Error, Sendable, Equatable {
    public var code: KafkaErrorCode
    public var message: String
    public init(_ code: KafkaErrorCode, _ message: String) {
        self.code = code
        self.message = message
    }
}

/// Replica assignment as Kafka's `AdminUtils.assignReplicasToBrokers` (ZooKeeper mode):
///
/// - rack-unaware: the first replica of partition p is broker `(p + startIndex) % n` of the brokers sorted
///   by id; the others follow at a shift `1 + (shift + j) % (n - 1)` from it, and the shift grows by one
///   every n partitions, so followers spread over the brokers too.
/// - rack-aware (every broker has a rack): the same walk over a broker list that alternates racks
///   (rack-a's first broker, rack-b's first, …, rack-a's second, …); a replica goes to a rack that has
///   none yet while one exists, and to a broker that has none yet while one exists.
///
/// `startIndex` and `replicaShift` are random in Kafka (and here when nil); tests fix them.
public enum ReplicaAssignment {
    public static func assign(
        partitions: Int,
        replicationFactor: Int,
        brokers: [BrokerPlacement],
        startIndex: Int? = nil,
        replicaShift: Int? = nil,
        startPartitionId: Int = 0
    ) throws(AssignmentError) -> [[Int32]] {
        if partitions <= 0 {
            throw AssignmentError(.invalidPartitions, "Number of partitions must be larger than 0.")
        }
        if replicationFactor <= 0 {
            throw AssignmentError(.invalidReplicationFactor, "Replication factor must be larger than 0.")
        }
        if replicationFactor > brokers.count {
            throw AssignmentError(.invalidReplicationFactor,
                                  "Replication factor: \(replicationFactor) larger than available brokers: \(brokers.count).")
        }
        if Set(brokers.map(\.id)).count != brokers.count {
            throw AssignmentError(.invalidRequest, "Duplicate broker ids in the broker list.")
        }
        if brokers.allSatisfy({ $0.rack == nil }) {
            let ids = brokers.map(\.id).sorted()
            return rackUnaware(partitions: partitions, replicationFactor: replicationFactor, brokers: ids,
                               startIndex: startIndex ?? Int.random(in: 0..<ids.count),
                               replicaShift: replicaShift ?? Int.random(in: 0..<ids.count),
                               startPartitionId: startPartitionId)
        }
        if brokers.contains(where: { $0.rack == nil }) {
            // Kafka: AdminOperationException "Not all brokers have rack information for replica rack aware assignment."
            throw AssignmentError(.invalidReplicaAssignment,
                                  "Not all brokers have rack information for replica rack aware assignment.")
        }
        let arranged = rackAlternatedBrokerList(brokers)
        return rackAware(partitions: partitions, replicationFactor: replicationFactor, brokers: brokers, arranged: arranged,
                         startIndex: startIndex ?? Int.random(in: 0..<arranged.count),
                         replicaShift: replicaShift ?? Int.random(in: 0..<arranged.count),
                         startPartitionId: startPartitionId)
    }

    /// CreatePartitions: new partitions continue the existing pattern. Kafka starts the walk at the index of
    /// the first broker whose id is at least partition 0's first replica, and the replication factor is
    /// partition 0's.
    public static func assignAdditional(
        existing: [[Int32]],
        newTotal: Int,
        brokers: [BrokerPlacement],
        replicaShift: Int? = nil
    ) throws(AssignmentError) -> [[Int32]] {
        guard let first = existing.first, let head = first.first else {
            throw AssignmentError(.invalidPartitions, "The topic has no partitions.")
        }
        if newTotal <= existing.count {
            throw AssignmentError(.invalidPartitions,
                                  "Topic currently has \(existing.count) partitions, \(newTotal) would not be an increase.")
        }
        let sorted = brokers.map(\.id).sorted()
        let startIndex = max(0, sorted.firstIndex(where: { $0 >= head }) ?? -1)
        return try assign(partitions: newTotal - existing.count, replicationFactor: first.count, brokers: brokers,
                          startIndex: startIndex, replicaShift: replicaShift ?? startIndex, startPartitionId: existing.count)
    }

    static func replicaIndex(first: Int, shift: Int, replica j: Int, brokers n: Int) -> Int {
        let s = 1 + (shift + j) % (n - 1)
        return (first + s) % n
    }

    static func rackUnaware(partitions: Int, replicationFactor: Int, brokers: [Int32], startIndex: Int,
                            replicaShift: Int, startPartitionId: Int) -> [[Int32]] {
        let n = brokers.count
        var shift = replicaShift
        var result: [[Int32]] = []
        var p = max(0, startPartitionId)
        for _ in 0..<partitions {
            if p > 0 && p % n == 0 { shift += 1 }
            let first = (p + startIndex) % n
            var replicas = [brokers[first]]
            for j in 0..<(replicationFactor - 1) {
                replicas.append(brokers[replicaIndex(first: first, shift: shift, replica: j, brokers: n)])
            }
            result.append(replicas)
            p += 1
        }
        return result
    }

    /// Kafka's `getRackAlternatedBrokerList`: racks sorted by name, brokers of each rack sorted by id, taken
    /// one per rack in turn.
    public static func rackAlternatedBrokerList(_ brokers: [BrokerPlacement]) -> [Int32] {
        var byRack: [String: [Int32]] = [:]
        for b in brokers { byRack[b.rack ?? "", default: []].append(b.id) }
        let racks = byRack.keys.sorted()
        let queues = racks.map { byRack[$0]!.sorted() }
        var positions = Array(repeating: 0, count: racks.count)
        var result: [Int32] = []
        var r = 0
        while result.count < brokers.count {
            if positions[r] < queues[r].count {
                result.append(queues[r][positions[r]])
                positions[r] += 1
            }
            r = (r + 1) % racks.count
        }
        return result
    }

    static func rackAware(partitions: Int, replicationFactor: Int, brokers: [BrokerPlacement], arranged: [Int32],
                          startIndex: Int, replicaShift: Int, startPartitionId: Int) -> [[Int32]] {
        var rackOf: [Int32: String] = [:]
        for b in brokers { rackOf[b.id] = b.rack ?? "" }
        let numRacks = Set(rackOf.values).count
        let n = arranged.count
        var shift = replicaShift
        var result: [[Int32]] = []
        var p = max(0, startPartitionId)
        for _ in 0..<partitions {
            if p > 0 && p % n == 0 { shift += 1 }
            let first = (p + startIndex) % n
            let leader = arranged[first]
            var replicas = [leader]
            var racksWithReplicas: Set<String> = [rackOf[leader]!]
            var brokersWithReplicas: Set<Int32> = [leader]
            var k = 0
            for _ in 0..<(replicationFactor - 1) {
                while true {
                    let broker = arranged[replicaIndex(first: first, shift: shift * numRacks, replica: k, brokers: n)]
                    let rack = rackOf[broker]!
                    k += 1
                    if (!racksWithReplicas.contains(rack) || racksWithReplicas.count == numRacks)
                        && (!brokersWithReplicas.contains(broker) || brokersWithReplicas.count == n) {
                        replicas.append(broker)
                        racksWithReplicas.insert(rack)
                        brokersWithReplicas.insert(broker)
                        break
                    }
                }
            }
            result.append(replicas)
            p += 1
        }
        return result
    }
}
