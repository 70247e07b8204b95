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
        m.close()
        let out = m.complete(0, response: response(0))
        #expect(out.write.isEmpty && out.discard.count == 1)
        #expect(m.receive(frame(1)).0 == .ignore)
    }
}
