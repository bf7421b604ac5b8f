import Foundation

extension Column {
    /// Rows at `indices`, in that order; an index of -1 gives a null row (the unmatched side of an
    /// outer join). Strings keep pointing into the same heaps.
    public func gather(_ indices: UnsafeBufferPointer<Int32>) -> Column {
        let n = indices.count
        var anyMissing = false
        for i in indices where i < 0 { anyMissing = true; break }
        var validityOut: [Bool]? = nil
        if anyMissing || validity != nil {
            validityOut = withValidity { v in
                [Bool](unsafeUninitializedCapacity: n) { out, c in
                    for k in 0..<n {
                        let i = Int(indices[k])
                        out[k] = i >= 0 && (v?[i] ?? true)
                    }
                    c = n
                }
            }
        }
        @inline(__always) func pick<T>(_ src: UnsafeBufferPointer<T>, _ zero: T) -> [T] {
            [T](unsafeUninitializedCapacity: n) { out, c in
                if anyMissing {
                    for k in 0..<n { let i = Int(indices[k]); out[k] = i >= 0 ? src[i] : zero }
                } else {
                    for k in 0..<n { out[k] = src[Int(indices[k])] }
                }
                c = n
            }
        }
        switch storage {
        case .ints:
            return Column(type: type, storage: .ints(withInts { pick($0, 0) }), validity: validityOut)
        case .doubles:
            return Column(type: type, storage: .doubles(withDoubles { pick($0, 0) }), validity: validityOut)
        case .bools:
            return Column(type: type, storage: .bools(withBools { pick($0, false) }), validity: validityOut)
        case .strings(let sa):
            let (refs, lens): ([UInt64], [UInt32]) = sa.refs.withUnsafeBufferPointer { r in
                sa.lengths.withUnsafeBufferPointer { l in
                    (pick(UnsafeBufferPointer(rebasing: r[offset...]), 0), pick(UnsafeBufferPointer(rebasing: l[offset...]), 0))
                }
            }
            return Column(type: type, storage: .strings(StringArray(refs: refs, lengths: lens, heaps: sa.heaps)), validity: validityOut)
        }
    }

    public func gather(_ indices: [Int32]) -> Column {
        indices.withUnsafeBufferPointer { gather($0) }
    }

    /// The rows where `mask` is true.
    public func filter(_ selection: [Int32]) -> Column { gather(selection) }

    /// Appends columns of one type into one.
    public static func concat(_ parts: [Column], type: DataType) -> Column {
        if parts.count == 1 { return parts[0] }
        let total = parts.reduce(0) { $0 + $1.count }
        var validity: [Bool]? = nil
        if parts.contains(where: { $0.validity != nil }) {
            var v: [Bool] = []
            v.reserveCapacity(total)
            for p in parts {
                p.withValidity { pv in
                    if let pv { v.append(contentsOf: pv) } else { v.append(contentsOf: repeatElement(true, count: p.count)) }
                }
            }
            validity = v
        }
        switch type {
        case .double:
            var out: [Double] = []
            out.reserveCapacity(total)
            for p in parts { p.withDoubles { out.append(contentsOf: $0) } }
            return Column(type: type, storage: .doubles(out), validity: validity)
        case .bool:
            var out: [Bool] = []
            out.reserveCapacity(total)
            for p in parts { p.withBools { out.append(contentsOf: $0) } }
            return Column(type: type, storage: .bools(out), validity: validity)
        case .string:
            let arrays: [StringArray] = parts.map { p in
                guard case .strings(let sa) = p.storage else { preconditionFailure() }
                if p.offset == 0 && p.count == sa.refs.count { return sa }
                return StringArray(refs: Array(sa.refs[p.offset..<(p.offset + p.count)]),
                                   lengths: Array(sa.lengths[p.offset..<(p.offset + p.count)]), heaps: sa.heaps)
            }
            return Column(type: type, storage: .strings(StringArray.concat(arrays)), validity: validity)
        default:
            var out: [Int64] = []
            out.reserveCapacity(total)
            for p in parts { p.withInts { out.append(contentsOf: $0) } }
            return Column(type: type, storage: .ints(out), validity: validity)
        }
    }

    /// Mixes each row's hash into `hashes` (null hashes to a fixed value).
    func hash(into hashes: UnsafeMutableBufferPointer<UInt64>) {
        let n = count
        withValidity { v in
            switch storage {
            case .ints:
                withInts { a in for i in 0..<n { hashes[i] = hashInt(a[i], seed: hashes[i]) } }
            case .doubles:
                withDoubles { a in for i in 0..<n { let d = a[i] == 0 ? 0 : a[i]; hashes[i] = mix64(hashes[i] &+ d.bitPattern &* 0x9E37_79B9_7F4A_7C15) } }
            case .bools:
                withBools { a in for i in 0..<n { hashes[i] = mix64(hashes[i] &+ (a[i] ? 0x51 : 0x17)) } }
            case .strings:
                withStrings { r in for i in 0..<n { let (p, l) = r.pointer(i); hashes[i] = mix64(hashes[i] &+ hashBytes(p, l)) } }
            }
            if let v { for i in 0..<n where !v[i] { hashes[i] = 0x5555_1234 } }
        }
    }
}

/// The hash of an integer key, the same on every path (a one-key fast path must agree with the
/// general multi-column one).
@inline(__always) func hashInt(_ k: Int64, seed: UInt64 = keyHashSeed) -> UInt64 {
    mix64(seed &+ UInt64(bitPattern: k) &* 0x9E37_79B9_7F4A_7C15)
}

let keyHashSeed: UInt64 = 0x2545_F491_4F6C_DD1D

extension Chunk {
    public func gather(_ indices: [Int32]) -> Chunk {
        indices.withUnsafeBufferPointer { ix in Chunk(columns: columns.map { $0.gather(ix) }, count: ix.count) }
    }

    /// The parts' rows one after another; large results copy their columns on `threads` threads.
    public static func concat(_ parts: [Chunk], types: [DataType], threads: Int = 1) -> Chunk {
        let nonEmpty = parts.filter { $0.count > 0 }
        if nonEmpty.isEmpty {
            return Chunk(columns: types.map { Column.empty($0) }, count: 0)
        }
        if nonEmpty.count == 1 { return nonEmpty[0] }
        let total = nonEmpty.reduce(0) { $0 + $1.count }
        let t = total >= 1 << 16 ? threads : 1
        let shared = Shared(nonEmpty)
        let columns = Parallel.map(types.count, threads: t) { c, _ in Column.concat(shared.value.map { $0.columns[c] }, type: types[c]) }
        return Chunk(columns: columns, count: total)
    }
}

extension Column {
    public static func empty(_ type: DataType) -> Column {
        switch type {
        case .double: Column(type: type, storage: .doubles([]))
        case .bool: Column(type: type, storage: .bools([]))
        case .string: Column(type: type, storage: .strings(StringArray(refs: [], lengths: [], heaps: [])))
        default: Column(type: type, storage: .ints([]))
        }
    }
}
