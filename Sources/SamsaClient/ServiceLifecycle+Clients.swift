import ServiceLifecycle

// swift-service-lifecycle integration: put producers and consumers in a `ServiceGroup`; on
// graceful shutdown (SIGTERM/SIGINT when the group handles signals) they flush or commit and
// close. Their background work starts when they are created, so `run()` only waits.

extension KafkaProducer: Service {
    /// Waits for graceful shutdown (or cancellation), then flushes and closes.
    public func run() async throws {
        try? await gracefulShutdown()
        await close()
    }
}

extension KafkaConsumer: Service {
    /// Waits for graceful shutdown (or cancellation), then commits (with auto-commit), leaves the group and closes.
    public func run() async throws {
        try? await gracefulShutdown()
        await close()
    }
}

extension KafkaAdmin: Service {
    public func run() async throws {
        try? await gracefulShutdown()
        await close()
    }
}
