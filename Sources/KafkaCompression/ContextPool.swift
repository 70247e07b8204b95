import Synchronization

/// A few reusable C library contexts. Creating a zstd or lz4 decompression context costs more than decoding a
/// typical record batch (16 KiB batches decode about 2× faster with a reused zstd context), so contexts go
/// back to a small pool after use instead of being freed. A context that grew large (a frame with a big
/// window) is freed instead, so the pool never pins much memory.
final class ContextPool: Sendable {
    private struct Handle: @unchecked Sendable {
        let pointer: OpaquePointer
    }

    private let idle = Mutex<[Handle]>([])
    private let capacity: Int
    private let maxKeptBytes: Int
    private let create: @Sendable () -> OpaquePointer?
    private let destroy: @Sendable (OpaquePointer) -> Void
    private let size: @Sendable (OpaquePointer) -> Int

    init(capacity: Int = 8, maxKeptBytes: Int = 8 << 20, create: @escaping @Sendable () -> OpaquePointer?,
         destroy: @escaping @Sendable (OpaquePointer) -> Void, size: @escaping @Sendable (OpaquePointer) -> Int) {
        self.capacity = capacity
        self.maxKeptBytes = maxKeptBytes
        self.create = create
        self.destroy = destroy
        self.size = size
    }

    /// Runs `body` with a context (reused or new; `body` must reset it as the library requires). The context
    /// goes back to the pool only when `body` succeeds: after a failure it is freed, because a reset does not
    /// clear everything in every library version (liblz4 1.9.4 keeps a failed frame's remaining content size
    /// across `LZ4F_resetDecompressionContext`, which then fails the next frame without a content size).
    func withContext<R>(codec: KafkaCompressionCodec, _ body: (OpaquePointer) throws -> R) throws -> R {
        let context: OpaquePointer
        if let reused = idle.withLock({ $0.popLast() }) {
            context = reused.pointer
        } else if let created = create() {
            context = created
        } else {
            throw KafkaCompressionError.internalError(codec: codec, reason: "cannot create a context (out of memory)")
        }
        let result: R
        do {
            result = try body(context)
        } catch {
            destroy(context)
            throw error
        }
        giveBack(context)
        return result
    }

    private func giveBack(_ context: OpaquePointer) {
        let kept = size(context) <= maxKeptBytes && idle.withLock { pool -> Bool in
            guard pool.count < capacity else { return false }
            pool.append(Handle(pointer: context))
            return true
        }
        if !kept { destroy(context) }
    }
}
