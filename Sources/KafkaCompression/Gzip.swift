import CZlib

/// gzip (RFC 1952) through the system zlib.
enum Gzip {
    /// Kafka's range and default (`compression.gzip.level`, KIP-390): 1...9, or -1 for zlib's default (6).
    static let minLevel = 1
    static let maxLevel = 9
    static let defaultLevel = Int(Z_DEFAULT_COMPRESSION)
    /// inflate's window bits: 15 (32 KiB window) + 32 = detect gzip or zlib from the header.
    private static let inflateWindowBits: Int32 = 15 + 32
    /// deflate's window bits: 15 (32 KiB window) + 16 = write a gzip header and trailer.
    private static let deflateWindowBits: Int32 = 15 + 16
    private static let chunkSize = 256 * 1024

    static func decompress(_ input: UnsafeRawBufferPointer, limit: Int) throws -> [UInt8] {
        guard let inputBase = input.baseAddress, input.count > 0 else {
            throw KafkaCompressionError.corruptInput(codec: .gzip, reason: "empty input")
        }
        guard input.count < Int(UInt32.max) else {
            throw KafkaCompressionError.unsupportedFeature(codec: .gzip, feature: "input of 4 GiB or more")
        }
        var stream = z_stream()
        guard inflateInit2_(&stream, inflateWindowBits, zlibVersion(), Int32(MemoryLayout<z_stream>.size)) == Z_OK else {
            throw KafkaCompressionError.internalError(codec: .gzip, reason: "inflateInit2 failed")
        }
        defer { inflateEnd(&stream) }
        stream.next_in = UnsafeMutablePointer(mutating: inputBase.assumingMemoryBound(to: Bytef.self))
        stream.avail_in = uInt(input.count)

        let out = OutputBuffer(codec: .gzip, limit: limit, initialCapacity: min(limit, input.count * 4 + 1024))
        var probe: UInt8 = 0
        while true {
            // At the limit, inflate into a one-byte probe: any byte it writes means the output is too large.
            let room = min(chunkSize, out.remainingLimit)
            let result: Int32
            let produced: Int
            if room > 0 {
                try out.reserve(room)
                stream.next_out = out.base + out.count
                stream.avail_out = uInt(room)
                result = inflate(&stream, Z_NO_FLUSH)
                produced = room - Int(stream.avail_out)
                out.count += produced
            } else {
                result = withUnsafeMutablePointer(to: &probe) { probePointer in
                    stream.next_out = probePointer
                    stream.avail_out = 1
                    return inflate(&stream, Z_NO_FLUSH)
                }
                stream.next_out = nil
                produced = 1 - Int(stream.avail_out)
                if produced > 0 { throw KafkaCompressionError.outputLimitExceeded(codec: .gzip, limit: limit) }
            }
            switch result {
            case Z_OK:
                continue
            case Z_STREAM_END:
                // One member is done. Another member may follow (concatenated gzip); trailing zero padding,
                // which some writers leave, is ignored as gzip(1) does.
                let rest = UnsafeRawBufferPointer(start: stream.next_in, count: Int(stream.avail_in))
                if rest.allSatisfy({ $0 == 0 }) { return out.toArray() }
                guard inflateReset(&stream) == Z_OK else {
                    throw KafkaCompressionError.internalError(codec: .gzip, reason: "inflateReset failed")
                }
            case Z_NEED_DICT:
                throw KafkaCompressionError.unsupportedFeature(codec: .gzip, feature: "preset dictionary")
            case Z_BUF_ERROR where stream.avail_in == 0:
                throw KafkaCompressionError.corruptInput(codec: .gzip, reason: "truncated stream")
            case Z_MEM_ERROR:
                throw KafkaCompressionError.internalError(codec: .gzip, reason: "zlib out of memory")
            default:
                let message = stream.msg.map { String(cString: $0) } ?? "zlib error \(result)"
                throw KafkaCompressionError.corruptInput(codec: .gzip, reason: message)
            }
        }
    }

    static func compress(_ input: UnsafeRawBufferPointer, level: Int?) throws -> [UInt8] {
        let level = level ?? defaultLevel
        guard level == defaultLevel || (minLevel...maxLevel).contains(level) else {
            throw KafkaCompressionError.invalidLevel(codec: .gzip, level: level)
        }
        let zlibLevel = Int32(level)  // -1 is Z_DEFAULT_COMPRESSION
        guard input.count < Int(UInt32.max) else {
            throw KafkaCompressionError.unsupportedFeature(codec: .gzip, feature: "input of 4 GiB or more")
        }
        var stream = z_stream()
        guard deflateInit2_(&stream, zlibLevel, Z_DEFLATED, deflateWindowBits, 8, Z_DEFAULT_STRATEGY,
                            zlibVersion(), Int32(MemoryLayout<z_stream>.size)) == Z_OK else {
            throw KafkaCompressionError.internalError(codec: .gzip, reason: "deflateInit2 failed")
        }
        defer { deflateEnd(&stream) }
        // deflateBound is a guaranteed upper bound for a single Z_FINISH call.
        let bound = Int(deflateBound(&stream, uLong(input.count)))
        var output = [UInt8](repeating: 0, count: bound)
        let result = output.withUnsafeMutableBufferPointer { out -> Int32 in
            stream.next_in = UnsafeMutablePointer(mutating: input.baseAddress?.assumingMemoryBound(to: Bytef.self))
            stream.avail_in = uInt(input.count)
            stream.next_out = out.baseAddress
            stream.avail_out = uInt(out.count)
            return deflate(&stream, Z_FINISH)
        }
        guard result == Z_STREAM_END else {
            throw KafkaCompressionError.internalError(codec: .gzip, reason: "deflate returned \(result)")
        }
        output.removeLast(bound - Int(stream.total_out))
        return output
    }
}
