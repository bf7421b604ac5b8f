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

    /// Copies a message's bytes to the start of this buffer (a receive into user memory);
    /// phantom chunks and anything past the end are skipped.
    public func copy(_ message: Message) {
        var offset = 0
        for chunk in message.chunks {
            chunk.withUnsafeBytes { bytes in
                let count = Swift.min(bytes.count, byteCount - offset)
                if count > 0, let from = bytes.baseAddress { (base + offset).copyMemory(from: from, byteCount: count) }
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
/// more are kept by power-of-two size class, up to `limit` bytes in all.
final class BufferPool: Sendable {
    static let shared = BufferPool(limit: 512 << 20)
    static let smallest = 64 << 10

    private struct Free: @unchecked Sendable {  // @unchecked: the pointers are owned by the pool while listed.
        var lists: [Int: [UnsafeMutableRawPointer]] = [:]
        var bytes = 0
    }
    private let free = Mutex(Free())
    let limit: Int

    init(limit: Int) { self.limit = limit }

    static func sizeClass(_ byteCount: Int) -> Int {
        var size = smallest
        while size < byteCount { size <<= 1 }
        return size
    }

    func take(byteCount: Int) -> UnsafeMutableRawPointer {
        // Small buffers come from plain malloc (16-byte aligned; the kernels load unaligned): asking
        // for 64 took glibc's slower memalign path on every small collective's output.
        guard byteCount >= Self.smallest else { return .allocate(byteCount: Swift.max(byteCount, 1), alignment: 16) }
        let size = Self.sizeClass(byteCount)
        let reused = free.withLock { free -> UnsafeMutableRawPointer? in
            guard let pointer = free.lists[size]?.popLast() else { return nil }
            free.bytes -= size
            return pointer
        }
        return reused ?? .allocate(byteCount: size, alignment: 64)
    }

    func give(_ pointer: UnsafeMutableRawPointer, byteCount: Int) {
        guard byteCount >= Self.smallest else { return pointer.deallocate() }
        let size = Self.sizeClass(byteCount)
        let kept = free.withLock { free -> Bool in
            guard free.bytes + size <= limit else { return false }
            free.lists[size, default: []].append(pointer)
            free.bytes += size
            return true
        }
        if !kept { pointer.deallocate() }
    }
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
