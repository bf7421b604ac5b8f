extension Optimizer {
    /// The branches of an OR chain.
    func disjuncts(_ e: Expr) -> [Expr] {
        if case .binary(.or, let a, let b) = e { return disjuncts(a) + disjuncts(b) }
        return [e]
    }

    /// (A ∧ B) ∨ (A ∧ C) → A ∧ (B ∨ C): a join condition repeated in every branch (TPC-H Q19)
    /// becomes a conjunct that can drive a hash join.
    func factorOr(_ e: Expr) -> [Expr] {
        let branches = disjuncts(e)
        guard branches.count > 1 else { return [e] }
        let sets = branches.map { $0.conjuncts }
        let common = sets[0].filter { c in sets.dropFirst().allSatisfy { $0.contains(c) } }
        guard !common.isEmpty else { return [e] }
        let rest = sets.map { s in Expr.conjunction(s.filter { !common.contains($0) }) }
        // A branch left empty is true, and so is the whole OR.
        if rest.contains(where: { $0 == nil }) { return common }
        let or = rest.dropFirst().reduce(rest[0]!) { Expr.binary(.or, $0, $1!) }
        return common + [or]
    }

    /// For an OR over several relations, the weaker filter it implies on one relation: in each
    /// branch keep only the conjuncts on that relation (Q19's part and lineitem conditions).
    func impliedFilter(_ e: Expr, onlyColumns: (Set<Int>) -> Bool) -> Expr? {
        let branches = disjuncts(e)
        guard branches.count > 1 else { return nil }
        var parts: [Expr] = []
        for b in branches {
            let mine = b.conjuncts.filter { !$0.columns.isEmpty && onlyColumns($0.columns) }
            guard let c = Expr.conjunction(mine) else { return nil }
            parts.append(c)
        }
        return parts.dropFirst().reduce(parts[0]) { .binary(.or, $0, $1) }
    }
}
