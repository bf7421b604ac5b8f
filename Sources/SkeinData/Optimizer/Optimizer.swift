/// Rewrites a logical plan into a cheaper equivalent: constant folding, predicate pushdown,
/// outer joins that a filter makes inner, cross products with equality predicates into hash
/// joins in a greedy order by estimated sizes (smaller input built), and column pruning.
public struct Optimizer: Sendable {
    public let statistics: Statistics

    public init(statistics: Statistics = Statistics()) {
        self.statistics = statistics
    }

    public func optimize(_ plan: LogicalPlan) -> LogicalPlan {
        let pushed = reduceAggregates(rewrite(plan))
        let (pruned, mapping) = prune(pushed, required: Set(pushed.fields.indices))
        // The root keeps its columns, in order.
        let fields = pushed.fields
        if mapping == Array(fields.indices), pruned.fields.map(\.name) == fields.map(\.name) { return pruned }
        return .project(pruned, fields.indices.map { Expr.column(mapping[$0], name: fields[$0].name) }, names: fields.map(\.name))
    }

    // MARK: pushdown and join order

    func rewrite(_ plan: LogicalPlan) -> LogicalPlan {
        switch plan {
        case .filter(let input, let pred):
            return pushFilter(fold(pred).conjuncts.flatMap { factorOr($0) }, into: input)
        case .join(_, _, let kind, _, _, _) where kind == .inner || kind == .cross:
            return reorderRegion(plan, extra: [])
        case .join(let l, let r, let kind, let lk, let rk, let res):
            if let sunk = sinkSemiJoin(plan) { return rewrite(sunk) }
            return .join(rewrite(l), rewrite(r), kind, leftKeys: lk, rightKeys: rk, residual: res.map(fold))
        case .project(let input, let exprs, let names):
            return .project(rewrite(input), exprs.map(fold), names: names)
        case .aggregate(let input, let g, let a, let n):
            return .aggregate(rewrite(input), groups: g, aggregates: a, names: n)
        case .sort(let input, let keys): return .sort(rewrite(input), keys)
        case .limit(let input, let c, let o): return .limit(rewrite(input), count: c, offset: o)
        case .distinct(let input): return .distinct(rewrite(input))
        case .setOperation(let k, let all, let l, let r): return .setOperation(k, all: all, rewrite(l), rewrite(r))
        case .scan, .values: return plan
        }
    }

    /// Places conjuncts as low as they can go over `input`.
    func pushFilter(_ conjuncts: [Expr], into input: LogicalPlan) -> LogicalPlan {
        var conjuncts = conjuncts.filter { if case .literal(.bool(true), _) = $0 { return false }; return true }
        if conjuncts.isEmpty { return rewrite(input) }
        switch input {
        case .filter(let inner, let p):
            return pushFilter(conjuncts + fold(p).conjuncts, into: inner)
        case .project(let inner, let exprs, let names):
            // Substitute the projection's expressions: the filter then runs before it.
            let substituted = conjuncts.map { c in c.transform { e in if case .column(let i, _) = e { return exprs[i] }; return e } }
            return .project(pushFilter(substituted, into: inner), exprs.map(fold), names: names)
        case .join(let l, let r, let kind, let lk, let rk, let res):
            if kind == .inner || kind == .cross { return reorderRegion(input, extra: conjuncts) }
            if let sunk = sinkSemiJoin(input) { return pushFilter(conjuncts, into: sunk) }
            let nl = l.fields.count
            if kind == .left {
                // A condition that cannot hold on the null row makes the outer join inner.
                if conjuncts.contains(where: { c in rejectsNulls(c) && c.columns.contains { $0 >= nl } }) {
                    return reorderRegion(.join(l, r, .inner, leftKeys: lk, rightKeys: rk, residual: res), extra: conjuncts)
                }
            }
            var down: [Expr] = [], stay: [Expr] = []
            for c in conjuncts { if c.columns.allSatisfy({ $0 < nl }) { down.append(c) } else { stay.append(c) } }
            let j = LogicalPlan.join(down.isEmpty ? rewrite(l) : pushFilter(down, into: l), rewrite(r), kind,
                                     leftKeys: lk, rightKeys: rk, residual: res.map(fold))
            return stay.isEmpty ? j : .filter(j, Expr.conjunction(stay)!)
        case .aggregate(let inner, let groups, let aggs, let names):
            var down: [Expr] = [], stay: [Expr] = []
            for c in conjuncts {
                if c.columns.allSatisfy({ $0 < groups.count }) {
                    down.append(c.transform { e in if case .column(let i, _) = e { return groups[i] }; return e })
                } else { stay.append(c) }
            }
            let a = LogicalPlan.aggregate(down.isEmpty ? rewrite(inner) : pushFilter(down, into: inner), groups: groups, aggregates: aggs, names: names)
            return stay.isEmpty ? a : .filter(a, Expr.conjunction(stay)!)
        case .sort(let inner, let keys):
            return .sort(pushFilter(conjuncts, into: inner), keys)
        default:
            conjuncts = conjuncts.map(fold)
            return .filter(rewrite(input), Expr.conjunction(conjuncts)!)
        }
    }

    /// Moves a semi or anti join below the inner joins of its left side, onto the one relation
    /// whose columns it reads: `(orders ⋈ lineitem) ⋉ big` becomes `(orders ⋉ big) ⋈ lineitem`,
    /// so the join filters before the large join, not after (TPC-H Q18, Q21, Q22).
    func sinkSemiJoin(_ plan: LogicalPlan) -> LogicalPlan? {
        guard case .join(let l, let r, let kind, let lk, let rk, let res) = plan,
              kind == .semi || kind == .anti || kind == .antiNullAware, isRegion(l) else { return nil }
        let nl = l.fields.count
        var used = Set<Int>()
        for k in lk { used.formUnion(k.columns) }
        if let res { used.formUnion(res.columns.filter { $0 < nl }) }
        guard !used.isEmpty else { return nil }
        func sink(_ p: LogicalPlan, _ offset: Int) -> LogicalPlan? {
            let width = p.fields.count
            guard used.allSatisfy({ $0 >= offset && $0 < offset + width }) else { return nil }
            switch p {
            case .join(let a, let b, let k, let x, let y, let z) where k == .inner || k == .cross:
                let wa = a.fields.count
                if let a2 = sink(a, offset) { return .join(a2, b, k, leftKeys: x, rightKeys: y, residual: z) }
                if let b2 = sink(b, offset + wa) { return .join(a, b2, k, leftKeys: x, rightKeys: y, residual: z) }
                return nil
            case .filter(let inner, let pred) where isRegion(inner):
                return sink(inner, offset).map { .filter($0, pred) }
            default:
                guard offset > 0 || width < nl else { return nil }  // nothing to gain at the top
                // Worth it when the join filters a relation larger than what it builds on; a
                // large build side (Q21's lineitem) is better probed by the region's fewer rows.
                guard estimate(r) < estimate(p) else { return nil }
                let shift: (Int) -> Int = { $0 - offset }
                let newRes = res.map { e in e.remap { $0 < nl ? shift($0) : $0 - nl + width } }
                return .join(p, r, kind, leftKeys: lk.map { $0.remap(shift) }, rightKeys: rk, residual: newRes)
            }
        }
        return sink(l, 0)
    }

    /// Whether a predicate is false or null whenever the columns it reads are null.
    func rejectsNulls(_ e: Expr) -> Bool {
        switch e {
        case .binary(let op, let a, let b) where op.isComparison: return !a.columns.isEmpty || !b.columns.isEmpty
        case .binary(.and, let a, let b): return rejectsNulls(a) || rejectsNulls(b)
        case .like, .inList: return true
        default: return false
        }
    }

    // MARK: join regions

    struct Relation {
        var plan: LogicalPlan
        var offset: Int
        var width: Int
        var estimate: Double
    }

    /// Flattens a tree of inner joins, cross products and filters into relations and predicates.
    func flatten(_ plan: LogicalPlan, offset: Int, _ rels: inout [LogicalPlan], _ preds: inout [Expr]) {
        switch plan {
        case .join(let l, let r, let kind, let lk, let rk, let res) where kind == .inner || kind == .cross:
            let nl = l.fields.count
            flatten(l, offset: offset, &rels, &preds)
            flatten(r, offset: offset + nl, &rels, &preds)
            for (a, b) in zip(lk, rk) { preds.append(.binary(.eq, a.remap { $0 + offset }, b.remap { $0 + offset + nl })) }
            if let res { preds += res.conjuncts.map { $0.remap { $0 + offset } } }
        case .filter(let input, let p) where isRegion(input):
            flatten(input, offset: offset, &rels, &preds)
            preds += p.conjuncts.map { $0.remap { $0 + offset } }
        default:
            rels.append(plan)
        }
    }

    func isRegion(_ p: LogicalPlan) -> Bool {
        if case .join(_, _, let k, _, _, _) = p, k == .inner || k == .cross { return true }
        if case .filter(let i, _) = p { return isRegion(i) }
        return false
    }

    func reorderRegion(_ plan: LogicalPlan, extra: [Expr]) -> LogicalPlan {
        var leaves: [LogicalPlan] = []
        var preds: [Expr] = []
        flatten(plan, offset: 0, &leaves, &preds)
        preds += extra
        preds = preds.map(fold).flatMap { factorOr($0) }.flatMap(\.conjuncts)
            .filter { if case .literal(.bool(true), _) = $0 { return false }; return true }
        var offsets: [Int] = []
        var off = 0
        for l in leaves { offsets.append(off); off += l.fields.count }
        let total = off
        func leafOf(_ col: Int) -> Int { offsets.lastIndex { $0 <= col }! }

        // Single-relation predicates go into their relation.
        var local = [[Expr]](repeating: [], count: leaves.count)
        var multi: [Expr] = []
        var constant: [Expr] = []
        for p in preds {
            let ls = Set(p.columns.map(leafOf))
            if ls.isEmpty { constant.append(p) } else if ls.count == 1 {
                let k = ls.first!
                local[k].append(p.remap { $0 - offsets[k] })
            } else {
                multi.append(p)
                for k in ls {
                    let range = offsets[k]..<(offsets[k] + leaves[k].fields.count)
                    if let implied = impliedFilter(p, onlyColumns: { $0.allSatisfy { range.contains($0) } }) {
                        local[k].append(implied.remap { $0 - offsets[k] })
                    }
                }
            }
        }
        let rels: [Relation] = leaves.indices.map { k in
            let p = local[k].isEmpty ? rewrite(leaves[k]) : pushFilter(local[k], into: leaves[k])
            return Relation(plan: p, offset: offsets[k], width: leaves[k].fields.count, estimate: estimate(p))
        }
        if rels.count == 1 {
            let all = multi + constant
            return all.isEmpty ? rels[0].plan : .filter(rels[0].plan, Expr.conjunction(all)!)
        }

        // Greedy operator ordering: join the connected pair with the smallest estimated result.
        // Each component maps global columns to its output positions.
        var comps: [Component] = rels.indices.map { k in
            var pos: [Int: Int] = [:]
            for c in 0..<rels[k].width { pos[rels[k].offset + c] = c }
            return Component(plan: rels[k].plan, leaves: [k], position: pos, estimate: rels[k].estimate)
        }
        var pending = multi
        func equiPairs(_ a: Component, _ b: Component) -> [(Expr, Expr, Int)] {
            var out: [(Expr, Expr, Int)] = []
            for (i, p) in pending.enumerated() {
                guard case .binary(.eq, let x, let y) = p else { continue }
                let lx = Set(x.columns.map(leafOf)), ly = Set(y.columns.map(leafOf))
                guard !lx.isEmpty, !ly.isEmpty else { continue }
                if lx.isSubset(of: a.leaves), ly.isSubset(of: b.leaves) { out.append((x, y, i)) }
                else if ly.isSubset(of: a.leaves), lx.isSubset(of: b.leaves) { out.append((y, x, i)) }
            }
            return out
        }
        while comps.count > 1 {
            var best: (Int, Int, Double, Double)? = nil
            for i in comps.indices {
                for j in comps.indices where i < j {
                    let pairs = equiPairs(comps[i], comps[j])
                    guard !pairs.isEmpty else { continue }
                    var sel = 1.0
                    for (x, y, _) in pairs.prefix(1) {
                        sel = 1 / max(distinct(x, comps[i]), distinct(y, comps[j]), 1)
                    }
                    let est = max(1, comps[i].estimate * comps[j].estimate * sel)
                    // Rank by the rows produced plus the hash table built (the smaller side), so a
                    // join against a small table goes first when the outputs are close.
                    let cost = est + min(comps[i].estimate, comps[j].estimate)
                    if best == nil || cost < best!.3 { best = (i, j, est, cost) }
                }
            }
            if best == nil {
                // Nothing connects: a cross product of the two smallest.
                let order = comps.indices.sorted { comps[$0].estimate < comps[$1].estimate }
                let est = comps[order[0]].estimate * comps[order[1]].estimate
                best = (min(order[0], order[1]), max(order[0], order[1]), est, est)
            }
            let (i, j, est, _) = best!
            // Probe with the larger side, build the smaller.
            let (probe, build) = comps[i].estimate >= comps[j].estimate ? (comps[i], comps[j]) : (comps[j], comps[i])
            let pairs = equiPairs(probe, build)
            let used = Set(pairs.map(\.2))
            let probeWidth = probe.plan.fields.count
            var position = probe.position
            for (g, p) in build.position { position[g] = p + probeWidth }
            let leavesUnion = probe.leaves.union(build.leaves)
            func local(_ e: Expr, _ m: [Int: Int]) -> Expr { e.remap { m[$0]! } }
            let lk = pairs.map { local($0.0, probe.position) }
            let rk = pairs.map { local($0.1, build.position) }
            // Other predicates whose relations are now all joined run as the join's residual.
            var residual: [Expr] = []
            var remaining: [Expr] = []
            for (k, p) in pending.enumerated() where !used.contains(k) {
                if Set(p.columns.map(leafOf)).isSubset(of: leavesUnion) { residual.append(local(p, position)) } else { remaining.append(p) }
            }
            pending = remaining
            let kind: JoinKind = lk.isEmpty ? .cross : .inner
            let joined = LogicalPlan.join(probe.plan, build.plan, kind, leftKeys: lk, rightKeys: rk, residual: Expr.conjunction(residual))
            comps.remove(at: j)
            comps.remove(at: i)
            comps.append(Component(plan: joined, leaves: leavesUnion, position: position, estimate: est))
        }
        let root = comps[0]
        var out = root.plan
        if let c = Expr.conjunction(constant + pending.map { $0.remap { root.position[$0]! } }) { out = .filter(out, c) }
        // Restore the region's original column order.
        let names = plan.fields.map(\.name)
        let identity = (0..<total).allSatisfy { root.position[$0] == $0 }
        if identity { return out }
        return .project(out, (0..<total).map { Expr.column(root.position[$0]!, name: names[$0]) }, names: names)
    }

    // MARK: estimates

    func estimate(_ p: LogicalPlan) -> Double {
        switch p {
        case .scan(let name, let t, _): return Double(max(1, statistics.rows(table: name) ?? t.rowCount))
        case .values(let t): return Double(max(1, t.rowCount))
        case .filter(let input, let pred):
            return max(1, estimate(input) * pred.conjuncts.map { selectivity($0, input) }.reduce(1, *))
        case .project(let input, _, _), .sort(let input, _): return estimate(input)
        case .limit(let input, let c, _): return min(estimate(input), Double(c ?? Int.max))
        case .distinct(let input): return estimate(input) / 2
        case .aggregate(let input, let groups, _, _):
            if groups.isEmpty { return 1 }
            let ndv = groups.map { distinct(of: $0, over: input) ?? estimate(input) / 10 }.reduce(1, *)
            return max(1, min(estimate(input), ndv))
        case .join(let l, let r, let kind, let lk, let rk, _):
            switch kind {
            case .semi, .anti, .antiNullAware:
                // The share of left keys that find a partner: right's rows over left's distinct keys.
                var share = 0.5
                if case .column(let a, _)? = lk.first, let d = baseDistinct(l, a) { share = min(1, estimate(r) / max(1, d)) }
                return max(1, estimate(l) * (kind == .semi ? share : max(0.1, 1 - share)))
            case .left: return estimate(l)
            case .cross where lk.isEmpty: return estimate(l) * estimate(r)
            default:
                var d = 1.0
                if case .column(let a, _)? = lk.first, case .column(let b, _)? = rk.first {
                    d = max(baseDistinct(l, a) ?? estimate(l), baseDistinct(r, b) ?? estimate(r))
                }
                return max(1, estimate(l) * estimate(r) / max(1, d))
            }
        case .setOperation(_, _, let l, let r): return estimate(l) + estimate(r)
        }
    }

    /// The distinct values of a column, traced down to its base table where possible.
    func baseDistinct(_ p: LogicalPlan, _ col: Int) -> Double? {
        switch p {
        case .scan(let name, let t, let cols): return statistics.distinct(table: name, t, column: cols[col])
        case .filter(let input, _): return baseDistinct(input, col).map { min($0, estimate(p)) }
        case .project(let input, let exprs, _):
            return distinct(of: exprs[col], over: input)
        case .join(let l, let r, let kind, _, _, _):
            let nl = l.fields.count
            let d = col < nl ? baseDistinct(l, col) : (kind == .semi || kind == .anti ? nil : baseDistinct(r, col - nl))
            return d.map { min($0, estimate(p)) }
        case .aggregate(let input, let groups, _, _):
            if col < groups.count, case .column(let i, _) = groups[col] { return baseDistinct(input, i).map { min($0, estimate(p)) } }
            return nil
        case .sort(let input, _), .limit(let input, _, _), .distinct(let input): return baseDistinct(input, col)
        default: return nil
        }
    }

    /// The distinct values of an expression over `input`, when they can be bounded.
    func distinct(of e: Expr, over input: LogicalPlan) -> Double? {
        switch e {
        case .column(let i, _): return baseDistinct(input, i)
        case .extractYear(let x), .extract(.year, let x):
            // Years of dates: the distinct days over 365, at least one.
            return distinct(of: x, over: input).map { max(1, $0 / 365 + 1) }
        default:
            // A function of one column has at most that column's distinct values.
            if e.columns.count == 1 { return baseDistinct(input, e.columns.first!) }
            return nil
        }
    }

    func distinct(_ e: Expr, _ c: Component) -> Double {
        if case .column(let g, _) = e, let pos = c.position[g] { return baseDistinct(c.plan, pos) ?? c.estimate }
        return c.estimate
    }

    struct Component {
        var plan: LogicalPlan
        var leaves: Set<Int>
        var position: [Int: Int]
        var estimate: Double
    }

    /// The fraction of rows a conjunct keeps (classic System R guesses, refined by distinct counts).
    func selectivity(_ e: Expr, _ input: LogicalPlan) -> Double {
        switch e {
        case .binary(.eq, let a, let b):
            if case .column(let i, _) = a, case .literal = b { return 1 / (baseDistinct(input, i) ?? 10) }
            if case .column(let i, _) = b, case .literal = a { return 1 / (baseDistinct(input, i) ?? 10) }
            return 0.1
        case .binary(.ne, _, _): return 0.9
        case .binary(let op, _, _) where op.isComparison: return 0.4
        case .binary(.and, let a, let b): return selectivity(a, input) * selectivity(b, input)
        case .binary(.or, let a, let b): return min(1, selectivity(a, input) + selectivity(b, input))
        case .like(_, let p, let negated): return negated ? 0.9 : (p.hasPrefix("%") ? 0.1 : 0.05)
        case .inList(let x, let vs, let negated):
            var s = Double(vs.count) * 0.1
            if case .column(let i, _) = x, let d = baseDistinct(input, i) { s = Double(vs.count) / d }
            return negated ? 1 - min(1, s) : min(1, s)
        case .not(let x): return 1 - selectivity(x, input)
        default: return 0.5
        }
    }
}
