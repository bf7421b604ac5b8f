import Foundation

/// Immutable bytes that string values point into; never moves, so a view is a pointer plus a length.
public final class StringHeap: @unchecked Sendable {
    // Safe to share: written once by its builder before the heap is published, read-only after.
    let base: UnsafeMutablePointer<UInt8>
    let count: Int

    init(copying bytes: UnsafeRawBufferPointer) {
        count = bytes.count
        base = .allocate(capacity: max(1, count))
        if count > 0 { memcpy(base, bytes.baseAddress!, count) }
    }

    init(adopting base: UnsafeMutablePointer<UInt8>, count: Int) {
        self.base = base
        self.count = count
    }

    deinit { base.deallocate() }
}

/// Strings as views into shared heaps: a row is (heap, offset, length), so gathering rows, slicing
/// and substrings copy no bytes, and comparing or hashing a value allocates nothing.
public struct StringArray: Sendable {
    /// heap index << 40 | byte offset.
    var refs: [UInt64]
    var lengths: [UInt32]
    var heaps: [StringHeap]

    static let offsetMask: UInt64 = (1 << 40) - 1

    init(refs: [UInt64], lengths: [UInt32], heaps: [StringHeap]) {
        self.refs = refs
        self.lengths = lengths
        self.heaps = heaps
    }

    public init(_ strings: [String]) {
        var b = StringArrayBuilder()
        for s in strings { b.append(s) }
        self = b.finish()
    }

    /// Concatenates arrays, renumbering heaps; no string bytes move.
    static func concat(_ parts: [StringArray]) -> StringArray {
        if parts.count == 1 { return parts[0] }
        var refs: [UInt64] = []
        var lengths: [UInt32] = []
        var heaps: [StringHeap] = []
        refs.reserveCapacity(parts.reduce(0) { $0 + $1.refs.count })
        lengths.reserveCapacity(refs.capacity)
        for p in parts {
            let shift = UInt64(heaps.count) << 40
            heaps.append(contentsOf: p.heaps)
            if shift == 0 { refs.append(contentsOf: p.refs) } else { refs.append(contentsOf: p.refs.lazy.map { $0 &+ shift }) }
            lengths.append(contentsOf: p.lengths)
        }
        return StringArray(refs: refs, lengths: lengths, heaps: heaps)
    }
}

/// Read access to a string column's rows as byte views (valid while the column is alive).
public struct StringReader {
    let bases: [UnsafePointer<UInt8>]
    let refs: UnsafePointer<UInt64>
    let lengths: UnsafePointer<UInt32>
    let single: UnsafePointer<UInt8>?

    @inline(__always) public func bytes(_ i: Int) -> UnsafeRawBufferPointer {
        let r = refs[i]
        let base = single ?? bases[Int(r >> 40)]
        return UnsafeRawBufferPointer(start: base + Int(r & StringArray.offsetMask), count: Int(lengths[i]))
    }

    @inline(__always) public func pointer(_ i: Int) -> (UnsafePointer<UInt8>, Int) {
        let r = refs[i]
        let base = single ?? bases[Int(r >> 40)]
        return (base + Int(r & StringArray.offsetMask), Int(lengths[i]))
    }

    @inline(__always) public func string(_ i: Int) -> String {
        let b = bytes(i)
        return String(decoding: b, as: UTF8.self)
    }
}

/// Appends strings into one growing heap.
public struct StringArrayBuilder {
    var bytes: UnsafeMutablePointer<UInt8>
    var used = 0
    var capacity: Int
    var refs: [UInt64] = []
    var lengths: [UInt32] = []

    public init(capacity: Int = 4096, rows: Int = 0) {
        self.capacity = max(64, capacity)
        bytes = .allocate(capacity: self.capacity)
        refs.reserveCapacity(rows)
        lengths.reserveCapacity(rows)
    }

    @inline(__always) mutating func reserve(_ n: Int) {
        if used + n > capacity {
            let newCap = max(capacity * 2, used + n)
            let nb = UnsafeMutablePointer<UInt8>.allocate(capacity: newCap)
            nb.update(from: bytes, count: used)
            bytes.deallocate()
            bytes = nb
            capacity = newCap
        }
    }

    @inline(__always) public mutating func append(_ p: UnsafePointer<UInt8>, _ n: Int) {
        reserve(n)
        (bytes + used).update(from: p, count: n)
        refs.append(UInt64(used))
        lengths.append(UInt32(n))
        used += n
    }

    @inline(__always) public mutating func append(_ b: UnsafeRawBufferPointer) {
        if b.count == 0 { appendEmpty(); return }
        append(b.baseAddress!.assumingMemoryBound(to: UInt8.self), b.count)
    }

    public mutating func append(_ s: String) {
        var s = s
        s.withUTF8 { append(UnsafeRawBufferPointer($0)) }
    }

    @inline(__always) public mutating func appendEmpty() {
        refs.append(UInt64(used))
        lengths.append(0)
    }

    /// Appends a value whose bytes are written in place by `body`, which returns how many it wrote.
    @inline(__always) mutating func appendWriting(max n: Int, _ body: (UnsafeMutablePointer<UInt8>) -> Int) {
        reserve(n)
        let w = body(bytes + used)
        refs.append(UInt64(used))
        lengths.append(UInt32(w))
        used += w
    }

    public var count: Int { refs.count }

    public func finish() -> StringArray {
        let shrunk = UnsafeMutablePointer<UInt8>.allocate(capacity: max(1, used))
        shrunk.update(from: bytes, count: used)
        bytes.deallocate()
        return StringArray(refs: refs, lengths: lengths, heaps: [StringHeap(adopting: shrunk, count: used)])
    }
}

@inline(__always) func bytesEqual(_ a: UnsafePointer<UInt8>, _ an: Int, _ b: UnsafePointer<UInt8>, _ bn: Int) -> Bool {
    an == bn && (an == 0 || memcmp(a, b, an) == 0)
}

@inline(__always) func bytesCompare(_ a: UnsafePointer<UInt8>, _ an: Int, _ b: UnsafePointer<UInt8>, _ bn: Int) -> Int {
    let c = memcmp(a, b, min(an, bn))
    if c != 0 { return Int(c) }
    return an - bn
}

/// A 64-bit hash of bytes (wyhash-style mixing); not for security, for tables.
@inline(__always) func hashBytes(_ p: UnsafePointer<UInt8>, _ n: Int) -> UInt64 {
    var h: UInt64 = 0x9E37_79B9_7F4A_7C15 ^ UInt64(n)
    var i = 0
    let raw = UnsafeRawPointer(p)
    while i + 8 <= n {
        h = mix64(h ^ raw.loadUnaligned(fromByteOffset: i, as: UInt64.self))
        i += 8
    }
    if i < n {
        var tail: UInt64 = 0
        var s: UInt64 = 0
        while i < n { tail |= UInt64(p[i]) << s; s += 8; i += 1 }
        h = mix64(h ^ tail)
    }
    return h
}

@inline(__always) func mix64(_ x0: UInt64) -> UInt64 {
    var x = x0
    x = (x ^ (x >> 30)) &* 0xBF58_476D_1CE4_E5B9
    x = (x ^ (x >> 27)) &* 0x94D0_49BB_1331_11EB
    return x ^ (x >> 31)
}
