import KafkaWire
import NIOCore
import Testing

@Suite struct VarintTests {
    func bytes(_ body: (inout ByteBuffer) -> Void) -> [UInt8] {
        var b = ByteBuffer()
        body(&b)
        return Array(b.readableBytesView)
    }

    @Test func unsignedVarintKnownEncodings() throws {
        #expect(bytes { $0.writeUnsignedVarint(0) } == [0x00])
        #expect(bytes { $0.writeUnsignedVarint(127) } == [0x7F])
        #expect(bytes { $0.writeUnsignedVarint(128) } == [0x80, 0x01])
        #expect(bytes { $0.writeUnsignedVarint(300) } == [0xAC, 0x02])
        #expect(bytes { $0.writeUnsignedVarint(.max) } == [0xFF, 0xFF, 0xFF, 0xFF, 0x0F])
    }

    @Test func zigzagKnownEncodings() throws {
        // Protobuf/Kafka zigzag: 0→0, -1→1, 1→2, -2→3, 2147483647→4294967294, -2147483648→4294967295.
        #expect(bytes { $0.writeVarint(0) } == [0x00])
        #expect(bytes { $0.writeVarint(-1) } == [0x01])
        #expect(bytes { $0.writeVarint(1) } == [0x02])
        #expect(bytes { $0.writeVarint(-2) } == [0x03])
        #expect(bytes { $0.writeVarint(.max) } == [0xFE, 0xFF, 0xFF, 0xFF, 0x0F])
        #expect(bytes { $0.writeVarint(.min) } == [0xFF, 0xFF, 0xFF, 0xFF, 0x0F])
        #expect(bytes { $0.writeVarlong(.min) } == [0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0x01])
    }

    @Test func varintsRoundTrip() throws {
        var b = ByteBuffer()
        let ints: [Int32] = [0, 1, -1, 63, -64, 64, -65, 8191, -8192, .max, .min]
        let longs: [Int64] = [0, 1, -1, .max, .min, 1 << 40, -(1 << 40)]
        for v in ints { b.writeVarint(v) }
        for v in longs { b.writeVarlong(v) }
        for v in ints { #expect(try b.readVarint() == v) }
        for v in longs { #expect(try b.readVarlong() == v) }
        #expect(b.readableBytes == 0)
    }

    @Test func overlongVarintsAreRejected() throws {
        var b = ByteBuffer(bytes: [0x80, 0x80, 0x80, 0x80, 0x80, 0x01])
        #expect(throws: KafkaWireError.varintTooLong) { try b.readUnsignedVarint() }
        var c = ByteBuffer(bytes: [0xFF, 0xFF, 0xFF, 0xFF, 0x1F])  // 35 bits: above UInt32.max
        #expect(throws: KafkaWireError.varintTooLong) { try c.readUnsignedVarint() }
        var d = ByteBuffer(bytes: [0x80, 0x80])
        #expect(throws: KafkaWireError.self) { try d.readUnsignedVarint() }
        #expect(d.readerIndex == 0, "a failed read must not consume input")
    }

    @Test func hostileLengthsThrowWithoutAllocating() throws {
        // A string claiming 32767 bytes with 3 present.
        var s = ByteBuffer(bytes: [0x7F, 0xFF, 0x61, 0x62, 0x63])
        #expect(throws: KafkaWireError.invalidLength(32767, field: "string")) { try s.readKafkaString(compact: false) }
        // An array claiming 2^31-1 elements.
        var a = ByteBuffer(bytes: [0x7F, 0xFF, 0xFF, 0xFF, 0x00])
        #expect(throws: KafkaWireError.invalidLength(Int64(Int32.max), field: "array")) {
            try a.readKafkaArray(compact: false) { try $0.readKafkaInt8() }
        }
        // Compact bytes claiming UInt32.max - 1 bytes.
        var c = ByteBuffer(bytes: [0xFF, 0xFF, 0xFF, 0xFF, 0x0F])
        #expect(throws: KafkaWireError.self) { try c.readKafkaBytes(compact: true) }
        // Negative length other than -1.
        var n = ByteBuffer(bytes: [0xFF, 0xFE])
        #expect(throws: KafkaWireError.invalidLength(-2, field: "string")) { try n.readKafkaNullableString(compact: false) }
        // Null where null is not allowed.
        var z = ByteBuffer(bytes: [0x00])
        #expect(throws: KafkaWireError.unexpectedNull(field: "string")) { try z.readKafkaString(compact: true) }
    }

    @Test func stringsAndBytesBothEncodings() throws {
        var b = ByteBuffer()
        b.writeKafkaString("héllo", compact: false)
        b.writeKafkaString("héllo", compact: true)
        b.writeKafkaString(nil, compact: false)
        b.writeKafkaString(nil, compact: true)
        b.writeKafkaBytes(ByteBuffer(bytes: [1, 2, 3]), compact: true)
        b.writeKafkaBytes(nil, compact: false)
        #expect(Array(b.readableBytesView.prefix(2)) == [0x00, 0x06])
        #expect(try b.readKafkaString(compact: false) == "héllo")
        #expect(try b.readKafkaString(compact: true) == "héllo")
        #expect(try b.readKafkaNullableString(compact: false) == nil)
        #expect(try b.readKafkaNullableString(compact: true) == nil)
        #expect(try b.readKafkaBytes(compact: true) == ByteBuffer(bytes: [1, 2, 3]))
        #expect(try b.readKafkaNullableBytes(compact: false) == nil)
        #expect(b.readableBytes == 0)
    }

    @Test func uuidPrintsLikeKafka() throws {
        // Kafka: Uuid.fromString("AAAAAAAAAAAAAAAAAAAAAA") is the zero UUID; base64url without padding.
        #expect(KafkaUUID.zero.description == "AAAAAAAAAAAAAAAAAAAAAA")
        // Bytes 00 01 .. 0f, as Python's base64.urlsafe_b64encode prints them without padding.
        let counting = KafkaUUID(high: 0x0001_0203_0405_0607, low: 0x0809_0A0B_0C0D_0E0F)
        #expect(counting.description == "AAECAwQFBgcICQoLDA0ODw")
        #expect(KafkaUUID("AAECAwQFBgcICQoLDA0ODw") == counting)
        let u = KafkaUUID(high: 0xFB8E_3B1D_4C2A_4F3E, low: 0x9A1B_2C3D_4E5F_6071)
        #expect(u.description.count == 22)
        #expect(KafkaUUID(u.description) == u)
        #expect(KafkaUUID("not a uuid") == nil)
        var g = SystemRandomNumberGenerator()
        let r = KafkaUUID.random(using: &g)
        #expect((r.high >> 12) & 0xF == 4)
        var b = ByteBuffer()
        b.writeKafkaUUID(u)
        #expect(b.readableBytes == 16)
        #expect(try b.readKafkaUUID() == u)
    }
}
