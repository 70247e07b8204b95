/// A growable byte buffer with a hard size limit, shared by the decoders.
///
/// Decoders reserve room before writing (`reserve` throws once the limit would be passed), then let the C
/// library write through `base + count` and advance `count`. Growth is geometric but never beyond `limit`, so
/// memory stays bounded by the caller's `maxOutput` whatever sizes a hostile input claims. The memory is not
/// cleared: only bytes the libraries wrote are ever counted.
final class OutputBuffer {

    private(set) var base: UnsafeMutablePointer<UInt8>
    private(set) var capacity: Int
    /// Bytes written so far.
    var count = 0
    /// The most bytes this buffer may ever hold.
    let limit: Int
    let codec: KafkaCompressionCodec

    init(codec: KafkaCompressionCodec, limit: Int, initialCapacity: Int) {
        self.codec = codec
        self.limit = limit
        capacity = max(16, min(initialCapacity, limit))
        base = .allocate(capacity: capacity)
    }

    deinit { base.deallocate() }

    /// Bytes that may still be written before the limit.
    var remainingLimit: Int { limit - count }

    /// Ensures room for `n` more bytes, throwing `outputLimitExceeded` if that would pass the limit.
    @inline(__always)
    func reserve(_ n: Int) throws {
        guard n <= limit - count else { throw KafkaCompressionError.outputLimitExceeded(codec: codec, limit: limit) }
        if n > capacity - count { grow(to: count + n) }
    }

    private func grow(to needed: Int) {
        let newCapacity = max(needed, min(limit, max(capacity * 2, 64 * 1024)))
        let newBase = UnsafeMutablePointer<UInt8>.allocate(capacity: newCapacity)
        newBase.update(from: base, count: count)
        base.deallocate()
        base = newBase
        capacity = newCapacity
    }

    /// The bytes written so far, as an array.
    func toArray() -> [UInt8] {
        [UInt8](UnsafeBufferPointer(start: base, count: count))
    }
}
