import DequeModule
import NIOCore

/// A response ready to be written: one buffer, or several parts (buffers and file regions sent
/// with sendfile) plus the file handles to close once they have been written.
public enum ResponsePayload: Sendable {
    case buffer(ByteBuffer)
    case parts([IOData], closeAfterWrite: [NIOFileHandle])

    public var byteCount: Int {
        switch self {
        case let .buffer(b): return b.readableBytes
        case let .parts(parts, _): return parts.reduce(0) { $0 + $1.readableBytes }
        }
    }
}

/// The ordering logic of one client connection, without any I/O (sans-IO, like postgres-nio's
/// ConnectionStateMachine): requests are pipelined, every request is started in arrival order and
/// responses leave in that same order whatever order they complete in. A request marked as a
/// barrier (admin operations whose effects later requests may depend on) holds back the requests
/// after it until it completes. Too many unanswered requests pause reading from the socket.
public struct ConnectionStateMachine: Sendable {
    public typealias Slot = UInt64

    private struct Pending: Sendable {
        var slot: Slot
        var done = false
        var response: ResponsePayload?
    }

    private var pending = Deque<Pending>()
    private var held = Deque<ByteBuffer>()
    private var barrier: Slot?
    private var nextSlot: Slot = 0
    public private(set) var readingPaused = false
    public private(set) var isClosed = false
    public let maxInFlight: Int

    public init(maxInFlight: Int) { self.maxInFlight = max(1, maxInFlight) }

    public enum ReceiveAction: Equatable {
        /// Start this request now, as `slot`.
        case start(Slot)
        /// Keep it: a barrier is in progress.
        case hold
        case ignore
    }

    /// Output of a state change: responses to write now (in order), whether to pause or resume reading.
    public struct Output: Sendable {
        public var write: [ResponsePayload] = []
        /// Responses that will never be written (the connection closed): release their resources.
        public var discard: [ResponsePayload] = []
        public var pauseReading = false
        public var resumeReading = false
    }

    public var inFlight: Int { pending.count + held.count }

    /// A frame arrived.
    public mutating func receive(_ frame: ByteBuffer) -> (ReceiveAction, Output) {
        guard !isClosed else { return (.ignore, Output()) }
        var out = Output()
        let action: ReceiveAction
        if barrier != nil {
            held.append(frame)
            action = .hold
        } else {
            action = .start(allocate())
        }
        if inFlight >= maxInFlight, !readingPaused {
            readingPaused = true
            out.pauseReading = true
        }
        return (action, out)
    }

    private mutating func allocate() -> Slot {
        let slot = nextSlot
        nextSlot += 1
        pending.append(Pending(slot: slot))
        return slot
    }

    /// The request in `slot` turned out to be a barrier: hold what comes after it until it completes.
    public mutating func markBarrier(_ slot: Slot) {
        barrier = slot
    }

    /// The request in `slot` finished; nil `response` means nothing is sent back (acks=0 produce).
    public mutating func complete(_ slot: Slot, response: ResponsePayload?) -> Output {
        var out = Output()
        guard !isClosed, let i = pending.firstIndex(where: { $0.slot == slot }) else {
            if let response { out.discard.append(response) }
            return out
        }
        pending[i].done = true
        pending[i].response = response
        while let first = pending.first, first.done {
            pending.removeFirst()
            if let r = first.response { out.write.append(r) }
        }
        if barrier == slot { barrier = nil }
        if readingPaused, inFlight < maxInFlight {
            readingPaused = false
            out.resumeReading = true
        }
        return out
    }

    /// The next held frame that may start now (none while a barrier is in progress).
    public mutating func nextHeld() -> (Slot, ByteBuffer)? {
        guard barrier == nil, !isClosed, let frame = held.popFirst() else { return nil }
        return (allocate(), frame)
    }

    public mutating func close() {
        isClosed = true
        pending.removeAll()
        held.removeAll()
    }
}
