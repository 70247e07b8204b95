import NIOCore
import Testing
@testable import SamsaBroker

@Suite struct ConnectionStateMachineTests {
    func frame(_ n: UInt8) -> ByteBuffer { ByteBuffer(bytes: [n]) }
    func response(_ n: UInt8) -> ResponsePayload { .buffer(ByteBuffer(bytes: [n])) }
    func bytes(_ out: ConnectionStateMachine.Output) -> [UInt8] {
        out.write.compactMap { if case let .buffer(b) = $0 { return b.getInteger(at: b.readerIndex) } else { return nil } }
    }

    @Test func responsesLeaveInRequestOrderWhateverOrderTheyComplete() {
        var m = ConnectionStateMachine(maxInFlight: 10)
        let (a0, _) = m.receive(frame(0)), (a1, _) = m.receive(frame(1)), (a2, _) = m.receive(frame(2))
        #expect(a0 == .start(0) && a1 == .start(1) && a2 == .start(2))
        #expect(bytes(m.complete(2, response: response(2))).isEmpty)
        #expect(bytes(m.complete(1, response: response(1))).isEmpty)
        #expect(bytes(m.complete(0, response: response(0))) == [0, 1, 2])
    }

    @Test func requestsWithoutResponseDoNotBlockTheOnesAfter() {
        var m = ConnectionStateMachine(maxInFlight: 10)
        _ = m.receive(frame(0)); _ = m.receive(frame(1))
        #expect(bytes(m.complete(1, response: response(1))).isEmpty)
        #expect(bytes(m.complete(0, response: nil)) == [1])  // acks=0 produce: nothing written for it
    }

    @Test func aBarrierHoldsLaterRequestsUntilItCompletes() {
        var m = ConnectionStateMachine(maxInFlight: 10)
        _ = m.receive(frame(0))
        m.markBarrier(0)
        #expect(m.receive(frame(1)).0 == .hold)
        #expect(m.receive(frame(2)).0 == .hold)
        #expect(m.nextHeld() == nil)
        #expect(bytes(m.complete(0, response: response(0))) == [0])
        let next = m.nextHeld()
        #expect(next?.0 == 1 && next?.1 == frame(1))
        m.markBarrier(1)
        #expect(m.nextHeld() == nil)
        _ = m.complete(1, response: response(1))
        #expect(m.nextHeld()?.1 == frame(2))
    }

    @Test func tooManyInFlightPausesReadingUntilOneCompletes() {
        var m = ConnectionStateMachine(maxInFlight: 2)
        #expect(!m.receive(frame(0)).1.pauseReading)
        #expect(m.receive(frame(1)).1.pauseReading)
        #expect(m.readingPaused)
        let out = m.complete(0, response: response(0))
        #expect(out.resumeReading && !m.readingPaused)
    }

    @Test func afterCloseLateResponsesAreHandedBackForRelease() {
        var m = ConnectionStateMachine(maxInFlight: 10)
        _ = m.receive(frame(0))
        _ = m.close()
        let out = m.complete(0, response: response(0))
        #expect(out.write.isEmpty && out.discard.count == 1)
        #expect(m.receive(frame(1)).0 == .ignore)
    }

    /// Issue 17: a client that does not read its responses. Once the socket is unwritable, no
    /// response is handed to it and no request is read until it drains; completed responses wait
    /// here (bounded by maxInFlight), in order.
    @Test func anUnwritableSocketPausesReadingAndQueuesResponsesInOrder() {
        var m = ConnectionStateMachine(maxInFlight: 100)
        _ = m.receive(frame(0))
        _ = m.receive(frame(1))
        let blocked = m.writabilityChanged(false)
        #expect(blocked.pauseReading && m.readingPaused)
        let out0 = m.complete(0, response: response(0))
        let out1 = m.complete(1, response: response(1))
        #expect(out0.write.isEmpty && out1.write.isEmpty, "nothing is written to an unwritable socket")
        #expect(m.unsentCount == 2 && m.inFlight == 2)
        let drained = m.writabilityChanged(true)
        #expect(bytes(drained) == [0, 1])
        #expect(drained.resumeReading && !m.readingPaused)
    }

    @Test func anExhaustedMemoryPoolPausesReadingUntilReleased() {
        var m = ConnectionStateMachine(maxInFlight: 100)
        #expect(m.memoryChanged(exhausted: true).pauseReading)
        #expect(m.readingPaused)
        _ = m.receive(frame(0))
        #expect(!m.complete(0, response: response(0)).resumeReading, "memory still exhausted")
        #expect(m.memoryChanged(exhausted: false).resumeReading)
    }

    @Test func closeHandsBackUnsentResponses() {
        var m = ConnectionStateMachine(maxInFlight: 10)
        _ = m.receive(frame(0))
        _ = m.writabilityChanged(false)
        _ = m.complete(0, response: response(0))
        let out = m.close()
        #expect(out.discard.count == 1 && m.isQuiet)
    }
}
