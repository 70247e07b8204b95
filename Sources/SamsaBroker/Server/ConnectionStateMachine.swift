import DequeModule
import NIOCore
import SamsaStorage

/// One piece of a response: bytes, or a range of a segment file sent with sendfile straight from
/// the segment's own descriptor. Holding the `FileDescriptorBox` keeps that descriptor open (it
/// closes when its last holder lets go), so a queued response costs no descriptor of its own.
public enum ResponsePart: Sendable {
    case bytes(ByteBuffer)
    case file(FileDescriptorBox, position: Int, length: Int)

    public var byteCount: Int {
        switch self {
        case let .bytes(b): return b.readableBytes
        case let .file(_, _, length): return length
        }
    }
}

/// A response ready to be written: one buffer, or several parts (buffers and file ranges).
public enum ResponsePayload: Sendable {
    case buffer(ByteBuffer)
    case parts([ResponsePart])

    public var byteCount: Int {
        switch self {
        case let .buffer(b): return b.readableBytes
        case let .parts(parts): return parts.reduce(0) { $0 + $1.byteCount }
        }
    }
}

/// The ordering and back-pressure logic of one client connection, without any I/O (sans-IO, like
/// postgres-nio's ConnectionStateMachine): requests are pipelined, every request is started in
/// arrival order and responses leave in that same order whatever order they complete in. A
/// request marked as a barrier (admin operations whose effects later requests may depend on)
/// holds back the requests after it until it completes.
///
/// Reading from the socket pauses (Kafka "mutes" the channel) while any of these holds, and
/// resumes when none does:
/// - too many requests are unanswered (`maxInFlight`, from `queued.max.requests`);
/// - the socket is not writable (the client does not read its responses): completed responses
///   wait here, unwritten, and no new request is read, so a client that never reads can hold at
///   most `maxInFlight` responses, never an unbounded queue;
/// - the broker-wide memory pool for requests (`queued.max.request.bytes`) is exhausted.
public struct ConnectionStateMachine: Sendable {
    public typealias Slot = UInt64

    private struct Pending: Sendable {
        var slot: Slot
        var done = false
        var response: ResponsePayload?
    }

    private var pending = Deque<Pending>()
    private var held = Deque<ByteBuffer>()
    /// Completed responses, in order, waiting for the socket to become writable.
    private var unsent = Deque<ResponsePayload>()
    private var barrier: Slot?
    private var nextSlot: Slot = 0
    private var writable = true
    private var memoryExhausted = false
    public private(set) var isClosed = false
    public let maxInFlight: Int
    /// Whether reading is paused now (as last reported through `Output`).
    public private(set) var readingPaused = false

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

    /// Requests read and not yet answered on the socket (running, held, or answered but unsent).
    public var inFlight: Int { pending.count + held.count + unsent.count }
    public var unsentCount: Int { unsent.count }

    private var shouldPause: Bool {
        inFlight >= maxInFlight || !writable || !unsent.isEmpty || memoryExhausted
    }

    /// Sets `pauseReading`/`resumeReading` in `out` when the reading state changes.
    private mutating func updateReading(_ out: inout Output) {
        let pause = shouldPause && !isClosed
        if pause, !readingPaused {
            readingPaused = true
            out.pauseReading = true
        } else if !pause, readingPaused {
            readingPaused = false
            out.resumeReading = true
        }
    }

    /// Moves unsent responses to `out.write` while the socket is writable.
    private mutating func drain(_ out: inout Output) {
        guard writable else { return }
        while let r = unsent.popFirst() { out.write.append(r) }
    }

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
        updateReading(&out)
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
            if let r = first.response { unsent.append(r) }
        }
        if barrier == slot { barrier = nil }
        drain(&out)
        updateReading(&out)
        return out
    }

    /// The socket's writability changed (NIO's write-buffer watermarks).
    public mutating func writabilityChanged(_ isWritable: Bool) -> Output {
        var out = Output()
        guard !isClosed else { return out }
        writable = isWritable
        drain(&out)
        updateReading(&out)
        return out
    }

    /// The broker-wide request memory pool became exhausted or available again.
    public mutating func memoryChanged(exhausted: Bool) -> Output {
        var out = Output()
        guard !isClosed else { return out }
        memoryExhausted = exhausted
        updateReading(&out)
        return out
    }

    /// The next held frame that may start now (none while a barrier is in progress).
    public mutating func nextHeld() -> (Slot, ByteBuffer)? {
        guard barrier == nil, !isClosed, let frame = held.popFirst() else { return nil }
        return (allocate(), frame)
    }

    /// Whether nothing is running, held or waiting to be written (for idle-connection checks).
    public var isQuiet: Bool { pending.isEmpty && held.isEmpty && unsent.isEmpty }

    /// The connection closed: what was not written yet is handed back for release.
    public mutating func close() -> Output {
        var out = Output()
        isClosed = true
        for p in pending { if let r = p.response { out.discard.append(r) } }
        out.discard.append(contentsOf: unsent)
        pending.removeAll()
        held.removeAll()
        unsent.removeAll()
        return out
    }
}
