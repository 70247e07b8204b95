import SamsaMetadata
import Synchronization

/// Hands out producer ids for InitProducerId from blocks reserved in the coordination store,
/// so ids stay unique across brokers and restarts.
public final class ProducerIdManager: Sendable {
    private let store: ClusterMetadataStore
    private let brokerId: Int32
    private let block = Mutex<(next: Int64, end: Int64)>((0, -1))

    init(store: ClusterMetadataStore, brokerId: Int32) {
        self.store = store
        self.brokerId = brokerId
    }

    public func nextProducerId() async throws -> Int64 {
        while true {
            if let id = block.withLock({ b -> Int64? in
                guard b.next <= b.end else { return nil }
                defer { b.next += 1 }
                return b.next
            }) { return id }
            let range = try await store.allocateProducerIdBlock(broker: brokerId)
            block.withLock { b in if b.next > b.end { b = (range.lowerBound, range.upperBound) } }
        }
    }
}
