import Foundation

/// The state of a hash aggregation on one thread: the groups' keys, a table from key to group id,
/// and one accumulator per aggregate indexed by group id. Threads aggregate their morsels apart;
/// `merge` folds one state into another at the end (DuckDB's local/global sink states).
final class AggregateState {
    let keyTypes: [DataType]
    /// The groups' key values; a struct, taken out of the object while a morsel is grouped so the
    /// hot loop works on a local value (no per-access exclusivity checks on class properties).
    private var keys: KeyStore
    var accumulators: [any Accumulator]
    private var slots: [Int32]
    /// With one integer key, the key of each slot's group (so probes touch one array).
    private var slotKeys: [Int64]
    /// The hash of each slot's group, so a probe does not look up the group to compare hashes.
    private var slotHashes: [UInt64]
    private var nullGroup: Int32 = -1
    private(set) var groupHashes: [UInt64] = []
    private var mask: Int
    var groupCount = 0

    init(keyTypes: [DataType], aggregates: [Aggregate], argumentTypes: [DataType?]) {
        self.keyTypes = keyTypes
        keys = KeyStore(keyTypes)
        accumulators = zip(aggregates, argumentTypes).map { makeAccumulator($0.function, $1) }
        slots = [Int32](repeating: -1, count: 1024)
        slotKeys = [Int64](repeating: 0, count: 1024)
        slotHashes = [UInt64](repeating: 0, count: 1024)
        mask = 1023
        if keyTypes.isEmpty { newGroup(hash: 0) }  // a global aggregate has one row even over no input
    }

    private func newGroup(hash: UInt64) {
        groupHashes.append(hash)
        groupCount += 1
        for a in accumulators { a.grow(groupCount) }
    }

    /// Grows the table so that `extra` more groups fit under half load; no growth mid-loop.
    private func reserve(_ extra: Int) {
        guard (groupCount + extra) * 2 > slots.count else { return }
        var cap = slots.count
        while (groupCount + extra) * 2 > cap { cap *= 2 }
        var newSlots = [Int32](repeating: -1, count: cap)
        var newKeys = [Int64](repeating: 0, count: cap)
        var newHashes = [UInt64](repeating: 0, count: cap)
        let m = cap - 1
        let oneInt = keyTypes.count == 1 && keyTypes[0].isIntegerBacked
        let ints = oneInt ? keys.ints[0] : []
        groupHashes.withUnsafeBufferPointer { gh in
            newSlots.withUnsafeMutableBufferPointer { sp in
                newKeys.withUnsafeMutableBufferPointer { kp in
                    newHashes.withUnsafeMutableBufferPointer { hp in
                        for g in 0..<groupCount {
                            let h = gh[g]
                            var s = Int(truncatingIfNeeded: h) & m
                            while sp[s] >= 0 { s = (s + 1) & m }
                            sp[s] = Int32(g)
                            hp[s] = h
                            if oneInt { kp[s] = ints[g] }
                        }
                    }
                }
            }
        }
        slots = newSlots
        slotKeys = newKeys
        slotHashes = newHashes
        mask = m
    }

    /// The group id of every row of `keyColumns`, creating groups as needed.
    func groupIDs(_ keyColumns: [Column], count n: Int) -> [Int32] {
        if keyTypes.isEmpty { return [Int32](repeating: 0, count: n) }
        reserve(n)
        var ids = [Int32](repeating: 0, count: n)
        // One integer key: each slot holds its key, so a probe compares one word in one array.
        if keyColumns.count == 1, keyTypes[0].isIntegerBacked, !keyColumns[0].hasNulls {
            var newKeys: [Int64] = []
            var newHashes: [UInt64] = []
            let first = groupCount
            let nullGroup = self.nullGroup
            let mask = self.mask
            keyColumns[0].withInts { a in
                ids.withUnsafeMutableBufferPointer { idp in
                    slots.withUnsafeMutableBufferPointer { sp in
                        slotKeys.withUnsafeMutableBufferPointer { kp in
                          slotHashes.withUnsafeMutableBufferPointer { hp in
                            for i in 0..<n {
                                let k = a[i]
                                let h = hashInt(k)
                                var s = Int(truncatingIfNeeded: h) & mask
                                while true {
                                    let g = sp[s]
                                    if g < 0 {
                                        let id = Int32(first + newKeys.count)
                                        sp[s] = id
                                        kp[s] = k
                                        hp[s] = h
                                        idp[i] = id
                                        newKeys.append(k)
                                        newHashes.append(h)
                                        break
                                    }
                                    if kp[s] == k && g != nullGroup { idp[i] = g; break }
                                    s = (s + 1) & mask
                                }
                            }
                          }
                        }
                    }
                }
            }
            keys.ints[0].append(contentsOf: newKeys)
            keys.valid[0].append(contentsOf: repeatElement(true, count: newKeys.count))
            groupHashes.append(contentsOf: newHashes)
            groupCount += newKeys.count
            for a in accumulators { a.grow(groupCount) }
            return ids
        }
        let kc = KeyColumns(columns: keyColumns)
        let hashes = kc.hashes()
        let access = keyColumns.map { KeyAccess($0) }
        let oneInt = keyTypes.count == 1 && keyTypes[0].isIntegerBacked
        let mask = self.mask
        var created: [UInt64] = []
        let first = groupCount
        var store = keys
        keys = KeyStore([])
        var nullGroup = self.nullGroup
        slots.withUnsafeMutableBufferPointer { sp in
            slotHashes.withUnsafeMutableBufferPointer { hp in
                slotKeys.withUnsafeMutableBufferPointer { kp in
                    for i in 0..<n {
                        let h = hashes[i]
                        var s = Int(truncatingIfNeeded: h) & mask
                        while true {
                            let g = sp[s]
                            if g < 0 {
                                let id = first + created.count
                                store.append(access, i)
                                sp[s] = Int32(id)
                                hp[s] = h
                                if oneInt { kp[s] = store.ints[0][id] }
                                if access.count == 1, !access[0].isValid(i) { nullGroup = Int32(id) }
                                ids[i] = Int32(id)
                                created.append(h)
                                break
                            }
                            if hp[s] == h && store.equal(Int(g), access, i) { ids[i] = g; break }
                            s = (s + 1) & mask
                        }
                    }
                }
            }
        }
        keys = store
        self.nullGroup = nullGroup
        groupHashes.append(contentsOf: created)
        groupCount += created.count
        for a in accumulators { a.grow(groupCount) }
        return ids
    }

    func update(keyColumns: [Column], arguments: [Column?], count n: Int) {
        let ids = groupIDs(keyColumns, count: n)
        ids.withUnsafeBufferPointer { idp in
            for (a, arg) in zip(accumulators, arguments) { a.update(idp, arg) }
        }
    }

    /// Folds another thread's groups into this state.
    func merge(_ other: AggregateState) {
        merge(other, keys: other.keyColumns(), rows: Array(0..<Int32(other.groupCount))[...])
    }

    /// Folds the groups `rows` of another state (whose key columns are `otherKeys`) into this one.
    func merge(_ other: AggregateState, keys otherKeys: [Column], rows: ArraySlice<Int32>) {
        guard !rows.isEmpty else { return }
        rows.withUnsafeBufferPointer { r in
            let ids = groupIDs(otherKeys.map { $0.gather(r) }, count: r.count)
            ids.withUnsafeBufferPointer { idp in
                for (a, b) in zip(accumulators, other.accumulators) { a.merge(b, idp, from: r) }
            }
        }
    }

    /// The groups' key columns, in group-id order.
    func keyColumns() -> [Column] { keys.finish() }

    func finish() throws -> Chunk {
        if accumulators.contains(where: { ($0 as? IntSumAccumulator)?.overflows == true }) {
            throw DataError(.type, "a sum exceeds the 64-bit range of its integer or DECIMAL(18,s) type; cast its argument to DOUBLE")
        }
        return Chunk(columns: keys.finish() + accumulators.map { $0.finish() }, count: groupCount)
    }
}

/// Group keys column by column, in plain arrays.
struct KeyStore {
    let types: [DataType]
    var ints: [[Int64]]
    var doubles: [[Double]]
    var bools: [[Bool]]
    var bytes: [[UInt8]]
    var starts: [[Int]]
    var lengths: [[Int]]
    var valid: [[Bool]]

    init(_ types: [DataType]) {
        self.types = types
        let k = types.count
        ints = Array(repeating: [], count: k)
        doubles = Array(repeating: [], count: k)
        bools = Array(repeating: [], count: k)
        bytes = Array(repeating: [], count: k)
        starts = Array(repeating: [], count: k)
        lengths = Array(repeating: [], count: k)
        valid = Array(repeating: [], count: k)
    }

    mutating func append(_ cols: [KeyAccess], _ i: Int) {
        for c in cols.indices {
            let a = cols[c]
            let ok = a.isValid(i)
            valid[c].append(ok)
            switch a.kind {
            case .ints(let x): ints[c].append(ok ? x[a.offset + i] : 0)
            case .doubles(let x): doubles[c].append(ok ? x[a.offset + i] : 0)
            case .bools(let x): bools[c].append(ok ? x[a.offset + i] : false)
            case .strings(let r):
                let (p, l) = ok ? r.pointer(a.offset + i) : (UnsafePointer<UInt8>(bitPattern: 1)!, 0)
                starts[c].append(bytes[c].count)
                lengths[c].append(l)
                bytes[c].append(contentsOf: UnsafeBufferPointer(start: p, count: l))
            }
        }
    }

    func equal(_ g: Int, _ cols: [KeyAccess], _ i: Int) -> Bool {
        for c in cols.indices {
            let a = cols[c]
            let ok = a.isValid(i)
            if ok != valid[c][g] { return false }
            if !ok { continue }
            switch a.kind {
            case .ints(let x): if x[a.offset + i] != ints[c][g] { return false }
            case .doubles(let x): if x[a.offset + i] != doubles[c][g] { return false }
            case .bools(let x): if x[a.offset + i] != bools[c][g] { return false }
            case .strings(let r):
                let (p, l) = r.pointer(a.offset + i)
                if l != lengths[c][g] { return false }
                let same = bytes[c].withUnsafeBufferPointer { b in l == 0 || memcmp(p, b.baseAddress! + starts[c][g], l) == 0 }
                if !same { return false }
            }
        }
        return true
    }

    func finish() -> [Column] {
        types.indices.map { c in
            let v: [Bool]? = valid[c].contains(false) ? valid[c] : nil
            switch types[c] {
            case .double: return Column(type: .double, storage: .doubles(doubles[c]), validity: v)
            case .bool: return Column(type: .bool, storage: .bools(bools[c]), validity: v)
            case .string:
                var b = StringArrayBuilder(capacity: bytes[c].count + 1, rows: lengths[c].count)
                bytes[c].withUnsafeBufferPointer { p in
                    for g in lengths[c].indices {
                        if lengths[c][g] == 0 { b.appendEmpty() } else { b.append(p.baseAddress! + starts[c][g], lengths[c][g]) }
                    }
                }
                return Column(type: .string, storage: .strings(b.finish()), validity: v)
            default: return Column(type: types[c], storage: .ints(ints[c]), validity: v)
            }
        }
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
    /// Folds other's group `rows[k]` into group `ids[k]`, for every k.
    func merge(_ other: any Accumulator, _ ids: UnsafeBufferPointer<Int32>, from rows: UnsafeBufferPointer<Int32>)
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
    func merge(_ other: any Accumulator, _ ids: UnsafeBufferPointer<Int32>, from rows: UnsafeBufferPointer<Int32>) {
        let o = other as! CountAccumulator
        o.counts.withUnsafeBufferPointer { oc in counts.withUnsafeMutableBufferPointer { c in
            for (g, k) in zip(ids, rows) { c[Int(g)] += oc[Int(k)] }
        } }
    }
    func finish() -> Column { Column(ints: counts) }
}

// The two sum accumulators stay separate concrete classes: a generic base class shared their
// code, but its methods ran unspecialized (witness calls per element) and TPC-H Q18 took twice as long.

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
    func merge(_ other: any Accumulator, _ ids: UnsafeBufferPointer<Int32>, from rows: UnsafeBufferPointer<Int32>) {
        let o = other as! IntSumAccumulator
        o.sums.withUnsafeBufferPointer { os in o.counts.withUnsafeBufferPointer { oc in
            sums.withUnsafeMutableBufferPointer { s in counts.withUnsafeMutableBufferPointer { c in
                for (g, k) in zip(ids, rows) { s[Int(g)] &+= os[Int(k)]; c[Int(g)] += oc[Int(k)] }
            } }
        } }
    }
    func finish() -> Column {
        let valid = counts.contains(0) ? counts.map { $0 > 0 } : nil
        if average {
            let scale = pow10Double(type.scale)
            return Column(doubles: zip(sums, counts).map { s, c in c == 0 ? 0 : Double(s) / scale / Double(c) }, validity: valid)
        }
        // Past 64 bits the sum cannot be the column type; `overflows` lets the executor say so.
        return Column(ints: sums.map { Int64(clamping: $0) }, type: type, validity: valid)
    }

    var overflows: Bool { !average && sums.contains { $0 < Int128(Int64.min) || $0 > Int128(Int64.max) } }
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
    func merge(_ other: any Accumulator, _ ids: UnsafeBufferPointer<Int32>, from rows: UnsafeBufferPointer<Int32>) {
        let o = other as! DoubleSumAccumulator
        o.sums.withUnsafeBufferPointer { os in o.counts.withUnsafeBufferPointer { oc in
            sums.withUnsafeMutableBufferPointer { s in counts.withUnsafeMutableBufferPointer { c in
                for (g, k) in zip(ids, rows) { s[Int(g)] += os[Int(k)]; c[Int(g)] += oc[Int(k)] }
            } }
        } }
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
    func merge(_ other: any Accumulator, _ ids: UnsafeBufferPointer<Int32>, from rows: UnsafeBufferPointer<Int32>) {
        let o = other as! MinMaxAccumulator
        for (g, k32) in zip(ids, rows) {
            let k = Int(k32)
            guard o.has[k] else { continue }
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
    func merge(_ other: any Accumulator, _ ids: UnsafeBufferPointer<Int32>, from rows: UnsafeBufferPointer<Int32>) {
        let o = other as! DistinctCountAccumulator
        for (g, k32) in zip(ids, rows) {
            let k = Int(k32)
            sets[Int(g)].formUnion(o.sets[k])
            intSets[Int(g)].formUnion(o.intSets[k])
        }
    }
    func finish() -> Column { Column(ints: zip(sets, intSets).map { Int64($0.count + $1.count) }) }
}
