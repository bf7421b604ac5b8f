/// The state of a hash aggregation on one thread: the groups' keys, a table from key to group id,
/// and one accumulator per aggregate indexed by group id. Threads aggregate their morsels apart;
/// `merge` folds one state into another at the end (DuckDB's local/global sink states).
final class AggregateState {
    let keyTypes: [DataType]
    let keys: [ColumnBuilder]
    var accumulators: [any Accumulator]
    private var slots: [Int32]
    private var groupHashes: [UInt64] = []
    private var mask: Int
    var groupCount = 0

    init(keyTypes: [DataType], aggregates: [Aggregate], argumentTypes: [DataType?]) {
        self.keyTypes = keyTypes
        keys = keyTypes.map { ColumnBuilder($0) }
        accumulators = zip(aggregates, argumentTypes).map { makeAccumulator($0.function, $1) }
        slots = [Int32](repeating: -1, count: 1024)
        mask = 1023
        if keyTypes.isEmpty { newGroup(hash: 0) }  // a global aggregate has one row even over no input
    }

    private func newGroup(hash: UInt64) {
        groupHashes.append(hash)
        groupCount += 1
        for a in accumulators { a.grow(groupCount) }
    }

    private func grow() {
        let cap = slots.count * 2
        slots = [Int32](repeating: -1, count: cap)
        mask = cap - 1
        for g in 0..<groupCount {
            var s = Int(truncatingIfNeeded: groupHashes[g]) & mask
            while slots[s] >= 0 { s = (s + 1) & mask }
            slots[s] = Int32(g)
        }
    }

    /// The group id of every row of `keyColumns`, creating groups as needed.
    func groupIDs(_ keyColumns: [Column], count n: Int) -> [Int32] {
        if keyTypes.isEmpty { return [Int32](repeating: 0, count: n) }
        var ids = [Int32](repeating: 0, count: n)
        let kc = KeyColumns(columns: keyColumns)
        // One integer key: compare words, no per-column dispatch.
        if keyColumns.count == 1, keyTypes[0].isIntegerBacked, !keyColumns[0].hasNulls {
            keyColumns[0].withInts { a in
                for i in 0..<n {
                    let k = a[i]
                    let h = hashInt(k)
                    var s = Int(truncatingIfNeeded: h) & mask
                    while true {
                        let g = slots[s]
                        if g < 0 {
                            keys[0].appendInt(k)
                            slots[s] = Int32(groupCount)
                            ids[i] = Int32(groupCount)
                            newGroup(hash: h)
                            if groupCount * 2 > slots.count { grow() }
                            break
                        }
                        if keys[0].ints[Int(g)] == k { ids[i] = g; break }
                        s = (s + 1) & mask
                    }
                }
            }
            return ids
        }
        let hashes = kc.hashes()
        let readers = keyColumns
        for i in 0..<n {
            let h = hashes[i]
            var s = Int(truncatingIfNeeded: h) & mask
            while true {
                let g = slots[s]
                if g < 0 {
                    for (c, b) in keys.enumerated() { b.append(readers[c], row: i) }
                    slots[s] = Int32(groupCount)
                    ids[i] = Int32(groupCount)
                    newGroup(hash: h)
                    if groupCount * 2 > slots.count { grow() }
                    break
                }
                if groupHashes[Int(g)] == h && storedEqual(Int(g), readers, i) { ids[i] = g; break }
                s = (s + 1) & mask
            }
        }
        return ids
    }

    private func storedEqual(_ g: Int, _ cols: [Column], _ i: Int) -> Bool {
        for (c, b) in keys.enumerated() {
            let col = cols[c]
            let valid = col.isValid(i)
            let stored = b.validity?[g] ?? true
            if valid != stored { return false }
            if !valid { continue }
            switch col.storage {
            case .ints(let a): if a[col.offset + i] != b.ints[g] { return false }
            case .doubles(let a): if a[col.offset + i] != b.doubles[g] { return false }
            case .bools(let a): if a[col.offset + i] != b.bools[g] { return false }
            case .strings:
                let eq = col.withStrings { r in
                    let (p, l) = r.pointer(i)
                    return bytesEqual(p, l, b.strings.bytes + Int(b.strings.refs[g]), Int(b.strings.lengths[g]))
                }
                if !eq { return false }
            }
        }
        return true
    }

    func update(keyColumns: [Column], arguments: [Column?], count n: Int) {
        let ids = groupIDs(keyColumns, count: n)
        ids.withUnsafeBufferPointer { idp in
            for (a, arg) in zip(accumulators, arguments) { a.update(idp, arg) }
        }
    }

    /// Folds another thread's groups into this state.
    func merge(_ other: AggregateState) {
        guard other.groupCount > 0 else { return }
        let otherKeys = other.keys.map { $0.finish() }
        let ids = groupIDs(otherKeys, count: other.groupCount)
        ids.withUnsafeBufferPointer { idp in
            for (a, b) in zip(accumulators, other.accumulators) { a.merge(b, idp) }
        }
    }

    func finish() -> Chunk {
        Chunk(columns: keys.map { $0.finish() } + accumulators.map { $0.finish() }, count: groupCount)
    }
}

extension ColumnBuilder {
    /// Appends row i of a column of the same type.
    func append(_ c: Column, row i: Int) {
        if !c.isValid(i) { appendNull(); return }
        switch c.storage {
        case .ints(let a): appendInt(a[c.offset + i])
        case .doubles(let a): appendDouble(a[c.offset + i])
        case .bools(let a): appendBool(a[c.offset + i])
        case .strings: c.withStrings { r in let (p, l) = r.pointer(i); appendString(p, l) }
        }
    }
}

/// Per-group running state of one aggregate function.
protocol Accumulator: AnyObject {
    func grow(_ groups: Int)
    func update(_ ids: UnsafeBufferPointer<Int32>, _ arg: Column?)
    func merge(_ other: any Accumulator, _ ids: UnsafeBufferPointer<Int32>)
    func finish() -> Column
}

func makeAccumulator(_ f: AggregateFunction, _ t: DataType?) -> any Accumulator {
    switch f {
    case .countStar: return CountAccumulator(countNulls: true)
    case .count: return CountAccumulator(countNulls: false)
    case .countDistinct: return DistinctCountAccumulator()
    case .sum, .avg:
        if t == .double { return DoubleSumAccumulator(average: f == .avg) }
        return IntSumAccumulator(type: t ?? .int64, average: f == .avg)
    case .min, .max: return MinMaxAccumulator(type: t ?? .int64, isMin: f == .min)
    }
}

final class CountAccumulator: Accumulator {
    let countNulls: Bool
    var counts: [Int64] = []
    init(countNulls: Bool) { self.countNulls = countNulls }
    func grow(_ groups: Int) { counts.append(contentsOf: repeatElement(0, count: groups - counts.count)) }
    func update(_ ids: UnsafeBufferPointer<Int32>, _ arg: Column?) {
        counts.withUnsafeMutableBufferPointer { c in
            if countNulls || arg == nil || arg!.validity == nil {
                for g in ids { c[Int(g)] += 1 }
            } else {
                arg!.withValidity { v in for (i, g) in ids.enumerated() where v![i] { c[Int(g)] += 1 } }
            }
        }
    }
    func merge(_ other: any Accumulator, _ ids: UnsafeBufferPointer<Int32>) {
        let o = other as! CountAccumulator
        for (k, g) in ids.enumerated() { counts[Int(g)] += o.counts[k] }
    }
    func finish() -> Column { Column(ints: counts) }
}

/// Sums integers and decimals exactly in 128 bits; avg divides at the end.
final class IntSumAccumulator: Accumulator {
    let type: DataType
    let average: Bool
    var sums: [Int128] = []
    var counts: [Int64] = []
    init(type: DataType, average: Bool) { self.type = type; self.average = average }
    func grow(_ groups: Int) {
        sums.append(contentsOf: repeatElement(0, count: groups - sums.count))
        counts.append(contentsOf: repeatElement(0, count: groups - counts.count))
    }
    func update(_ ids: UnsafeBufferPointer<Int32>, _ arg: Column?) {
        guard let arg else { return }
        sums.withUnsafeMutableBufferPointer { s in
            counts.withUnsafeMutableBufferPointer { c in
                arg.withInts { a in
                    arg.withValidity { v in
                        if let v {
                            for (i, g) in ids.enumerated() where v[i] { s[Int(g)] &+= Int128(a[i]); c[Int(g)] += 1 }
                        } else {
                            for (i, g) in ids.enumerated() { s[Int(g)] &+= Int128(a[i]); c[Int(g)] += 1 }
                        }
                    }
                }
            }
        }
    }
    func merge(_ other: any Accumulator, _ ids: UnsafeBufferPointer<Int32>) {
        let o = other as! IntSumAccumulator
        for (k, g) in ids.enumerated() { sums[Int(g)] &+= o.sums[k]; counts[Int(g)] += o.counts[k] }
    }
    func finish() -> Column {
        let valid = counts.contains(0) ? counts.map { $0 > 0 } : nil
        let scale = pow10Double(type.scale)
        if average {
            return Column(doubles: zip(sums, counts).map { s, c in c == 0 ? 0 : Double(s) / scale / Double(c) }, validity: valid)
        }
        if sums.allSatisfy({ $0 >= Int128(Int64.min) && $0 <= Int128(Int64.max) }) {
            return Column(ints: sums.map { Int64($0) }, type: type, validity: valid)
        }
        // Too large for 64 bits: report as a double rather than wrap.
        return Column(doubles: sums.map { Double($0) / scale }, validity: valid)
    }
}

final class DoubleSumAccumulator: Accumulator {
    let average: Bool
    var sums: [Double] = []
    var counts: [Int64] = []
    init(average: Bool) { self.average = average }
    func grow(_ groups: Int) {
        sums.append(contentsOf: repeatElement(0, count: groups - sums.count))
        counts.append(contentsOf: repeatElement(0, count: groups - counts.count))
    }
    func update(_ ids: UnsafeBufferPointer<Int32>, _ arg: Column?) {
        guard let arg else { return }
        sums.withUnsafeMutableBufferPointer { s in
            counts.withUnsafeMutableBufferPointer { c in
                arg.withDoubles { a in
                    arg.withValidity { v in
                        for (i, g) in ids.enumerated() where v?[i] ?? true { s[Int(g)] += a[i]; c[Int(g)] += 1 }
                    }
                }
            }
        }
    }
    func merge(_ other: any Accumulator, _ ids: UnsafeBufferPointer<Int32>) {
        let o = other as! DoubleSumAccumulator
        for (k, g) in ids.enumerated() { sums[Int(g)] += o.sums[k]; counts[Int(g)] += o.counts[k] }
    }
    func finish() -> Column {
        let valid = counts.contains(0) ? counts.map { $0 > 0 } : nil
        if average { return Column(doubles: zip(sums, counts).map { $1 == 0 ? 0 : $0 / Double($1) }, validity: valid) }
        return Column(doubles: sums, validity: valid)
    }
}

final class MinMaxAccumulator: Accumulator {
    let type: DataType
    let isMin: Bool
    var best: [Value] = []
    var ints: [Int64] = []
    var doubles: [Double] = []
    var has: [Bool] = []
    init(type: DataType, isMin: Bool) { self.type = type; self.isMin = isMin }
    func grow(_ groups: Int) {
        let k = groups - has.count
        has.append(contentsOf: repeatElement(false, count: k))
        switch type {
        case .double: doubles.append(contentsOf: repeatElement(0, count: k))
        case .string, .bool: best.append(contentsOf: repeatElement(.null, count: k))
        default: ints.append(contentsOf: repeatElement(0, count: k))
        }
    }
    func update(_ ids: UnsafeBufferPointer<Int32>, _ arg: Column?) {
        guard let arg else { return }
        switch type {
        case .double:
            arg.withDoubles { a in arg.withValidity { v in
                for (i, g) in ids.enumerated() where v?[i] ?? true {
                    let j = Int(g)
                    if !has[j] || (isMin ? a[i] < doubles[j] : a[i] > doubles[j]) { doubles[j] = a[i]; has[j] = true }
                }
            } }
        case .string, .bool:
            for (i, g) in ids.enumerated() where arg.isValid(i) { offer(Int(g), arg.value(at: i)) }
        default:
            arg.withInts { a in arg.withValidity { v in
                for (i, g) in ids.enumerated() where v?[i] ?? true {
                    let j = Int(g)
                    if !has[j] || (isMin ? a[i] < ints[j] : a[i] > ints[j]) { ints[j] = a[i]; has[j] = true }
                }
            } }
        }
    }
    private func offer(_ j: Int, _ v: Value) {
        if !has[j] || (compareValues(v, best[j]) < 0) == isMin && compareValues(v, best[j]) != 0 { best[j] = v; has[j] = true }
    }
    func merge(_ other: any Accumulator, _ ids: UnsafeBufferPointer<Int32>) {
        let o = other as! MinMaxAccumulator
        for (k, g) in ids.enumerated() where o.has[k] {
            let j = Int(g)
            switch type {
            case .double: if !has[j] || (isMin ? o.doubles[k] < doubles[j] : o.doubles[k] > doubles[j]) { doubles[j] = o.doubles[k]; has[j] = true }
            case .string, .bool: offer(j, o.best[k])
            default: if !has[j] || (isMin ? o.ints[k] < ints[j] : o.ints[k] > ints[j]) { ints[j] = o.ints[k]; has[j] = true }
            }
        }
    }
    func finish() -> Column {
        let valid = has.contains(false) ? has : nil
        switch type {
        case .double: return Column(doubles: doubles, validity: valid)
        case .string, .bool:
            let b = ColumnBuilder(type, capacity: best.count)
            for v in best { b.append(v) }
            return b.finish()
        default: return Column(ints: ints, type: type, validity: valid)
        }
    }
}

final class DistinctCountAccumulator: Accumulator {
    var sets: [Set<Value>] = []
    var intSets: [Set<Int64>] = []
    func grow(_ groups: Int) {
        sets.append(contentsOf: repeatElement([], count: groups - sets.count))
        intSets.append(contentsOf: repeatElement([], count: groups - intSets.count))
    }
    func update(_ ids: UnsafeBufferPointer<Int32>, _ arg: Column?) {
        guard let arg else { return }
        if arg.type.isIntegerBacked {
            arg.withInts { a in for (i, g) in ids.enumerated() where arg.isValid(i) { intSets[Int(g)].insert(a[i]) } }
        } else {
            for (i, g) in ids.enumerated() where arg.isValid(i) { sets[Int(g)].insert(arg.value(at: i)) }
        }
    }
    func merge(_ other: any Accumulator, _ ids: UnsafeBufferPointer<Int32>) {
        let o = other as! DistinctCountAccumulator
        for (k, g) in ids.enumerated() {
            sets[Int(g)].formUnion(o.sets[k])
            intSets[Int(g)].formUnion(o.intSets[k])
        }
    }
    func finish() -> Column { Column(ints: zip(sets, intSets).map { Int64($0.count + $1.count) }) }
}
