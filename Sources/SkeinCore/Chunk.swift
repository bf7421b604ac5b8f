/// A contiguous run of bytes handed between ranks by reference. A chunk with no storage is
/// *phantom*: it has a size and no bytes, so simulations can move gigabytes without memory.
public struct Chunk: Sendable {
    public let storage: ByteStorage?
    public let offset: Int
    public let byteCount: Int
    /// True while only the rank that made this chunk can see it; then it may be reduced into in place.
    public private(set) var isWritable: Bool

    public init(storage: ByteStorage?, offset: Int, byteCount: Int, isWritable: Bool) {
        self.storage = storage
        self.offset = offset
        self.byteCount = byteCount
        self.isWritable = isWritable && storage?.isAllocated == true
    }

    /// A chunk of `byteCount` bytes that exist only as a size.
    public static func phantom(byteCount: Int) -> Chunk {
        Chunk(storage: nil, offset: 0, byteCount: byteCount, isWritable: false)
    }

    public var isPhantom: Bool { storage == nil }

    /// Marks the chunk as seen by another rank: from now on nobody writes it.
    public mutating func share() { isWritable = false }

    /// Arrays up to this many bytes are copied when `partition` is asked to copy small ones.
    public static let smallCopyLimit = 16 << 10

    /// Splits `array` into `parts` near-equal chunks (the first `count % parts` one element longer).
    /// A large array is read in place. A small one (at most `smallCopyLimit` bytes) is copied into
    /// memory of the chunks' own when `copyingSmall`: writable, and holding no reference to the
    /// caller's array, which the messages of the layers above (the runtime's) rely on. Collectives
    /// copy only for an in-place allreduce, whose caller overwrites the array as soon as the call
    /// returns, while a peer may still hold a chunk of it (copy-on-write would then copy the whole
    /// array). Elsewhere they read in place: a peer on another core read a fresh copy so slowly
    /// that allgather, gather and reduce at 16 KiB took 1.7–2× longer than reading the array itself.
    @inlinable
    public static func partition<T: BitwiseCopyable>(_ array: [T], into parts: Int, copyingSmall: Bool = true) -> [Chunk] {
        guard parts > 0 else { return [] }
        let stride = MemoryLayout<T>.stride
        let storage: ByteStorage
        let writable: Bool
        if copyingSmall && array.count * stride <= smallCopyLimit {
            let owned = AllocatedStorage(uninitializedByteCount: array.count * stride)
            array.withUnsafeBytes { owned.initialize(from: $0) }
            (storage, writable) = (owned, true)
        } else {
            (storage, writable) = (ArrayStorage(array), false)
        }
        let split = BlockPartition(count: array.count, parts: parts)
        var chunks: [Chunk] = []
        chunks.reserveCapacity(parts)
        for index in 0..<parts {
            let range = split.range(index)
            chunks.append(Chunk(storage: storage, offset: range.lowerBound * stride, byteCount: range.count * stride, isWritable: writable))
        }
        return chunks
    }

    /// Splits a phantom payload of `elements` elements the same way `partition` splits an array.
    public static func phantomPartition(elements: Int, elementWidth: Int, into parts: Int) -> [Chunk] {
        guard parts > 0 else { return [] }
        return BlockPartition(count: elements, parts: parts).ranges.map { Chunk.phantom(byteCount: $0.count * elementWidth) }
    }

    /// Calls `body` with the chunk's bytes (empty for a phantom chunk).
    public func withUnsafeBytes<R>(_ body: (UnsafeRawBufferPointer) throws -> R) rethrows -> R {
        guard let storage else { return try body(UnsafeRawBufferPointer(start: nil, count: 0)) }
        return try storage.withUnsafeBytes { all in
            try body(UnsafeRawBufferPointer(rebasing: all[offset..<offset + byteCount]))
        }
    }

    /// `op(lhs, rhs)` element-wise. Reuses `self`'s memory when it is writable, else allocates.
    /// `incomingIsLeft` fixes the operand order so every rank computes bit-identical results.
    public func reduced(with incoming: Chunk, incomingIsLeft: Bool, by reducer: Reducer) -> Chunk {
        precondition(incoming.byteCount == byteCount, "reduce of chunks of \(byteCount) and \(incoming.byteCount) bytes")
        if isPhantom || incoming.isPhantom { return .phantom(byteCount: byteCount) }
        let target: Chunk
        if isWritable {
            target = self
        } else {
            target = Chunk(
                storage: AllocatedStorage(uninitializedByteCount: byteCount), offset: 0, byteCount: byteCount,
                isWritable: true)
        }
        guard let out = target.storage, out.isAllocated else { preconditionFailure("writable chunk over foreign memory") }
        let destination = unsafeDowncast(out, to: AllocatedStorage.self).base + target.offset
        withUnsafeBytes { mine in
            incoming.withUnsafeBytes { theirs in
                guard let m = mine.baseAddress, let t = theirs.baseAddress else { return }
                if incomingIsLeft {
                    reducer(into: destination, t, m, byteCount: byteCount)
                } else {
                    reducer(into: destination, m, t, byteCount: byteCount)
                }
            }
        }
        return target
    }
}

/// How `count` elements split into `parts` contiguous blocks: the first `count % parts` blocks
/// hold one element more. Every rank computes the same split, so no sizes travel.
public struct BlockPartition: Sendable {
    public let count: Int
    public let parts: Int

    public init(count: Int, parts: Int) {
        precondition(parts > 0)
        self.count = count
        self.parts = parts
    }

    public func range(_ index: Int) -> Range<Int> {
        let base = count / parts, extra = count % parts
        let start = index * base + Swift.min(index, extra)
        return start..<(start + base + (index < extra ? 1 : 0))
    }

    public var ranges: [Range<Int>] { (0..<parts).map(range) }
}
