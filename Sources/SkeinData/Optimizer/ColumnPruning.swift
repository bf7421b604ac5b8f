extension Optimizer {
    /// Drops columns nobody above reads, so scans, filters and joins move only what is used.
    /// Returns the new plan and, for each old output column, its new position (-1 if dropped).
    func prune(_ plan: LogicalPlan, required: Set<Int>) -> (LogicalPlan, [Int]) {
        switch plan {
        case .scan(let name, let table, let cols):
            let keep = cols.indices.filter { required.contains($0) }
            let kept = keep.isEmpty ? [cols[0]] : keep.map { cols[$0] }
            return (.scan(name: name, table: table, columns: kept), mapping(cols.count, keep.isEmpty ? [0] : keep))
        case .values:
            return (plan, Array(plan.fields.indices))
        case .filter(let input, let pred):
            let (p, m) = prune(input, required: required.union(pred.columns))
            let filtered = LogicalPlan.filter(p, pred.remap { m[$0] })
            // Columns only the predicate reads are dropped right after it (the executor fuses the two).
            let keep = (0..<m.count).filter { required.contains($0) && m[$0] >= 0 }
            guard !keep.isEmpty, keep.count < p.fields.count else { return (filtered, m) }
            let names = p.fields.map(\.name)
            let out = mapping(m.count, keep)
            return (.project(filtered, keep.map { Expr.column(m[$0], name: names[m[$0]]) }, names: keep.map { names[m[$0]] }), out)
        case .project(let input, let exprs, let names):
            let keep = exprs.indices.filter { required.contains($0) }
            let kept = keep.isEmpty ? [0] : keep
            let need = kept.reduce(into: Set<Int>()) { $0.formUnion(exprs[$1].columns) }
            let (p, m) = prune(input, required: need)
            let newExprs = kept.map { exprs[$0].remap { m[$0] } }
            // A projection that only passes its input through in order disappears.
            let width = p.fields.count
            if newExprs.count == width, newExprs.enumerated().allSatisfy({ if case .column(let c, _) = $1 { return c == $0 }; return false }) {
                return (p, mapping(exprs.count, kept))
            }
            return (.project(p, newExprs, names: kept.map { names[$0] }), mapping(exprs.count, kept))
        case .join(let l, let r, let kind, let lk, let rk, let res):
            let nl = l.fields.count
            let nr = r.fields.count
            var needL = Set(required.filter { $0 < nl })
            var needR = Set(required.filter { $0 >= nl }.map { $0 - nl })
            for k in lk { needL.formUnion(k.columns) }
            for k in rk { needR.formUnion(k.columns) }
            if let res {
                for c in res.columns { if c < nl { needL.insert(c) } else { needR.insert(c - nl) } }
            }
            let semi = kind == .semi || kind == .anti || kind == .antiNullAware
            let (lp, lm) = prune(l, required: needL)
            let (rp, rm) = prune(r, required: needR)
            let newNL = lp.fields.count
            let newRes = res.map { $0.remap { $0 < nl ? lm[$0] : rm[$0 - nl] + newNL } }
            let j = LogicalPlan.join(lp, rp, kind, leftKeys: lk.map { $0.remap { lm[$0] } }, rightKeys: rk.map { $0.remap { rm[$0] } }, residual: newRes)
            var m = lm
            if !semi { m += (0..<nr).map { rm[$0] < 0 ? -1 : rm[$0] + newNL } }
            return (j, m)
        case .aggregate(let input, let groups, let aggs, let names):
            let keepAggs = aggs.indices.filter { required.contains(groups.count + $0) }
            var need = Set<Int>()
            for g in groups { need.formUnion(g.columns) }
            for a in keepAggs { if let arg = aggs[a].argument { need.formUnion(arg.columns) } }
            let (p, m) = prune(input, required: need)
            let newAggs = keepAggs.map { a in Aggregate(aggs[a].function, aggs[a].argument?.remap { m[$0] }) }
            let newNames = groups.indices.map { names[$0] } + keepAggs.map { names[groups.count + $0] }
            var out = Array(groups.indices)
            out += aggs.indices.map { a in keepAggs.firstIndex(of: a).map { groups.count + $0 } ?? -1 }
            return (.aggregate(p, groups: groups.map { $0.remap { m[$0] } }, aggregates: newAggs, names: newNames), out)
        case .sort(let input, let keys):
            var need = required
            for k in keys { need.formUnion(k.expr.columns) }
            let (p, m) = prune(input, required: need)
            return (.sort(p, keys.map { SortKey($0.expr.remap { m[$0] }, ascending: $0.ascending, nullsFirst: $0.nullsFirst) }), m)
        case .limit(let input, let c, let o):
            let (p, m) = prune(input, required: required)
            return (.limit(p, count: c, offset: o), m)
        case .distinct(let input):
            let (p, m) = prune(input, required: Set(input.fields.indices))
            return (.distinct(p), m)
        case .setOperation(let k, let all, let l, let r):
            let (lp, lm) = prune(l, required: Set(l.fields.indices))
            let (rp, _) = prune(r, required: Set(r.fields.indices))
            return (.setOperation(k, all: all, lp, rp), lm)
        }
    }

    /// Old position → new position for keeping `kept` (in order) of `count` columns.
    func mapping(_ count: Int, _ kept: [Int]) -> [Int] {
        var m = [Int](repeating: -1, count: count)
        for (n, o) in kept.enumerated() { m[o] = n }
        return m
    }
}
