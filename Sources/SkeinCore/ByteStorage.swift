/// Immutable-once-shared bytes behind a `Chunk`. Two kinds: memory Skein allocated (writable by its
/// owner until first sent) and a caller's array adopted without copying (never written).
public class ByteStorage: @unchecked Sendable {
    // @unchecked: subclasses hold either an immutable array or memory that only the owning rank
    // writes, and only while `Chunk.isWritable` says nobody else can see it.
    public let byteCount: Int

    init(byteCount: Int) { self.byteCount = byteCount }

    /// Calls `body` with the storage's bytes.
    public func withUnsafeBytes<R>(_ body: (UnsafeRawBufferPointer) throws -> R) rethrows -> R {
        preconditionFailure("ByteStorage is abstract")
    }
}

/// Memory allocated by Skein, 64-byte aligned, freed when the last chunk over it goes.
public final class AllocatedStorage: ByteStorage, @unchecked Sendable {
    let base: UnsafeMutableRawPointer

    public init(uninitializedByteCount byteCount: Int) {
        base = UnsafeMutableRawPointer.allocate(byteCount: Swift.max(byteCount, 1), alignment: 64)
        super.init(byteCount: byteCount)
    }

    deinit { base.deallocate() }

    public override func withUnsafeBytes<R>(_ body: (UnsafeRawBufferPointer) throws -> R) rethrows -> R {
        try body(UnsafeRawBufferPointer(start: base, count: byteCount))
    }
}

/// A caller's array, kept alive and read in place: the zero-copy way into a collective.
public final class ArrayStorage<Element: BitwiseCopyable>: ByteStorage, @unchecked Sendable {
    public let array: [Element]

    public init(_ array: [Element]) {
        self.array = array
        super.init(byteCount: array.count * MemoryLayout<Element>.stride)
    }

    public override func withUnsafeBytes<R>(_ body: (UnsafeRawBufferPointer) throws -> R) rethrows -> R {
        try array.withUnsafeBytes(body)
    }
}
