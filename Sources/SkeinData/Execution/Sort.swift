import Foundation

/// A chunk's sort-key columns copied into raw buffers, compared without closures, reference
/// counting or bounds checks: booleans become 0/1 integers, strings become (pointer, length) plus
/// their first 8 bytes as a big-endian word, so most string comparisons are one integer compare.
final class SortKeyColumns: @unchecked Sendable {
    // Safe to share: filled in init, only read afterwards; `columns` keeps the string heaps alive.
    private enum Kind { case int, double, string }
    private struct Key {
        var kind: Kind
        var ints: UnsafeMutablePointer<Int64>?
        var doubles: UnsafeMutablePointer<Double>?
        var prefixes: UnsafeMutablePointer<UInt64>?
        var strings: UnsafeMutablePointer<UnsafePointer<UInt8>>?
        var lengths: UnsafeMutablePointer<Int>?
        var valid: UnsafeMutablePointer<Bool>?
        var descending: Bool
        var nullsFirst: Bool
    }
    private let keys: UnsafeMutablePointer<Key>
    private let keyCount: Int
    /// The first key as an order-preserving unsigned word (direction applied), when it has no
    /// nulls; rows whose words differ are ordered by them alone. Nil: always compare fully.
    private let normalized: UnsafeMutablePointer<UInt64>?
    /// Whether equal words settle the first key (integers, doubles) or only its prefix (strings).
    private let normalizedIsExact: Bool
    private let columns: [Column]
    let count: Int

    init(_ columns: [Column], _ sortKeys: [SortKey]) {
        self.columns = columns
        count = columns.first?.count ?? 0
        keyCount = columns.count
        keys = .allocate(capacity: max(1, columns.count))
        let n = count
        for (k, (c, s)) in zip(columns, sortKeys).enumerated() {
            var key = Key(kind: .int, descending: !s.ascending, nullsFirst: s.nullsFirst)
            if let v = c.slicedValidity {
                let p = UnsafeMutablePointer<Bool>.allocate(capacity: max(1, n))
                for i in 0..<n { p[i] = v[i] }
                key.valid = p
            }
            switch c.storage {
            case .ints:
                let p = UnsafeMutablePointer<Int64>.allocate(capacity: max(1, n))
                c.withInts { a in for i in 0..<n { p[i] = a[i] } }
                key.ints = p
            case .bools:
                let p = UnsafeMutablePointer<Int64>.allocate(capacity: max(1, n))
                c.withBools { a in for i in 0..<n { p[i] = a[i] ? 1 : 0 } }
                key.ints = p
            case .doubles:
                key.kind = .double
                let p = UnsafeMutablePointer<Double>.allocate(capacity: max(1, n))
                c.withDoubles { a in for i in 0..<n { p[i] = a[i] } }
                key.doubles = p
            case .strings:
                key.kind = .string
                let ptrs = UnsafeMutablePointer<UnsafePointer<UInt8>>.allocate(capacity: max(1, n))
                let lens = UnsafeMutablePointer<Int>.allocate(capacity: max(1, n))
                let pre = UnsafeMutablePointer<UInt64>.allocate(capacity: max(1, n))
                c.withStrings { r in
                    for i in 0..<n {
                        let (p, l) = r.pointer(i)
                        (ptrs + i).initialize(to: p)
                        lens[i] = l
                        var w: UInt64 = 0
                        for b in 0..<8 { w = w << 8 | UInt64(b < l ? p[b] : 0) }
                        pre[i] = w
                    }
                }
                key.strings = ptrs
                key.lengths = lens
                key.prefixes = pre
            }
            (keys + k).initialize(to: key)
        }
        if keyCount > 0, keys[0].valid == nil {
            let key = keys[0]
            let p = UnsafeMutablePointer<UInt64>.allocate(capacity: max(1, n))
            let flip: UInt64 = key.descending ? .max : 0
            for i in 0..<n {
                let w: UInt64
                switch key.kind {
                case .int: w = UInt64(bitPattern: key.ints![i]) ^ (1 << 63)
                case .double:
                    let d = key.doubles![i] == 0 ? 0 : key.doubles![i]  // -0 sorts with +0
                    let b = d.bitPattern
                    w = b & (1 << 63) != 0 ? ~b : b | (1 << 63)
                case .string: w = key.prefixes![i]
                }
                p[i] = w ^ flip
            }
            normalized = p
            normalizedIsExact = key.kind != .string
        } else {
            normalized = nil
            normalizedIsExact = false
        }
    }

    deinit {
        for k in 0..<keyCount {
            let key = keys[k]
            key.ints?.deallocate(); key.doubles?.deallocate(); key.prefixes?.deallocate()
            key.strings?.deallocate(); key.lengths?.deallocate(); key.valid?.deallocate()
        }
        keys.deinitialize(count: keyCount)
        keys.deallocate()
        normalized?.deallocate()
    }

    /// Rows a and b in key order; equal keys keep input order, so the sort is stable.
    @inline(__always) func less(_ a: Int32, _ b: Int32) -> Bool {
        if let normalized {
            let x = normalized[Int(a)], y = normalized[Int(b)]
            if x != y { return x < y }
        }
        let c = compare(Int(a), Int(b), from: normalizedIsExact ? 1 : 0)
        return c != 0 ? c < 0 : a < b
    }

    /// Rows a and b by their words, then in full.
    @inline(__always) private func less(_ a: Entry, _ b: Entry) -> Bool {
        if a.word != b.word { return a.word < b.word }
        let c = compare(Int(a.row), Int(b.row), from: normalizedIsExact ? 1 : 0)
        return c != 0 ? c < 0 : a.row < b.row
    }

    private struct Entry {
        var word: UInt64
        var row: Int32
    }

    @inline(__always) func compare(_ a: Int, _ b: Int, from first: Int = 0) -> Int {
        for k in first..<keyCount {
            let key = keys[k]
            if let v = key.valid {
                let va = v[a], vb = v[b]
                if !va || !vb {
                    if va == vb { continue }
                    return (!va) == key.nullsFirst ? -1 : 1
                }
            }
            var c = 0
            switch key.kind {
            case .int:
                let x = key.ints![a], y = key.ints![b]
                c = x == y ? 0 : (x < y ? -1 : 1)
            case .double:
                let x = key.doubles![a], y = key.doubles![b]
                c = x == y ? 0 : (x < y ? -1 : 1)
            case .string:
                let x = key.prefixes![a], y = key.prefixes![b]
                if x != y {
                    c = x < y ? -1 : 1
                } else {
                    c = bytesCompare(key.strings![a], key.lengths![a], key.strings![b], key.lengths![b])
                }
            }
            if c != 0 { return key.descending ? -c : c }
        }
        return 0
    }

    /// The stable sorted order of all rows: (first-key word, row) entries, so most comparisons
    /// touch one contiguous array; runs sorted in parallel, then merged pairwise.
    func sortedPermutation(threads: Int) -> [Int32] {
        let n = count
        let runs = n < 1 << 14 ? 1 : max(1, threads)
        var source = [Entry](unsafeUninitializedCapacity: n) { b, c in
            for i in 0..<n { b[i] = Entry(word: normalized?[i] ?? 0, row: Int32(i)) }
            c = n
        }
        let bounds = (0...runs).map { $0 * n / runs }
        source.withUnsafeMutableBufferPointer { p in
            let whole = Shared(p)
            Parallel.forEach(runs, threads: runs) { r, _ in
                var run = UnsafeMutableBufferPointer(rebasing: whole.value[bounds[r]..<bounds[r + 1]])
                run.sort { self.less($0, $1) }
            }
        }
        // Merge neighbouring runs until one is left; the merges of one round run in parallel.
        var edges = bounds
        var target = runs > 1 ? [Entry](repeating: Entry(word: 0, row: 0), count: n) : []
        while edges.count > 2 {
            let pairs = edges.count / 2
            let e = edges
            source.withUnsafeBufferPointer { s in
                target.withUnsafeMutableBufferPointer { t in
                    let src = Shared(s), dst = Shared(t)
                    Parallel.forEach(pairs, threads: threads) { q, _ in
                        let lo = e[2 * q], mid = e[min(2 * q + 1, e.count - 1)], hi = e[min(2 * q + 2, e.count - 1)]
                        self.merge(src.value, lo, mid, hi, into: dst.value)
                    }
                }
            }
            edges = stride(from: 0, to: edges.count, by: 2).map { edges[$0] }
            if edges.last != n { edges.append(n) }
            swap(&source, &target)
        }
        return source.map(\.row)
    }

    /// Merges sorted s[lo..<mid] and s[mid..<hi] into t[lo..<hi].
    private func merge(_ s: UnsafeBufferPointer<Entry>, _ lo: Int, _ mid: Int, _ hi: Int, into t: UnsafeMutableBufferPointer<Entry>) {
        var i = lo, j = mid, o = lo
        while i < mid && j < hi {
            if less(s[j], s[i]) { t[o] = s[j]; j += 1 } else { t[o] = s[i]; i += 1 }
            o += 1
        }
        while i < mid { t[o] = s[i]; i += 1; o += 1 }
        while j < hi { t[o] = s[j]; j += 1; o += 1 }
    }

    /// The first k rows in key order, in order (a bounded max-heap over one pass).
    func smallest(_ k: Int) -> [Int32] {
        let n = count
        if n <= k { return sortedPermutation(threads: 1) }
        var heap = (0..<Int32(k)).map { $0 }
        // Max-heap by key order: the worst kept row on top.
        func siftDown(_ start: Int) {
            var i = start
            while true {
                let l = 2 * i + 1, r = l + 1
                var m = i
                if l < k && less(heap[m], heap[l]) { m = l }
                if r < k && less(heap[m], heap[r]) { m = r }
                if m == i { return }
                heap.swapAt(i, m)
                i = m
            }
        }
        for i in stride(from: k / 2 - 1, through: 0, by: -1) { siftDown(i) }
        if k > 0 {
            for i in Int32(k)..<Int32(n) where less(i, heap[0]) {
                heap[0] = i
                siftDown(0)
            }
        }
        heap.sort { less($0, $1) }
        return heap
    }
}

extension Executor {
    /// Sorts a chunk by its keys (stable), on all threads.
    func sortChunk(_ chunk: Chunk, _ keys: [SortKey]) throws -> Chunk {
        let ev = Evaluator(chunk: chunk)
        let columns = SortKeyColumns(try keys.map { try ev.evaluate($0.expr) }, keys)
        return chunk.gather(columns.sortedPermutation(threads: threads))
    }

    /// ORDER BY … LIMIT k: each morsel keeps its own first k rows (a heap pass, in parallel);
    /// only those candidates are sorted. Ties keep input order, as the full sort would.
    func topN(_ s: Stream, types: [DataType], keys: [SortKey], count k: Int) throws -> Chunk {
        let ms = s.morsels, ops = s.operators
        let results: [Result<Chunk, any Error>] = Parallel.map(ms.count, threads: threads) { i, _ in
            Result {
                let chunk = try ops.reduce(ms[i]) { try $1($0) }
                let ev = Evaluator(chunk: chunk)
                let columns = SortKeyColumns(try keys.map { try ev.evaluate($0.expr) }, keys)
                return chunk.gather(columns.smallest(k))
            }
        }
        let candidates = Chunk.concat(try results.map { try $0.get() }, types: types)
        let sorted = try sortChunk(candidates, keys)
        return sorted.slice(0..<min(k, sorted.count))
    }
}
