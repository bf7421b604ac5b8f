import Foundation

/// Evaluates a conjunction straight into a selection vector. Conjuncts of the common shapes
/// (column ⋚ constant, column ⋚ column, string = constant) run as tight loops that only visit rows
/// still selected; anything else is evaluated as a whole and intersected.
struct ConjunctionFilter: Sendable {
    let conjuncts: [Expr]

    init(_ predicate: Expr) {
        // Cheap, selective kernels first; general expressions last.
        let all = predicate.conjuncts
        conjuncts = all.filter { ConjunctionFilter.isKernel($0) } + all.filter { !ConjunctionFilter.isKernel($0) }
    }

    static func isKernel(_ e: Expr) -> Bool {
        guard case .binary(let op, let a, let b) = e, op.isComparison else { return false }
        switch (a, b) {
        case (.column, .literal), (.literal, .column), (.column, .column): return true
        default: return false
        }
    }

    /// The selected rows of `chunk`, or nil when every row is.
    func select(_ chunk: Chunk) throws -> [Int32]? {
        var sel: [Int32]? = nil
        for c in conjuncts {
            if let s = sel, s.isEmpty { return s }
            if let refined = try kernel(c, chunk, sel) { sel = refined; continue }
            if let s = sel {
                // Evaluate only the rows still selected, gathering just the columns it reads.
                let used = c.columns
                var cols = chunk.columns
                s.withUnsafeBufferPointer { ix in for i in used { cols[i] = chunk.columns[i].gather(ix) } }
                let keep = try Evaluator(chunk: Chunk(columns: cols, count: s.count)).select(c)
                sel = keep.map { s[Int($0)] }
            } else {
                let keep = try Evaluator(chunk: chunk).select(c)
                sel = keep.count == chunk.count ? nil : keep
            }
        }
        return sel
    }

    /// Runs a kernel-shaped conjunct over the selection; nil when this conjunct has no kernel.
    private func kernel(_ e: Expr, _ chunk: Chunk, _ sel: [Int32]?) throws -> [Int32]? {
        guard case .binary(var op, var a, var b) = e, op.isComparison else { return nil }
        if case .literal = a, case .column = b { swap(&a, &b); op = op.flipped }
        switch (a, b) {
        case (.column(let i, _), .literal(let v, let vt)):
            let col = chunk.columns[i]
            if v.isNull { return [] }
            if col.type.isIntegerBacked, vt.isIntegerBacked || vt == .date, vt.scale <= col.type.scale || vt == .int64 && col.type == .date {
                guard let k = v.integerRepresentation(as: col.type) else { return nil }
                if vt.scale > col.type.scale { return nil }
                return col.withInts { x in col.withValidity { valid in compareToConstant(op, x, k, sel, chunk.count, valid) } }
            }
            if col.type == .double, let k = v.doubleValue {
                return col.withDoubles { x in col.withValidity { valid in compareToConstant(op, x, k, sel, chunk.count, valid) } }
            }
            if col.type == .string, case .string(let s) = v, op == .eq || op == .ne {
                let want = Array(s.utf8)
                let eq = op == .eq
                return col.withStrings { r in
                    want.withUnsafeBufferPointer { w in
                        col.withValidity { valid in
                            refine(sel, chunk.count, valid) { i in
                                let (p, l) = r.pointer(i)
                                return (l == w.count && (l == 0 || memcmp(p, w.baseAddress!, l) == 0)) == eq
                            }
                        }
                    }
                }
            }
            return nil
        case (.column(let i, _), .column(let j, _)):
            let x = chunk.columns[i], y = chunk.columns[j]
            guard x.type.isIntegerBacked, x.type == y.type, x.validity == nil, y.validity == nil else { return nil }
            return x.withInts { p in y.withInts { q in compareColumns(op, p, q, sel, chunk.count) } }
        default:
            return nil
        }
    }
}

/// The operator is chosen once, outside the loop, so each loop body is one compare.
private func compareToConstant<T: Comparable>(_ op: BinaryOp, _ x: UnsafeBufferPointer<T>, _ k: T, _ sel: [Int32]?, _ n: Int,
                                              _ valid: UnsafeBufferPointer<Bool>?) -> [Int32] {
    switch op {
    case .eq: refine(sel, n, valid) { x[$0] == k }
    case .ne: refine(sel, n, valid) { x[$0] != k }
    case .lt: refine(sel, n, valid) { x[$0] < k }
    case .le: refine(sel, n, valid) { x[$0] <= k }
    case .gt: refine(sel, n, valid) { x[$0] > k }
    default: refine(sel, n, valid) { x[$0] >= k }
    }
}

private func compareColumns<T: Comparable>(_ op: BinaryOp, _ p: UnsafeBufferPointer<T>, _ q: UnsafeBufferPointer<T>, _ sel: [Int32]?, _ n: Int) -> [Int32] {
    switch op {
    case .eq: refine(sel, n, nil) { p[$0] == q[$0] }
    case .ne: refine(sel, n, nil) { p[$0] != q[$0] }
    case .lt: refine(sel, n, nil) { p[$0] < q[$0] }
    case .le: refine(sel, n, nil) { p[$0] <= q[$0] }
    case .gt: refine(sel, n, nil) { p[$0] > q[$0] }
    default: refine(sel, n, nil) { p[$0] >= q[$0] }
    }
}

@inline(__always) private func cmp<T: Comparable>(_ op: BinaryOp, _ a: T, _ b: T) -> Bool {
    switch op {
    case .eq: a == b
    case .ne: a != b
    case .lt: a < b
    case .le: a <= b
    case .gt: a > b
    default: a >= b
    }
}

/// Keeps the rows (of `sel`, or all `n`) that are valid and pass `test`.
@inline(__always) private func refine(_ sel: [Int32]?, _ n: Int, _ valid: UnsafeBufferPointer<Bool>?, _ test: (Int) -> Bool) -> [Int32] {
    if let sel {
        var out = [Int32]()
        out.reserveCapacity(sel.count)
        for r in sel {
            let i = Int(r)
            if (valid?[i] ?? true) && test(i) { out.append(r) }
        }
        return out
    }
    return [Int32](unsafeUninitializedCapacity: n) { o, k in
        var m = 0
        if let valid {
            for i in 0..<n where valid[i] && test(i) { o[m] = Int32(i); m += 1 }
        } else {
            for i in 0..<n {
                o[m] = Int32(i)
                m &+= test(i) ? 1 : 0  // branch-free: write always, advance on a match
            }
        }
        k = m
    }
}
