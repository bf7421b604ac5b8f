/// A hash join: the build side's rows are indexed by key once; probe morsels look up in parallel.
/// Keys that pack into one Int64 compare as words; others hash every key column and compare
/// column by column on a hash match.
final class HashJoin: @unchecked Sendable {
    // Safe to share: every field is set in init and only read by the probing threads.
    let kind: JoinKind
    let build: Chunk
    let buildKeys: KeyColumns
    let packing: KeyColumns.Packing?
    let packedBuild: [Int64]
    /// With a narrow key range, slot = key − base: no hashing, and a slot holds one key only.
    let directBase: Int64?
    let directRange: UInt64
    let buildHashes: [UInt64]
    let table: RowHashTable
    /// A blocked Bloom filter over the packed keys of a large hashed table (one 64-bit word per
    /// probe, two bits per key, about 8 bits per row): a probe that would miss usually stops
    /// here, in L2, instead of touching the table and then the key it points at.
    let bloom: [UInt64]
    let probeKeyExprs: [Expr]
    let residual: Expr?
    /// The build side is the plan's left input (inner joins may build on either side).
    let buildIsLeft: Bool
    let buildHasNullKey: Bool

    /// Builds the table on `threads` threads: keys are packed and hashed range by range, and rows
    /// go into the table partition by partition (each thread owns a slice of the buckets).
    init(kind: JoinKind, build: Chunk, buildKeys: [Expr], probeKeys: [Expr], residual: Expr?, buildIsLeft: Bool, threads: Int = 1) throws {
        self.kind = kind
        self.build = build
        self.residual = residual
        self.buildIsLeft = buildIsLeft
        probeKeyExprs = probeKeys
        let ev = Evaluator(chunk: build)
        let keys = KeyColumns(columns: try buildKeys.map { try ev.evaluate($0) })
        self.buildKeys = keys
        var hasNull = false
        for c in keys.columns where c.hasNulls { hasNull = true }
        buildHasNullKey = hasNull
        let n = build.count
        if !keys.columns.isEmpty, let p = KeyColumns.packing(keys.columns, threads: threads) {
            packing = p
            let (packed, valid) = p.pack(keys.columns, threads: threads)
            packedBuild = packed
            // The packed keys' range, each thread taking a slice.
            let rs = Parallel.ranges(n, threads: threads)
            let bounds = packed.withUnsafeBufferPointer { kp in
                let keys = Shared(kp)
                return Parallel.map(rs.count, threads: threads) { r, _ -> (Int64, Int64) in
                    var lo = Int64.max, hi = Int64.min
                    for i in rs[r] where valid?[i] ?? true { lo = min(lo, keys.value[i]); hi = max(hi, keys.value[i]) }
                    return (lo, hi)
                }
            }
            let lo = bounds.map(\.0).min() ?? .max, hi = bounds.map(\.1).max() ?? .min
            let range = lo <= hi ? UInt64(bitPattern: hi &- lo) : 0
            let direct = lo <= hi && range < UInt64(max(1 << 16, 4 * n)) && range < 1 << 26
            directBase = direct ? lo : nil
            directRange = direct ? range : 0
            buildHashes = packed.withUnsafeBufferPointer { kp in
                let keys = Shared(kp)
                return Parallel.fill(n, threads: threads) { r, out in
                    if direct { for i in r { out[i] = UInt64(bitPattern: keys.value[i] &- lo) } }
                    else { for i in r { out[i] = mix64(UInt64(bitPattern: keys.value[i])) } }
                }
            }
            // A small hashed table gets many empty slots (still in L1): most probes of a selective
            // join then stop at an empty slot, a branch the CPU predicts.
            let capacity = direct ? Int(range) + 1 : (n <= 4096 ? n * 16 : 0)
            table = RowHashTable(hashes: buildHashes, capacity: capacity, valid: valid, threads: threads)
            bloom = direct || n <= 4096 ? [] : Self.bloomFilter(buildHashes, valid)
        } else {
            packing = nil
            packedBuild = []
            directBase = nil
            directRange = 0
            buildHashes = keys.columns.isEmpty ? [UInt64](repeating: 0, count: n) : keys.hashes()
            table = RowHashTable(hashes: buildHashes, valid: keys.validRows(), threads: threads)
            bloom = []
        }
    }

    static func bloomFilter(_ hashes: [UInt64], _ valid: [Bool]?) -> [UInt64] {
        var words = 64
        while words * 8 < hashes.count { words <<= 1 }
        var bits = [UInt64](repeating: 0, count: words)
        let mask = words - 1
        bits.withUnsafeMutableBufferPointer { b in
            for (i, h) in hashes.enumerated() where valid?[i] ?? true { b[Int(truncatingIfNeeded: h >> 40) & mask] |= bloomBits(h) }
        }
        return bits
    }

    /// The two bits of a key's word; the word is picked by the hash's high bits, the table's slot
    /// by its low ones.
    @inline(__always) static func bloomBits(_ h: UInt64) -> UInt64 {
        (1 as UInt64) << (h & 63) | (1 as UInt64) << ((h >> 6) & 63)
    }

    /// Joins one probe morsel; the output columns are left's then right's (only left's for semi/anti).
    func probe(_ chunk: Chunk) throws -> Chunk {
        let n = chunk.count
        var probeIdx: [Int32] = []
        var buildIdx: [Int32] = []
        probeIdx.reserveCapacity(n)
        buildIdx.reserveCapacity(n)
        if probeKeyExprs.isEmpty {
            // Cross product.
            for i in 0..<n { for j in 0..<build.count { probeIdx.append(Int32(i)); buildIdx.append(Int32(j)) } }
        } else {
            let ev = Evaluator(chunk: chunk)
            let keys = KeyColumns(columns: try probeKeyExprs.map { try ev.evaluate($0) })
            matchPairs(keys, n, &probeIdx, &buildIdx)
        }
        // Semi and anti joins without a residual need only whether a row matched.
        var matched: [Bool]? = nil
        if let residual {
            let pairs = combine(chunk, probeIdx, buildIdx)
            let keep = try Evaluator(chunk: pairs).select(residual)
            if kind == .inner || kind == .cross {
                return pairs.gather(keep)
            }
            probeIdx = keep.map { probeIdx[Int($0)] }
            buildIdx = keep.map { buildIdx[Int($0)] }
        }
        switch kind {
        case .inner, .cross:
            return combine(chunk, probeIdx, buildIdx)
        case .left:
            var m = [Bool](repeating: false, count: n)
            for p in probeIdx { m[Int(p)] = true }
            // Unmatched left rows once each, with nulls on the right; then the matches.
            var p2 = probeIdx, b2 = buildIdx
            for i in 0..<n where !m[i] { p2.append(Int32(i)); b2.append(-1) }
            return combine(chunk, p2, b2)
        case .semi, .anti, .antiNullAware:
            matched = [Bool](repeating: false, count: n)
            for p in probeIdx { matched![Int(p)] = true }
            var keep: [Int32] = []
            if kind == .semi {
                for i in 0..<n where matched![i] { keep.append(Int32(i)) }
            } else if kind == .antiNullAware {
                // x NOT IN (…null…) is never true; a null x is never true against a non-empty set.
                if buildHasNullKey { return chunk.gather([]) }
                let ev = Evaluator(chunk: chunk)
                let probeKeys = try probeKeyExprs.map { try ev.evaluate($0) }
                for i in 0..<n where !matched![i] && (build.count == 0 || !probeKeys.contains { !$0.isValid(i) }) { keep.append(Int32(i)) }
            } else {
                for i in 0..<n where !matched![i] { keep.append(Int32(i)) }
            }
            return chunk.gather(keep)
        }
    }

    func matchPairs(_ keys: KeyColumns, _ n: Int, _ probeIdx: inout [Int32], _ buildIdx: inout [Int32], allMatches: Bool = false) {
        let semiOnly = (kind == .semi || kind == .anti || kind == .antiNullAware) && residual == nil && !allMatches
        let mask = table.mask
        table.heads.withUnsafeBufferPointer { heads in
            table.next.withUnsafeBufferPointer { next in
                if let packing, build.count > 0 {
                    let (packed, valid) = packing.pack(keys.columns)
                    probePacked(packed, valid, heads, next, semiOnly, &probeIdx, &buildIdx)
                } else {
                    let hashes = keys.hashes()
                    let probeAccess = keys.columns.map { KeyAccess($0) }
                    let buildAccess = buildKeys.columns.map { KeyAccess($0) }
                    for i in 0..<n where !keys.hasNull(i) {
                        let h = hashes[i]
                        var j = heads[Int(truncatingIfNeeded: h) & mask]
                        while j >= 0 {
                            if buildHashes[Int(j)] == h && KeyColumns.equal(buildAccess, Int(j), probeAccess, i) {
                                probeIdx.append(Int32(i)); buildIdx.append(j)
                                if semiOnly { break }
                            }
                            j = next[Int(j)]
                        }
                    }
                }
            }
        }
    }

    /// Probes packed keys. The first candidate of each row is written without a branch (the
    /// write always happens; the count advances on a match), so a probe that mostly misses does
    /// not pay a mispredicted branch per row; rows whose slot chains further take a slow loop.
    private func probePacked(_ packed: [Int64], _ valid: [Bool]?, _ heads: UnsafeBufferPointer<Int32>, _ next: UnsafeBufferPointer<Int32>,
                             _ semiOnly: Bool, _ probeIdx: inout [Int32], _ buildIdx: inout [Int32]) {
        let n = packed.count
        let firstProbe = UnsafeMutablePointer<Int32>.allocate(capacity: max(1, n))
        let firstBuild = UnsafeMutablePointer<Int32>.allocate(capacity: max(1, n))
        defer { firstProbe.deallocate(); firstBuild.deallocate() }
        var m = 0
        var extraProbe: [Int32] = [], extraBuild: [Int32] = []
        let mask = table.mask
        packed.withUnsafeBufferPointer { kp in
            packedBuild.withUnsafeBufferPointer { bk in
                if let base = directBase {
                    // Slot = key − base holds only that key: a non-empty slot is a match.
                    let range = directRange
                    for i in 0..<n {
                        let d = UInt64(bitPattern: kp[i] &- base)
                        let j = d <= range ? heads[Int(d)] : -1
                        let ok = j >= 0 && (valid == nil || valid![i])
                        firstProbe[m] = Int32(i)
                        firstBuild[m] = j
                        m &+= ok ? 1 : 0
                        if ok && !semiOnly {
                            var c = next[Int(j)]
                            while c >= 0 { extraProbe.append(Int32(i)); extraBuild.append(c); c = next[Int(c)] }
                        }
                    }
                } else if !bloom.isEmpty {
                    bloom.withUnsafeBufferPointer { bf in
                        let bmask = bf.count - 1
                        for i in 0..<n where valid?[i] ?? true {
                            let k = kp[i]
                            let h = mix64(UInt64(bitPattern: k))
                            let bits = Self.bloomBits(h)
                            guard bf[Int(truncatingIfNeeded: h >> 40) & bmask] & bits == bits else { continue }
                            var c = heads[Int(truncatingIfNeeded: h) & mask]
                            while c >= 0 {
                                if bk[Int(c)] == k {
                                    firstProbe[m] = Int32(i)
                                    firstBuild[m] = c
                                    m += 1
                                    c = next[Int(c)]
                                    if semiOnly { break }
                                    // Further rows with this key.
                                    while c >= 0 {
                                        if bk[Int(c)] == k { extraProbe.append(Int32(i)); extraBuild.append(c) }
                                        c = next[Int(c)]
                                    }
                                    break
                                }
                                c = next[Int(c)]
                            }
                        }
                    }
                } else {
                    for i in 0..<n {
                        let k = kp[i]
                        let j = heads[Int(truncatingIfNeeded: mix64(UInt64(bitPattern: k))) & mask]
                        let jj = Int(max(j, 0))
                        let ok = j >= 0 && bk[jj] == k && (valid == nil || valid![i])
                        firstProbe[m] = Int32(i)
                        firstBuild[m] = j
                        m &+= ok ? 1 : 0
                        // The slot's chain goes on: more rows with this key, or other keys.
                        if j >= 0 && next[jj] >= 0 && (!ok || !semiOnly) && (valid == nil || valid![i]) {
                            var c = next[jj]
                            while c >= 0 {
                                if bk[Int(c)] == k {
                                    extraProbe.append(Int32(i)); extraBuild.append(c)
                                    if semiOnly { break }
                                }
                                c = next[Int(c)]
                            }
                        }
                    }
                }
            }
        }
        probeIdx.append(contentsOf: UnsafeBufferPointer(start: firstProbe, count: m))
        buildIdx.append(contentsOf: UnsafeBufferPointer(start: firstBuild, count: m))
        probeIdx.append(contentsOf: extraProbe)
        buildIdx.append(contentsOf: extraBuild)
    }

    /// The joined rows of pairs, in the plan's column order (left, then right).
    private func combine(_ probe: Chunk, _ probeIdx: [Int32], _ buildIdx: [Int32]) -> Chunk {
        let p = probe.gather(probeIdx)
        let b = build.gather(buildIdx)
        let cols = buildIsLeft ? b.columns + p.columns : p.columns + b.columns
        return Chunk(columns: cols, count: probeIdx.count)
    }
}

/// A semi, anti or left join that builds its hash table on the left (smaller) input and probes
/// with the right, marking the left rows that match (DuckDB's RIGHT_SEMI and RIGHT_ANTI; Q4 and
/// Q22 keep a few thousand orders or customers against millions of right-side rows). Each thread
/// marks its own array; `finish` merges them and emits the left rows.
final class LeftBuildJoin: @unchecked Sendable {
    // Safe to share: set in init, read by probing threads; marks are per worker.
    let kind: JoinKind
    let left: Chunk
    let table: HashJoin
    let rightKeys: [Expr]
    let residual: Expr?

    init(kind: JoinKind, left: Chunk, leftKeys: [Expr], rightKeys: [Expr], residual: Expr?, threads: Int = 1) throws {
        self.kind = kind
        self.left = left
        self.rightKeys = rightKeys
        self.residual = residual
        table = try HashJoin(kind: .inner, build: left, buildKeys: leftKeys, probeKeys: rightKeys, residual: nil, buildIsLeft: true, threads: threads)
    }

    /// Probes with one right morsel; returns the joined rows for a left join (nothing otherwise).
    func probe(_ right: Chunk, marks: inout [Bool]) throws -> Chunk? {
        var probeIdx: [Int32] = [], buildIdx: [Int32] = []
        let ev = Evaluator(chunk: right)
        let keys = KeyColumns(columns: try rightKeys.map { try ev.evaluate($0) })
        table.matchPairs(keys, right.count, &probeIdx, &buildIdx, allMatches: true)
        var pairs: Chunk? = nil
        if let residual {
            let combined = Chunk(columns: left.gather(buildIdx).columns + right.gather(probeIdx).columns, count: probeIdx.count)
            let keep = try Evaluator(chunk: combined).select(residual)
            buildIdx = keep.map { buildIdx[Int($0)] }
            probeIdx = keep.map { probeIdx[Int($0)] }
            if kind == .left { pairs = combined.gather(keep) }
        }
        for b in buildIdx { marks[Int(b)] = true }
        guard kind == .left else { return nil }
        return pairs ?? Chunk(columns: left.gather(buildIdx).columns + right.gather(probeIdx).columns, count: probeIdx.count)
    }

    /// The left rows the join keeps, after every right morsel was probed (for a left join: the
    /// unmatched rows with nulls on the right, shaped like `rightShape`).
    func finish(_ marks: [Bool], rightShape: Chunk) -> Chunk {
        var keep: [Int32] = []
        let wantMatched = kind == .semi
        for i in 0..<left.count where marks[i] == wantMatched || (kind == .left && !marks[i]) { keep.append(Int32(i)) }
        if kind != .left { return left.gather(keep) }
        let nulls = [Int32](repeating: -1, count: keep.count)
        return Chunk(columns: left.gather(keep).columns + rightShape.gather(nulls).columns, count: keep.count)
    }
}
