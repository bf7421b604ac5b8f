extension Optimizer {
    /// Sideways information passing: when a small input joins a grouped result on its group keys,
    /// only the groups with a partner survive the join, so the aggregate's input can first be
    /// semi-joined with the small side's keys. TPC-H Q17 and Q20 then aggregate the few lineitem
    /// rows of the selected parts instead of all six million.
    func reduceAggregates(_ plan: LogicalPlan) -> LogicalPlan {
        switch plan {
        case .join(let l0, let r0, let kind, let lk, let rk, let res):
            var l = reduceAggregates(l0), r = reduceAggregates(r0)
            if kind == .inner {
                if let reduced = reduce(grouped: r, keys: rk, by: l, keys: lk) { r = reduced }
                else if let reduced = reduce(grouped: l, keys: lk, by: r, keys: rk) { l = reduced }
            }
            return .join(l, r, kind, leftKeys: lk, rightKeys: rk, residual: res)
        case .filter(let p, let e): return .filter(reduceAggregates(p), e)
        case .project(let p, let e, let n): return .project(reduceAggregates(p), e, names: n)
        case .aggregate(let p, let g, let a, let n): return .aggregate(reduceAggregates(p), groups: g, aggregates: a, names: n)
        case .sort(let p, let k): return .sort(reduceAggregates(p), k)
        case .limit(let p, let c, let o): return .limit(reduceAggregates(p), count: c, offset: o)
        case .distinct(let p): return .distinct(reduceAggregates(p))
        case .setOperation(let k, let all, let l, let r): return .setOperation(k, all: all, reduceAggregates(l), reduceAggregates(r))
        case .scan, .values: return plan
        }
    }

    /// `grouped` with its aggregate's input semi-joined to `small` on the join keys, when the keys
    /// are group columns and `small` is much smaller than what the aggregate reads.
    private func reduce(grouped: LogicalPlan, keys: [Expr], by small: LogicalPlan, keys smallKeys: [Expr]) -> LogicalPlan? {
        // Through a projection of plain group columns (a decorrelated scalar subquery's shape).
        var projection: (exprs: [Expr], names: [String])? = nil
        var node = grouped
        if case .project(let inner, let exprs, let names) = node {
            projection = (exprs, names)
            node = inner
        }
        guard case .aggregate(let input, let groups, let aggs, let names) = node else { return nil }
        var groupKeys: [Expr] = []
        for k in keys {
            guard case .column(var c, _) = k else { return nil }
            if let p = projection {
                guard case .column(let inner, _) = p.exprs[c] else { return nil }
                c = inner
            }
            guard c < groups.count else { return nil }
            groupKeys.append(groups[c])
        }
        guard estimate(small) * 4 < estimate(input) else { return nil }
        let reducedInput = LogicalPlan.join(input, small, .semi, leftKeys: groupKeys, rightKeys: smallKeys, residual: nil)
        let agg = LogicalPlan.aggregate(reducedInput, groups: groups, aggregates: aggs, names: names)
        if let p = projection { return .project(agg, p.exprs, names: p.names) }
        return agg
    }
}
