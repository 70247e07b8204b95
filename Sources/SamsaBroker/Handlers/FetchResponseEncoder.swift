import KafkaProtocol
import KafkaWire
import NIOCore
import SamsaStorage

/// Encodes Fetch responses (v4–17) as a list of parts so that record data goes from the segment
/// files to the socket with sendfile, never through user space. Field layout as in Kafka's
/// FetchResponse.json; `FetchResponseEncoderTests` decodes the result with the generated decoder.
struct FetchResponseEncoder {
    enum Records {
        case none
        case buffer(ByteBuffer)
        case file(FileSlice)
    }

    struct Partition {
        var index: Int32
        var errorCode: KafkaErrorCode = .none
        var highWatermark: Int64 = -1
        var lastStableOffset: Int64 = -1
        var logStartOffset: Int64 = -1
        var preferredReadReplica: Int32 = -1
        var currentLeader: (id: Int32, epoch: Int32)?
        var records: Records = .none

        var recordBytes: Int {
            switch records {
            case .none: return 0
            case let .buffer(b): return b.readableBytes
            case let .file(f): return f.length
            }
        }
    }

    struct Topic {
        var name: String
        var topicId: KafkaUUID
        var partitions: [Partition]
    }

    let version: Int16
    let correlationId: Int32
    var flexible: Bool { version >= 12 }

    private var parts: [ResponsePart] = []
    private var current = ByteBuffer()

    init(version: Int16, correlationId: Int32) {
        self.version = version
        self.correlationId = correlationId
    }

    /// The whole response (size prefix included). File slices stay references to the segment's
    /// own descriptor (no descriptor is opened or duplicated per response); the connection sends
    /// them with sendfile when it writes the response.
    static func encode(version: Int16, correlationId: Int32, errorCode: KafkaErrorCode, sessionId: Int32, topics: [Topic]) -> ResponsePayload {
        var e = FetchResponseEncoder(version: version, correlationId: correlationId)
        e.write(errorCode: errorCode, sessionId: sessionId, topics: topics)
        return e.finish()
    }

    private mutating func write(errorCode: KafkaErrorCode, sessionId: Int32, topics: [Topic]) {
        current.writeInteger(Int32(0))  // size, filled in by finish()
        current.writeKafkaInt32(correlationId)
        if flexible { current.writeUnsignedVarint(0) }  // response header v1 tagged fields
        current.writeKafkaInt32(0)  // throttle_time_ms
        if version >= 7 {
            current.writeKafkaInt16(errorCode.rawValue)
            current.writeKafkaInt32(sessionId)
        }
        current.writeKafkaArrayCount(topics.count, compact: flexible)
        for topic in topics {
            if version <= 12 { current.writeKafkaString(topic.name, compact: flexible) } else { current.writeKafkaUUID(topic.topicId) }
            current.writeKafkaArrayCount(topic.partitions.count, compact: flexible)
            for p in topic.partitions {
                current.writeKafkaInt32(p.index)
                current.writeKafkaInt16(p.errorCode.rawValue)
                current.writeKafkaInt64(p.highWatermark)
                current.writeKafkaInt64(p.lastStableOffset)
                if version >= 5 { current.writeKafkaInt64(p.logStartOffset) }
                current.writeKafkaArrayCount(0, compact: flexible)  // aborted_transactions: none
                if version >= 11 { current.writeKafkaInt32(p.preferredReadReplica) }
                let length = p.recordBytes
                if flexible { current.writeUnsignedVarint(UInt32(length + 1)) } else { current.writeKafkaInt32(Int32(length)) }
                switch p.records {
                case .none: break
                case let .buffer(b): current.writeImmutableBuffer(b)
                case let .file(slice):
                    parts.append(.bytes(current))
                    current = ByteBuffer()
                    parts.append(.file(slice.file, position: slice.position, length: slice.length))
                }
                if flexible {
                    if let leader = p.currentLeader {
                        current.writeUnsignedVarint(1)
                        current.writeTaggedField(tag: 1) { b in
                            b.writeKafkaInt32(leader.id)
                            b.writeKafkaInt32(leader.epoch)
                            b.writeUnsignedVarint(0)
                        }
                    } else {
                        current.writeUnsignedVarint(0)
                    }
                }
            }
            if flexible { current.writeUnsignedVarint(0) }
        }
        if flexible { current.writeUnsignedVarint(0) }  // top-level tagged fields (node_endpoints: none)
    }

    private mutating func finish() -> ResponsePayload {
        if parts.isEmpty {
            current.setInteger(Int32(current.readableBytes - 4), at: current.readerIndex, endianness: .big)
            return .buffer(current)
        }
        parts.append(.bytes(current))
        let total = parts.reduce(0) { $0 + $1.byteCount } - 4
        guard case var .bytes(first) = parts[0] else { fatalError("a fetch response starts with its header") }
        first.setInteger(Int32(total), at: first.readerIndex, endianness: .big)
        parts[0] = .bytes(first)
        return .parts(parts)
    }
}
