import Logging
import NIOCore
import NIOPosix

/// Settings shared by the producer, consumer and admin client.
public struct ClientConfiguration: Sendable {
    /// `host:port` pairs to bootstrap from (Kafka's `bootstrap.servers`).
    public var bootstrapServers: [String]
    public var clientId: String
    /// `request.timeout.ms`
    public var requestTimeoutMs: Int64 = 30_000
    /// `retry.backoff.ms`
    public var retryBackoffMs: Int64 = 100
    /// `metadata.max.age.ms`
    public var metadataMaxAgeMs: Int64 = 300_000
    /// `socket.connection.setup.timeout.ms`
    public var connectTimeoutMs: Int64 = 10_000
    public var eventLoopGroup: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton
    /// Where the client logs what it cannot report to a caller (background commit failures, retries given up,
    /// rebalance problems). swift-log's default handler unless the application bootstraps another.
    public var logger = Logger(label: "samsa.client")

    public init(bootstrapServers: [String] = ["127.0.0.1:9092"], clientId: String = "samsa-swift") {
        self.bootstrapServers = bootstrapServers
        self.clientId = clientId
    }

    func parsedBootstrap() throws -> [(host: String, port: Int)] {
        guard !bootstrapServers.isEmpty else { throw KafkaClientError.invalidConfiguration("bootstrapServers is empty") }
        return try bootstrapServers.map { s in
            var text = Substring(s)
            if let r = text.firstRange(of: "://") { text = text[r.upperBound...] }
            guard let colon = text.lastIndex(of: ":"), let port = Int(text[text.index(after: colon)...]) else {
                throw KafkaClientError.invalidConfiguration("bootstrap server '\(s)' is not host:port")
            }
            return (String(text[..<colon]), port)
        }
    }
}
