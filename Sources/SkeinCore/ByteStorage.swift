import Synchronization

/// Immutable-once-shared bytes behind a `Chunk`. Two kinds: memory Skein allocated (writable by its
/// owner until first sent) and a caller's array adopted without copying (never written).
public class ByteStorage: @unchecked Sendable {
    // @unchecked: subclasses hold either an immutable array or memory that only the owning rank
    // writes, and only while `Chunk.isWritable` says nobody else can see it.
    public let byteCount: Int
    /// True for `AllocatedStorage` (a stored flag: a dynamic cast per message was measurable).
    public let isAllocated: Bool

    init(byteCount: Int, isAllocated: Bool) {
        self.byteCount = byteCount
        self.isAllocated = isAllocated
    }

    /// Calls `body` with the storage's bytes.
    public func withUnsafeBytes<R>(_ body: (UnsafeRawBufferPointer) throws -> R) rethrows -> R {
        preconditionFailure("ByteStorage is abstract")
    }
}

/// Memory allocated by Skein, 64-byte aligned, returned when the last chunk over it goes.
public final class AllocatedStorage: ByteStorage, @unchecked Sendable {
    /// The buffer's start; only its owner writes through it, and only before sharing it.
    public let base: UnsafeMutableRawPointer

    public init(uninitializedByteCount byteCount: Int) {
        base = BufferPool.shared.take(byteCount: byteCount)
        super.init(byteCount: byteCount, isAllocated: true)
    }

    deinit { BufferPool.shared.give(base, byteCount: byteCount) }

    /// Fills the buffer from `bytes` (at most its own size).
    public func initialize(from bytes: UnsafeRawBufferPointer) {
        if let from = bytes.baseAddress, bytes.count > 0 { base.copyMemory(from: from, byteCount: Swift.min(bytes.count, byteCount)) }
    }

    /// Copies a message's bytes to the start of this buffer (a receive into user memory), with
    /// streaming stores when asked (`MemoryCopy`); phantom chunks and anything past the end are skipped.
    public func copy(_ message: Message, streaming: Bool = false) {
        var offset = 0
        for chunk in message.chunks {
            chunk.withUnsafeBytes { bytes in
                let count = Swift.min(bytes.count, byteCount - offset)
                if count > 0, let from = bytes.baseAddress { MemoryCopy.copy(to: base + offset, from: from, byteCount: count, streaming: streaming) }
            }
            offset += chunk.byteCount
        }
    }

    public override func withUnsafeBytes<R>(_ body: (UnsafeRawBufferPointer) throws -> R) rethrows -> R {
        try body(UnsafeRawBufferPointer(start: base, count: byteCount))
    }
}

/// Recycles large buffers: a fresh multi-megabyte allocation is mapped anew and costs a page fault
/// per 4 KiB on first touch, which doubled the time of large reductions. Buffers of 64 KiB and
/// more are kept by power-of-two size class, up to `limit` bytes in all; a buffer that does not fit
/// evicts those of the size classes used longest ago. (Kept first-come, a run that moved on to
/// larger messages found the pool full of the smaller classes it no longer used: every 64 MiB
/// call then mapped and faulted fresh memory, and reduce at p = 3 took 1.4× longer than alone.)
public final class BufferPool: Sendable {
    /// The pool every `AllocatedStorage` draws from.
    public static let shared = BufferPool(limit: 512 << 20)
    /// Buffers smaller than this come from malloc and go back to it.
    public static let smallest = 64 << 10

    private struct Free: @unchecked Sendable {  // @unchecked: the pointers are owned by the pool while listed.
        var lists: [Int: [UnsafeMutableRawPointer]] = [:]
        /// Per size class, when it was last taken from or given to (a counter of pool operations).
        var used: [Int: UInt64] = [:]
        var clock: UInt64 = 0
        var bytes = 0

        /// Takes buffers of the classes other than `size` used longest ago until `size` more bytes
        /// fit under `limit`, and returns them; none if even all of them would not make room.
        mutating func evict(toFit size: Int, limit: Int) -> [UnsafeMutableRawPointer] {
            guard (lists[size]?.count ?? 0) * size + size <= limit else { return [] }
            var evicted: [UnsafeMutableRawPointer] = []
            for victim in lists.keys.filter({ $0 != size }).sorted(by: { used[$0, default: 0] < used[$1, default: 0] }) {
                while bytes + size > limit, let pointer = lists[victim]?.popLast() {
                    evicted.append(pointer)
                    bytes -= victim
                }
                if lists[victim]?.isEmpty == true { lists[victim] = nil }
                if bytes + size <= limit { break }
            }
            return evicted
        }
    }
    private let free = Mutex(Free())
    /// The most bytes held for reuse.
    public let limit: Int

    public init(limit: Int) { self.limit = limit }

    static func sizeClass(_ byteCount: Int) -> Int {
        var size = smallest
        while size < byteCount { size <<= 1 }
        return size
    }

    /// A buffer of at least `byteCount` bytes: a kept one of its size class, or a fresh one.
    public func take(byteCount: Int) -> UnsafeMutableRawPointer {
        // Small buffers come from plain malloc (16-byte aligned; the kernels load unaligned): asking
        // for 64 took glibc's slower memalign path on every small collective's output.
        guard byteCount >= Self.smallest else { return .allocate(byteCount: Swift.max(byteCount, 1), alignment: 16) }
        let size = Self.sizeClass(byteCount)
        let reused = free.withLock { free -> UnsafeMutableRawPointer? in
            free.clock += 1
            free.used[size] = free.clock
            guard let pointer = free.lists[size]?.popLast() else { return nil }
            free.bytes -= size
            return pointer
        }
        return reused ?? .allocate(byteCount: size, alignment: 64)
    }

    /// Returns a buffer `take(byteCount:)` gave, to be kept for reuse or freed.
    public func give(_ pointer: UnsafeMutableRawPointer, byteCount: Int) {
        guard byteCount >= Self.smallest else { return pointer.deallocate() }
        let size = Self.sizeClass(byteCount)
        let (kept, evicted) = free.withLock { free -> (Bool, [UnsafeMutableRawPointer]) in
            free.clock += 1
            free.used[size] = free.clock
            let evicted = free.bytes + size > limit ? free.evict(toFit: size, limit: limit) : []
            guard free.bytes + size <= limit else { return (false, evicted) }
            free.lists[size, default: []].append(pointer)
            free.bytes += size
            return (true, evicted)
        }
        for old in evicted { old.deallocate() }
        if !kept { pointer.deallocate() }
    }

    /// Bytes held for reuse.
    public var heldBytes: Int { free.withLock { $0.bytes } }
}

/// A caller's array, kept alive and read in place: the zero-copy way into a collective.
public final class ArrayStorage<Element: BitwiseCopyable>: ByteStorage, @unchecked Sendable {
    public let array: [Element]

    public init(_ array: [Element]) {
        self.array = array
        super.init(byteCount: array.count * MemoryLayout<Element>.stride, isAllocated: false)
    }

    public override func withUnsafeBytes<R>(_ body: (UnsafeRawBufferPointer) throws -> R) rethrows -> R {
        try array.withUnsafeBytes(body)
    }
}

/// Bytes that live elsewhere (another process's shared memory, say), read in place while `owner`
/// keeps them alive. Never written.
public final class BorrowedStorage: ByteStorage, @unchecked Sendable {
    // @unchecked: read-only bytes; `owner` is what keeps them valid.
    private let bytes: UnsafeRawBufferPointer
    private let owner: (any Sendable)?

    public init(_ bytes: UnsafeRawBufferPointer, owner: (any Sendable)?) {
        self.bytes = bytes
        self.owner = owner
        super.init(byteCount: bytes.count, isAllocated: false)
    }

    public override func withUnsafeBytes<R>(_ body: (UnsafeRawBufferPointer) throws -> R) rethrows -> R {
        try body(bytes)
    }
}
