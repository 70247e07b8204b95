/// Kafka's `PartitionLeaderElectionAlgorithms`: each picks the new leader or nil.
public enum LeaderElection {
    /// A partition whose leader is gone: the first live replica, in assignment order, that is in the ISR;
    /// failing that, when unclean election is allowed, the first live replica at all.
    public static func offlinePartition(assignment: [Int32], isr: [Int32], live: Set<Int32>,
                                        uncleanAllowed: Bool) -> Int32? {
        if let leader = assignment.first(where: { live.contains($0) && isr.contains($0) }) { return leader }
        return uncleanAllowed ? assignment.first(where: { live.contains($0) }) : nil
    }

    /// During a reassignment: the first live in-sync replica of the target assignment.
    public static func reassignment(target: [Int32], isr: [Int32], live: Set<Int32>) -> Int32? {
        target.first(where: { live.contains($0) && isr.contains($0) })
    }

    /// The preferred replica (the first of the assignment), if live and in the ISR.
    public static func preferredReplica(assignment: [Int32], isr: [Int32], live: Set<Int32>) -> Int32? {
        guard let first = assignment.first, live.contains(first), isr.contains(first) else { return nil }
        return first
    }

    /// Controlled shutdown: the first live in-sync replica that is not shutting down.
    public static func controlledShutdown(assignment: [Int32], isr: [Int32], live: Set<Int32>,
                                          shuttingDown: Set<Int32>) -> Int32? {
        assignment.first(where: { live.contains($0) && isr.contains($0) && !shuttingDown.contains($0) })
    }
}

/// Which election a partition goes through (Kafka's PartitionLeaderElectionStrategy).
public enum ElectionStrategy: Sendable, Equatable {
    /// `allowUnclean` overrides the topic's `unclean.leader.election.enable` when true (ElectLeaders UNCLEAN).
    case offline(allowUnclean: Bool)
    case reassignment(target: [Int32])
    case preferred
    case controlledShutdown
}
