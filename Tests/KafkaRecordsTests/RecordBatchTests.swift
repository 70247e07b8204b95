import KafkaProtocol
import KafkaRecords
import KafkaWire
import NIOCore
import Testing

@Suite struct RecordBatchTests {
    func sampleBatch(baseOffset: Int64 = 0) -> ByteBuffer {
        var b = RecordBatchBuilder(baseOffset: baseOffset, partitionLeaderEpoch: 7, producerId: 1234, producerEpoch: 2, baseSequence: 10)
        b.append(key: ByteBuffer(string: "k1"), value: ByteBuffer(string: "v1"),
                 headers: [RecordHeader(key: "h", value: ByteBuffer(string: "x")), RecordHeader(key: "n", value: nil)],
                 timestamp: 1_700_000_000_000)
        b.append(key: nil, value: ByteBuffer(string: String(repeating: "z", count: 300)), timestamp: 1_700_000_000_050)
        b.append(key: ByteBuffer(string: "k3"), value: nil, timestamp: 1_699_999_999_990)
        return b.build()
    }

    @Test func builtBatchParsesBack() throws {
        let bytes = sampleBatch(baseOffset: 42)
        let batch = try RecordBatch(from: bytes)
        try batch.validate()
        let h = batch.header
        #expect(h.magic == 2)
        #expect(h.baseOffset == 42)
        #expect(h.lastOffset == 44)
        #expect(h.partitionLeaderEpoch == 7)
        #expect(h.producerId == 1234 && h.producerEpoch == 2 && h.baseSequence == 10)
        #expect(h.recordCount == 3)
        #expect(h.baseTimestamp == 1_700_000_000_000)
        #expect(h.maxTimestamp == 1_700_000_000_050)
        #expect(h.totalSize == bytes.readableBytes)
        let records = try batch.records()
        #expect(records.count == 3)
        #expect(records[0].key == ByteBuffer(string: "k1"))
        #expect(records[0].headers == [RecordHeader(key: "h", value: ByteBuffer(string: "x")), RecordHeader(key: "n", value: nil)])
        #expect(records[1].key == nil)
        #expect(records[1].value?.readableBytes == 300)
        #expect(records[1].offsetDelta == 1 && records[1].timestampDelta == 50)
        #expect(records[2].value == nil && records[2].timestampDelta == -10)
    }

    @Test func baseOffsetAndLeaderEpochPatchWithoutBreakingTheCRC() throws {
        var bytes = sampleBatch()
        RecordBatch.setBaseOffset(1_000_000, in: &bytes, at: bytes.readerIndex)
        RecordBatch.setPartitionLeaderEpoch(99, in: &bytes, at: bytes.readerIndex)
        let batch = try RecordBatch(from: bytes)
        try batch.validate()
        #expect(batch.header.baseOffset == 1_000_000)
        #expect(batch.header.partitionLeaderEpoch == 99)
    }

    @Test func corruptionIsDetected() throws {
        let good = sampleBatch()
        // Flip every byte covered by the CRC in turn: each must be caught.
        for index in RecordBatchHeader.attributesOffset..<good.readableBytes {
            var bad = good
            bad.setInteger(bad.getInteger(at: index, as: UInt8.self)! ^ 0x01, at: index)
            guard let batch = try? RecordBatch(from: bad) else { continue }  // e.g. length field made invalid
            #expect(throws: RecordBatchError.self) { try batch.validate() }
        }
        var bad = good
        bad.setInteger(UInt8(0xAA), at: good.readableBytes - 1)
        let error = #expect(throws: RecordBatchError.self) { try RecordBatch(from: bad).validate() }
        #expect(error?.kafkaErrorCode == .corruptMessage)
    }

    @Test func legacyMessageSetsAreRejectedClearly() throws {
        // A magic 0 message set entry: offset, size, crc, magic 0, attributes, key -1, value "a".
        for magic: Int8 in [0, 1] {
            var legacy = ByteBuffer()
            legacy.writeKafkaInt64(0)
            legacy.writeKafkaInt32(magic == 0 ? 15 : 23)
            legacy.writeKafkaUInt32(0xDEAD_BEEF)
            legacy.writeKafkaInt8(magic)
            legacy.writeKafkaInt8(0)
            if magic == 1 { legacy.writeKafkaInt64(0) }
            legacy.writeKafkaInt32(-1)
            legacy.writeKafkaInt32(1)
            legacy.writeString("a")
            let error = #expect(throws: RecordBatchError.legacyFormat(magic: magic)) { try RecordBatch(from: legacy) }
            #expect(error?.kafkaErrorCode == .unsupportedForMessageFormat)
            #expect(error?.description.contains("legacy message format") == true)
        }
        var weird = sampleBatch()
        weird.setInteger(Int8(3), at: RecordBatchHeader.magicOffset)
        #expect(throws: RecordBatchError.unknownMagic(3)) { try RecordBatch(from: weird) }
    }

    @Test func attributeBits() {
        for codec in CompressionCodec.allCases {
            let a = RecordBatchAttributes(compression: codec)
            #expect(a.compression == codec)
            #expect(a.timestampType == .createTime && !a.isTransactional && !a.isControl)
        }
        let all = RecordBatchAttributes(compression: .zstd, timestampType: .logAppendTime, isTransactional: true,
                                        isControl: true, hasDeleteHorizon: true)
        #expect(all.rawValue == 0x7C)
        #expect(all.compression == .zstd && all.timestampType == .logAppendTime)
        #expect(all.isTransactional && all.isControl && all.hasDeleteHorizon)
        #expect(RecordBatchAttributes(rawValue: 0x0A).compression == .snappy)
        #expect(RecordBatchAttributes(rawValue: 0x0A).timestampType == .logAppendTime)
        #expect(RecordBatchAttributes(rawValue: 0x07).compression == nil)
    }

    @Test func compressedBatchesValidateOpaqueAndDecompressOnDemand() throws {
        // A batch marked gzip whose records are not gzip: header and CRC validate (the broker stores
        // it as received); reading its records fails with CORRUPT_MESSAGE.
        var fake = RecordBatchBuilder(attributes: RecordBatchAttributes(compression: .gzip))
        fake.append(key: nil, value: ByteBuffer(string: "pretend-compressed"), timestamp: 1)
        let bogus = try RecordBatch(from: fake.build())
        try bogus.validate()
        #expect(bogus.header.attributes.compression == .gzip)
        #expect(throws: RecordBatchError.self) { try bogus.records() }
        do { _ = try bogus.records() } catch let e as RecordBatchError { #expect(e.kafkaErrorCode == .corruptMessage) }
        // Real compressed batches, every codec: records come back intact.
        for codec in CompressionCodec.allCases {
            var builder = RecordBatchBuilder()
            for i in 0..<50 { builder.append(key: ByteBuffer(string: "k\(i)"), value: ByteBuffer(string: String(repeating: "v", count: i)), timestamp: 1000 + Int64(i)) }
            let batch = try RecordBatch(from: try builder.build(compression: codec))
            try batch.validate()
            #expect(batch.header.attributes.compression == codec && batch.header.recordCount == 50)
            let records = try batch.records()
            #expect(records.count == 50 && records[49].key == ByteBuffer(string: "k49") && records[49].timestampDelta == 49)
        }
    }

    @Test func readerWalksBatchesAndHandlesTruncation() throws {
        var all = sampleBatch(baseOffset: 0)
        var second = sampleBatch(baseOffset: 3)
        all.writeBuffer(&second)
        var reader = RecordBatchReader(all)
        #expect(try reader.next()?.header.baseOffset == 0)
        #expect(try reader.next()?.header.baseOffset == 3)
        #expect(try reader.next() == nil)

        let cut = all.getSlice(at: 0, length: all.readableBytes - 5)!
        var strict = RecordBatchReader(cut)
        _ = try strict.next()
        #expect(throws: RecordBatchError.self) { try strict.next() }
        var lenient = RecordBatchReader(cut, allowsPartialTrailingBatch: true)
        _ = try lenient.next()
        #expect(try lenient.next() == nil)
    }

    @Test func hostileRecordCountsAndLengthsThrow() throws {
        var bytes = sampleBatch()
        bytes.setInteger(Int32.max, at: 57, endianness: .big)  // recordCount
        let batch = try RecordBatch(from: bytes)
        #expect(throws: RecordBatchError.self) { try batch.records() }
        bytes = sampleBatch()
        bytes.setInteger(Int32.max, at: 8, endianness: .big)  // batchLength
        #expect(throws: RecordBatchError.truncated(needed: 12 + Int(Int32.max), available: bytes.readableBytes)) {
            try RecordBatch(from: bytes)
        }
        bytes.setInteger(Int32(10), at: 8, endianness: .big)
        #expect(throws: RecordBatchError.invalidBatchLength(10)) { try RecordBatch(from: bytes) }
    }
}
