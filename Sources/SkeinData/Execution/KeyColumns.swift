/// Hashes and compares rows by several key columns without allocating per row. Keys that are all
/// integer-backed and narrow enough are packed into one Int64 (most joins and group-bys), so a
/// probe compares one word.
struct KeyColumns {
    let columns: [Column]
    var count: Int { columns.first?.count ?? 0 }

    /// One Int64 per row when keys pack exactly, with the shared packing so both sides agree.
    struct Packing {
        var mins: [Int64]
        var bits: [Int]

        /// Packs range by range on `threads` threads, then joins the ranges.
        func pack(_ cols: [Column], threads: Int) -> (keys: [Int64], valid: [Bool]?) {
            let n = cols.first?.count ?? 0
            let rs = Parallel.ranges(n, threads: threads)
            guard rs.count > 1 else { return pack(cols) }
            let shared = Shared(cols)
            let parts = Parallel.map(rs.count, threads: threads) { r, _ in Shared(pack(shared.value.map { $0.slice(rs[r]) })) }
            var keys: [Int64] = []
            keys.reserveCapacity(n)
            for p in parts { keys.append(contentsOf: p.value.keys) }
            guard parts.contains(where: { $0.value.valid != nil }) else { return (keys, nil) }
            var valid: [Bool] = []
            valid.reserveCapacity(n)
            for (r, p) in zip(rs, parts) { valid.append(contentsOf: p.value.valid ?? [Bool](repeating: true, count: r.count)) }
            return (keys, valid)
        }

        func pack(_ cols: [Column]) -> (keys: [Int64], valid: [Bool]?) {
            let n = cols.first?.count ?? 0
            // One full-width key is its own packing: copy it, with its validity.
            if cols.count == 1, bits[0] >= 64, mins[0] == 0 {
                return (cols[0].withInts { Array($0) }, cols[0].slicedValidity)
            }
            var keys = [Int64](repeating: 0, count: n)
            var valid: [Bool]? = nil
            for (c, col) in cols.enumerated() {
                let shift = bits[(c + 1)...].reduce(0, +)
                let lo = mins[c]
                let width = bits[c]
                let limit: UInt64 = width >= 63 ? UInt64.max : (UInt64(1) << width) - 1
                col.withInts { a in
                    col.withValidity { v in
                        for i in 0..<n {
                            let d = UInt64(bitPattern: a[i] &- lo)
                            if d > limit || !(v?[i] ?? true) {
                                if valid == nil { valid = [Bool](repeating: true, count: n) }
                                valid![i] = false
                            } else {
                                keys[i] |= Int64(bitPattern: d << UInt64(shift))
                            }
                        }
                    }
                }
            }
            return (keys, valid)
        }
    }

    /// A packing for `build` keys (nil when they are not all integers or do not fit 63 bits).
    static func packing(_ build: [Column], threads: Int = 1) -> Packing? {
        guard !build.isEmpty, build.allSatisfy({ $0.type.isIntegerBacked || $0.type == .bool }), !build.contains(where: { $0.type == .bool }) else { return nil }
        if build.count == 1 { return Packing(mins: [0], bits: [64]) }
        var mins: [Int64] = []
        var bits: [Int] = []
        for c in build {
            let rs = Parallel.ranges(c.count, threads: threads)
            let bounds = Parallel.map(rs.count, threads: threads) { r, _ -> (Int64, Int64) in
                var lo = Int64.max, hi = Int64.min
                let part = c.slice(rs[r])
                part.withInts { a in part.withValidity { v in
                    for i in 0..<a.count where v?[i] ?? true { lo = min(lo, a[i]); hi = max(hi, a[i]) }
                } }
                return (lo, hi)
            }
            var lo = bounds.map(\.0).min() ?? .max, hi = bounds.map(\.1).max() ?? .min
            if lo > hi { lo = 0; hi = 0 }
            let range = UInt64(bitPattern: hi &- lo)
            let width = range == 0 ? 1 : 64 - range.leadingZeroBitCount
            mins.append(lo)
            bits.append(width)
        }
        guard bits.reduce(0, +) <= 63 else { return nil }
        return Packing(mins: mins, bits: bits)
    }

    func hashes() -> [UInt64] {
        var h = [UInt64](repeating: keyHashSeed, count: count)
        h.withUnsafeMutableBufferPointer { hp in for c in columns { c.hash(into: hp) } }
        return h
    }

    /// Which rows have no null key (nil when no key column has nulls).
    func validRows() -> [Bool]? {
        guard columns.contains(where: \.hasNulls) else { return nil }
        var valid = [Bool](repeating: true, count: count)
        for c in columns {
            c.withValidity { v in
                guard let v else { return }
                for i in 0..<valid.count where !v[i] { valid[i] = false }
            }
        }
        return valid
    }

    /// Whether any key of row i is null.
    func hasNull(_ i: Int) -> Bool {
        columns.contains { !$0.isValid(i) }
    }

    /// Row i of `a` equals row j of `b` (nulls equal each other, for grouping).
    static func equal(_ a: [KeyAccess], _ i: Int, _ b: [KeyAccess], _ j: Int) -> Bool {
        for (x, y) in zip(a, b) {
            let va = x.isValid(i), vb = y.isValid(j)
            if va != vb { return false }
            if !va { continue }
            switch (x.kind, y.kind) {
            case (.ints(let p), .ints(let q)): if p[x.offset + i] != q[y.offset + j] { return false }
            case (.doubles(let p), .doubles(let q)): if p[x.offset + i] != q[y.offset + j] { return false }
            case (.bools(let p), .bools(let q)): if p[x.offset + i] != q[y.offset + j] { return false }
            case (.strings(let p), .strings(let q)):
                let (s, l) = p.pointer(x.offset + i), (t, m) = q.pointer(y.offset + j)
                if !bytesEqual(s, l, t, m) { return false }
            default: return false
            }
        }
        return true
    }
}

/// Row access to one key column without a closure per row: its buffer (kept alive here) and,
/// for strings, the heaps' base pointers resolved once.
struct KeyAccess {
    enum Kind {
        case ints([Int64])
        case doubles([Double])
        case bools([Bool])
        case strings(StringViews)
    }
    let kind: Kind
    let validity: [Bool]?
    let offset: Int

    init(_ c: Column) {
        validity = c.validity
        offset = c.offset
        switch c.storage {
        case .ints(let a): kind = .ints(a)
        case .doubles(let a): kind = .doubles(a)
        case .bools(let a): kind = .bools(a)
        case .strings(let s): kind = .strings(StringViews(s))
        }
    }

    @inline(__always) func isValid(_ i: Int) -> Bool { validity?[offset + i] ?? true }
}

/// A string array's rows as (pointer, length), valid while this value lives (it holds the heaps).
struct StringViews {
    let array: StringArray
    let bases: [UnsafePointer<UInt8>]

    init(_ a: StringArray) {
        array = a
        bases = a.heaps.map { UnsafePointer($0.base) }
    }

    /// Row i of the whole array (not of a column window).
    @inline(__always) func pointer(_ i: Int) -> (UnsafePointer<UInt8>, Int) {
        let r = array.refs[i]
        return (bases[Int(r >> 40)] + Int(r & StringArray.offsetMask), Int(array.lengths[i]))
    }
}

/// Chained hash table from key to rows, built once and probed by many threads.
struct RowHashTable: @unchecked Sendable {
    // Safe to share: built before any probe; probes only read.
    var mask: Int
    var heads: [Int32]
    var next: [Int32]

    /// `capacity`: at least this many buckets (direct addressing passes its key range). Rows
    /// whose `valid` entry is false (a null key) are left out. Every chain lists its rows in
    /// input order, however many threads build it.
    init(hashes: [UInt64], capacity: Int = 0, valid: [Bool]?, threads: Int = 1) {
        let n = hashes.count
        var cap = 16
        while cap < max(n * 2, capacity) { cap <<= 1 }
        let mask = cap - 1
        self.mask = mask
        let ranges = Parallel.ranges(n, threads: threads)
        var heads: [Int32] = Parallel.fill(cap, threads: ranges.count) { r, out in
            UnsafeMutableBufferPointer(rebasing: out[r]).initialize(repeating: -1)
        }
        var next = [Int32](repeating: -1, count: n)
        hashes.withUnsafeBufferPointer { h in
            heads.withUnsafeMutableBufferPointer { hd in
                next.withUnsafeMutableBufferPointer { nx in
                    if ranges.count <= 1 {
                        // Insert in reverse so each chain lists rows in input order.
                        for i in stride(from: n - 1, through: 0, by: -1) where valid?[i] ?? true {
                            let b = Int(truncatingIfNeeded: h[i]) & mask
                            nx[i] = hd[b]
                            hd[b] = Int32(i)
                        }
                    } else {
                        RowHashTable.insertPartitioned(h, valid, hd, nx, mask: mask, ranges: ranges, threads: threads)
                    }
                }
            }
        }
        self.heads = heads
        self.next = next
    }

    /// Buckets split into partitions by their high bits; rows are scattered by partition (in input
    /// order, each thread counting its own range), then each partition is inserted by one thread.
    private static func insertPartitioned(_ h: UnsafeBufferPointer<UInt64>, _ valid: [Bool]?, _ hd: UnsafeMutableBufferPointer<Int32>,
                                          _ nx: UnsafeMutableBufferPointer<Int32>, mask: Int, ranges: [Range<Int>], threads: Int) {
        let bucketBits = mask.nonzeroBitCount
        let partBits = min(6, bucketBits)
        let parts = 1 << partBits
        let shift = bucketBits - partBits
        let n = h.count
        let hs = Shared(h), heads = Shared(hd), nexts = Shared(nx)
        // counts[r][p]: rows of range r in partition p.
        let counts = Parallel.map(ranges.count, threads: threads) { r, _ -> [Int] in
            var c = [Int](repeating: 0, count: parts)
            for i in ranges[r] where valid?[i] ?? true { c[(Int(truncatingIfNeeded: hs.value[i]) & mask) >> shift] += 1 }
            return c
        }
        // Where each (range, partition) starts in the scattered order: partition-major, then range.
        var starts = [[Int]](repeating: [Int](repeating: 0, count: parts), count: ranges.count)
        var partitionStart = [Int](repeating: 0, count: parts + 1)
        var at = 0
        for p in 0..<parts {
            partitionStart[p] = at
            for r in ranges.indices { starts[r][p] = at; at += counts[r][p] }
        }
        partitionStart[parts] = at
        let order = UnsafeMutableBufferPointer<Int32>.allocate(capacity: max(1, n))
        defer { order.deallocate() }
        let ord = Shared(order), st = starts
        Parallel.forEach(ranges.count, threads: threads) { r, _ in
            var fill = st[r]
            for i in ranges[r] where valid?[i] ?? true {
                let p = (Int(truncatingIfNeeded: hs.value[i]) & mask) >> shift
                ord.value[fill[p]] = Int32(i)
                fill[p] += 1
            }
        }
        let ps = partitionStart
        Parallel.forEach(parts, threads: threads) { p, _ in
            // Reverse input order, so each chain lists rows in input order.
            for k in stride(from: ps[p + 1] - 1, through: ps[p], by: -1) {
                let i = Int(ord.value[k])
                let b = Int(truncatingIfNeeded: hs.value[i]) & mask
                nexts.value[i] = heads.value[b]
                heads.value[b] = Int32(i)
            }
        }
    }
}
