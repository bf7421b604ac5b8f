/// A column a name can resolve to: its table (or alias) and its name.
struct ScopeColumn {
    var qualifier: String?
    var name: String
}

/// The names visible to an expression: the FROM columns of this query, then the enclosing query's.
final class Scope {
    let columns: [ScopeColumn]
    let outer: Scope?
    /// The types of the plan these names index, set before a subquery binds against this scope.
    var types: [DataType] = []

    init(_ columns: [ScopeColumn], outer: Scope?) {
        self.columns = columns
        self.outer = outer
    }
}

/// What a subquery's correlated predicates turn into.
enum Correlation {
    /// Correlation is an error here.
    case none
    /// Hand the predicates back (EXISTS: they become the semi join's condition).
    case collect
    /// Equalities become group keys (a correlated scalar subquery becomes a grouped join).
    case groupKeys
}

/// The state of binding one SELECT's expressions: where names resolve, the plan that scalar
/// subqueries join onto, and after GROUP BY which expressions are groups and aggregates.
struct ExprContext {
    var scope: Scope
    var plan: LogicalPlan
    var groups: [Expr]? = nil
    var aggregates: [Aggregate] = []
    /// The plan below the aggregate, whose columns group and aggregate arguments read.
    var preAggregate: LogicalPlan? = nil

    /// This context as it was before GROUP BY, for binding what an aggregate reads.
    var beforeAggregation: ExprContext {
        var c = self
        c.groups = nil
        c.aggregates = []
        if let p = preAggregate { c.plan = p }
        c.preAggregate = nil
        return c
    }
    var width: Int { plan.fields.count }

    /// The type of a bound expression here; correlated references take the outer query's types.
    func type(of e: Expr) -> DataType {
        let outerTypes = scope.outer?.types ?? []
        let closed = e.transform { x in
            if case .outer(let i, _) = x, i < outerTypes.count { return .literal(.null, outerTypes[i]) }
            return x
        }
        return resultType(closed, plan.types)
    }

    /// Marks the scope's types current, before a subquery resolves names against it.
    func prepareForSubquery() { scope.types = plan.types }
}

/// Resolves names and turns parsed SQL into a logical plan; subqueries become joins here
/// (EXISTS and IN → semi and anti joins, scalar subqueries → left joins onto grouped results).
struct Binder {
    let catalog: [String: Table]
    let sql: String
    var ctes: [String: (LogicalPlan, [ScopeColumn])] = [:]

    init(catalog: [String: Table], sql: String) {
        self.catalog = catalog
        self.sql = sql
    }

    func fail(_ code: DataError.Code, _ pos: Int?, _ message: String) -> DataError {
        guard let pos, pos >= 0 else { return DataError(code, message) }
        let (line, col, text) = location(sql, pos)
        return DataError(code, "\(message) at line \(line), column \(col)\n  \(text)\n  \(String(repeating: " ", count: max(0, col - 1)))^")
    }

    // MARK: queries

    mutating func bindQuery(_ q: SQLQuery, outer: Scope?) throws -> (LogicalPlan, [ScopeColumn]) {
        let saved = ctes
        defer { ctes = saved }
        for cte in q.ctes {
            var (plan, cols) = try bindQuery(cte.query, outer: outer)
            if !cte.columns.isEmpty { (plan, cols) = rename(plan, cols, cte.columns) }
            ctes[cte.name] = (plan, cols.map { ScopeColumn(qualifier: cte.name, name: $0.name) })
        }
        if case .select(let s) = q.body {
            var unused: [(Expr, Expr)] = []
            let (plan, cols, _) = try bindSelect(s, outer: outer, orderBy: q.orderBy, limit: q.limit, offset: q.offset,
                                                 correlation: .none, keys: &unused)
            return (plan, cols)
        }
        var (plan, cols) = try bindBody(q.body, outer: outer)
        if !q.orderBy.isEmpty {
            let keys = try q.orderBy.map { item -> SortKey in
                let idx = try outputIndex(item.expr, cols)
                guard let idx else { throw fail(.unsupported, nil, "ORDER BY of a UNION/INTERSECT/EXCEPT must name an output column or its position") }
                return SortKey(.column(idx, name: cols[idx].name), ascending: item.ascending, nullsFirst: item.nullsFirst)
            }
            plan = .sort(plan, keys)
        }
        if q.limit != nil || q.offset > 0 { plan = .limit(plan, count: q.limit, offset: q.offset) }
        return (plan, cols)
    }

    mutating func bindBody(_ body: SQLQueryBody, outer: Scope?) throws -> (LogicalPlan, [ScopeColumn]) {
        switch body {
        case .select(let s):
            var unused: [(Expr, Expr)] = []
            let (p, c, _) = try bindSelect(s, outer: outer, orderBy: [], limit: nil, offset: 0, correlation: .none, keys: &unused)
            return (p, c)
        case .nested(let q): return try bindQuery(q, outer: outer)
        case .setOperation(let op, let all, let l, let r):
            let (lp, lc) = try bindBody(l, outer: outer)
            let (rp, rc) = try bindBody(r, outer: outer)
            guard lc.count == rc.count else {
                throw fail(.type, nil, "\(op.uppercased()) needs both sides to have the same number of columns: \(lc.count) and \(rc.count)")
            }
            let kind: SetOpKind = op == "union" ? .union : op == "intersect" ? .intersect : .except
            // Both sides must agree on types: cast the right to the left's where they differ.
            var right = rp
            let lt = lp.types, rt = rp.types
            if lt != rt {
                right = .project(rp, rt.indices.map { i in
                    let t = lt[i] == rt[i] ? lt[i] : unify(lt[i], rt[i])
                    return t == rt[i] ? Expr.column(i, name: rc[i].name) : .cast(.column(i, name: rc[i].name), t)
                }, names: rc.map(\.name))
            }
            return (.setOperation(kind, all: all, lp, right), lc.map { ScopeColumn(qualifier: nil, name: $0.name) })
        }
    }

    func rename(_ plan: LogicalPlan, _ cols: [ScopeColumn], _ names: [String]) -> (LogicalPlan, [ScopeColumn]) {
        let newNames = cols.indices.map { $0 < names.count ? names[$0] : cols[$0].name }
        return (.project(plan, cols.indices.map { Expr.column($0, name: newNames[$0]) }, names: newNames),
                newNames.map { ScopeColumn(qualifier: nil, name: $0) })
    }

    /// An ORDER BY item that names an output column or gives its position.
    func outputIndex(_ e: SQLExpr, _ cols: [ScopeColumn]) throws -> Int? {
        if case .number(let s, _) = e, let k = Int(s) {
            guard k >= 1, k <= cols.count else { throw fail(.syntax, nil, "ORDER BY position \(k) is not in the select list (1…\(cols.count))") }
            return k - 1
        }
        if case .name(let parts, _) = e, parts.count == 1 {
            return cols.firstIndex { $0.name == parts[0] }
        }
        return nil
    }

    // MARK: SELECT

    /// Binds one SELECT. With `.collect`, stops after WHERE (EXISTS ignores the select list) and
    /// returns the correlated predicates; with `.groupKeys`, correlated equalities become leading
    /// group keys and output columns, and `keys` receives (outer, inner) pairs.
    mutating func bindSelect(_ s: SQLSelect, outer: Scope?, orderBy: [SQLOrderItem], limit: Int?, offset: Int,
                             correlation: Correlation, keys: inout [(Expr, Expr)]) throws -> (LogicalPlan, [ScopeColumn], [Expr]) {
        // FROM
        var plan: LogicalPlan
        var cols: [ScopeColumn]
        if s.from.isEmpty {
            plan = .values(Table(fields: [Field("dummy", .int64)], columns: [Column(ints: [0])]))
            cols = [ScopeColumn(qualifier: nil, name: "")]
        } else {
            (plan, cols) = try bindTableRef(s.from[0], outer: outer)
            for t in s.from.dropFirst() {
                let (p, c) = try bindTableRef(t, outer: outer)
                plan = .join(plan, p, .cross, leftKeys: [], rightKeys: [], residual: nil)
                cols += c
            }
        }
        var ctx = ExprContext(scope: Scope(cols, outer: outer), plan: plan)

        // WHERE: subquery conjuncts become joins; correlated conjuncts are set aside.
        var correlated: [Expr] = []
        if let w = s.whereClause {
            var filters: [Expr] = []
            for conj in splitAnd(w) {
                switch conj {
                case .exists(let q, let negated):
                    try applyExists(q, negated: negated, &ctx)
                case .unary("not", .exists(let q, let negated)):
                    try applyExists(q, negated: !negated, &ctx)
                case .inQuery(let lhs, let q, let negated):
                    try applyIn(lhs, q, negated: negated, &ctx)
                default:
                    let e = try bindCondition(conj, "WHERE", &ctx)
                    if e.hasOuter {
                        guard correlation != .none else {
                            throw fail(.unsupported, nil, "a correlated subquery is supported in WHERE as EXISTS, IN or a scalar compared with a value; found \(e)")
                        }
                        correlated.append(e)
                    } else {
                        filters.append(e)
                    }
                }
            }
            if let f = Expr.conjunction(filters) { ctx.plan = .filter(ctx.plan, f) }
        }
        if correlation == .collect { return (ctx.plan, cols, correlated) }

        var keyExprs: [Expr] = []
        if correlation == .groupKeys {
            for c in correlated {
                guard case .binary(.eq, let a, let b) = c else {
                    throw fail(.unsupported, nil, "a correlated scalar subquery may only compare columns with '=' to the outer query; found \(c)")
                }
                if a.hasOuter && !b.hasOuter && b.columns.count > 0 { keys.append((a, b)); keyExprs.append(b) }
                else if b.hasOuter && !a.hasOuter && a.columns.count > 0 { keys.append((b, a)); keyExprs.append(a) }
                else { throw fail(.unsupported, nil, "cannot decorrelate \(c): one side must use only the subquery's columns, the other only the outer query's") }
            }
        }

        // GROUP BY and aggregates
        let selectHasAgg = s.items.contains { $0.expr.containsAggregate } || (s.having?.containsAggregate ?? false)
            || orderBy.contains { $0.expr.containsAggregate }
        let aggregated = !s.groupBy.isEmpty || selectHasAgg || !keyExprs.isEmpty
        if aggregated {
            var groups = keyExprs
            for g in s.groupBy {
                // A select alias or position may stand for its expression.
                if case .number(let n, _) = g, let k = Int(n), k >= 1, k <= s.items.count {
                    groups.append(try bindExpr(s.items[k - 1].expr, &ctx)); continue
                }
                if case .name(let parts, _) = g, parts.count == 1, !cols.contains(where: { $0.name == parts[0] }),
                   let item = s.items.first(where: { $0.alias == parts[0] }) {
                    groups.append(try bindExpr(item.expr, &ctx)); continue
                }
                groups.append(try bindExpr(g, &ctx))
            }
            var aggs: [Aggregate] = []
            for e in s.items.map(\.expr) + (s.having.map { [$0] } ?? []) + orderBy.map(\.expr) {
                try collectAggregates(e, &ctx, &aggs)
            }
            let names = groups.indices.map { "group\($0)" } + aggs.map(\.description)
            ctx.preAggregate = ctx.plan
            ctx.plan = .aggregate(ctx.plan, groups: groups, aggregates: aggs, names: names)
            ctx.groups = groups
            ctx.aggregates = aggs
            if let h = s.having {
                let condition = try bindCondition(h, "HAVING", &ctx)  // may join a subquery onto ctx.plan first
                ctx.plan = .filter(ctx.plan, condition)
            }
        } else if s.having != nil {
            throw fail(.syntax, nil, "HAVING needs GROUP BY or an aggregate")
        }

        // SELECT list
        var exprs: [Expr] = []
        var names: [String] = []
        if !keyExprs.isEmpty {
            for k in keyExprs.indices { exprs.append(.column(k, name: "key\(k)")); names.append("key\(k)") }
        }
        for item in s.items {
            if case .star(let q) = item.expr {
                guard !aggregated else { throw fail(.syntax, nil, "SELECT * cannot be used with GROUP BY") }
                let matching = cols.indices.filter { q == nil || cols[$0].qualifier == q }
                if matching.isEmpty, let q { throw fail(.unknownTable, nil, "no table named '\(q)' in FROM for \(q).*") }
                for i in matching where !cols[i].name.isEmpty { exprs.append(.column(i, name: cols[i].name)); names.append(cols[i].name) }
                continue
            }
            exprs.append(try bindExpr(item.expr, &ctx))
            names.append(item.alias ?? displayName(item.expr, index: names.count))
        }
        let visible = exprs.count

        // ORDER BY: output names and positions first, then expressions over the input.
        var sortKeys: [SortKey] = []
        for item in orderBy {
            var idx: Int? = nil
            if case .number(let n, _) = item.expr, let k = Int(n) {
                guard k >= 1, k <= visible else { throw fail(.syntax, nil, "ORDER BY position \(k) is not in the select list (1…\(visible))") }
                idx = k - 1
            } else if case .name(let parts, _) = item.expr, parts.count == 1, let k = names.prefix(visible).firstIndex(of: parts[0]) {
                idx = k
            }
            if idx == nil {
                let e = try bindExpr(item.expr, &ctx)
                if let k = exprs.firstIndex(of: e) { idx = k } else { exprs.append(e); names.append("sort\(exprs.count)"); idx = exprs.count - 1 }
            }
            sortKeys.append(SortKey(.column(idx!, name: names[idx!]), ascending: item.ascending, nullsFirst: item.nullsFirst))
        }
        plan = .project(ctx.plan, exprs, names: names)
        if s.distinct {
            guard exprs.count == visible else { throw fail(.syntax, nil, "with SELECT DISTINCT, ORDER BY expressions must appear in the select list") }
            plan = .distinct(plan)
        }
        if !sortKeys.isEmpty { plan = .sort(plan, sortKeys) }
        if limit != nil || offset > 0 { plan = .limit(plan, count: limit, offset: offset) }
        if exprs.count > visible {
            plan = .project(plan, (0..<visible).map { Expr.column($0, name: names[$0]) }, names: Array(names.prefix(visible)))
        }
        return (plan, names.prefix(visible).map { ScopeColumn(qualifier: nil, name: $0) }, [])
    }

    func displayName(_ e: SQLExpr, index: Int) -> String {
        switch e {
        case .name(let parts, _): return parts.last!
        case .function(let n, let args, _, _):
            if args.isEmpty { return "\(n)_star" }
            if args.count == 1, case .name(let p, _) = args[0] { return "\(n)_\(p.last!)" }
            return n
        default: return "col\(index)"
        }
    }

    /// Binds a WHERE, HAVING, ON or WHEN condition, which must be a BOOLEAN.
    mutating func bindCondition(_ e: SQLExpr, _ clause: String, _ ctx: inout ExprContext) throws -> Expr {
        let x = try bindExpr(e, &ctx)
        if case .literal(.null, _) = x { return x }
        let t = ctx.type(of: x)
        guard t == .bool else { throw fail(.type, e.position, "\(clause) needs a BOOLEAN condition, found \(t) in \(x)") }
        return x
    }

    func splitAnd(_ e: SQLExpr) -> [SQLExpr] {
        if case .binary("and", let a, let b, _) = e { return splitAnd(a) + splitAnd(b) }
        return [e]
    }

    // MARK: FROM

    mutating func bindTableRef(_ t: SQLTableRef, outer: Scope?) throws -> (LogicalPlan, [ScopeColumn]) {
        switch t {
        case .table(let name, let alias, let pos):
            let q = alias ?? name
            if let (plan, cols) = ctes[name] {
                // A DataFrame's columns keep the tables they came from ("b.v" after a join).
                if name.hasPrefix("__") { return (plan, cols) }
                return (plan, cols.map { ScopeColumn(qualifier: q, name: $0.name) })
            }
            guard let table = catalog[name] else {
                let hint = closest(name, in: Array(catalog.keys) + Array(ctes.keys)).map { "; did you mean '\($0)'?" } ?? ""
                throw fail(.unknownTable, pos, "unknown table '\(name)'\(hint)")
            }
            return (.scan(name: name, table: table, columns: Array(table.fields.indices)),
                    table.fields.map { ScopeColumn(qualifier: q, name: $0.name) })
        case .subquery(let query, let alias, let columns):
            var (plan, cols) = try bindQuery(query, outer: nil)
            if !columns.isEmpty { (plan, cols) = rename(plan, cols, columns) }
            return (plan, cols.map { ScopeColumn(qualifier: alias, name: $0.name) })
        case .join(let l, let r, let kind, let on, let using):
            let (lp, lc) = try bindTableRef(l, outer: outer)
            let (rp, rc) = try bindTableRef(r, outer: outer)
            var cols = lc + rc
            if kind == "cross" { return (.join(lp, rp, .cross, leftKeys: [], rightKeys: [], residual: nil), cols) }
            let joinKind: JoinKind = kind == "left" ? .left : .inner
            var lk: [Expr] = [], rk: [Expr] = [], residual: [Expr] = []
            var right = rp
            if !using.isEmpty {
                for u in using {
                    guard let li = lc.lastIndex(where: { $0.name == u }), let ri = rc.firstIndex(where: { $0.name == u }) else {
                        throw fail(.unknownColumn, nil, "USING column '\(u)' must exist on both sides of the join")
                    }
                    lk.append(.column(li, name: u)); rk.append(.column(ri, name: u))
                    cols[lc.count + ri].name = ""  // one visible copy, as SQL merges USING columns
                }
            }
            if let on {
                var ctx = ExprContext(scope: Scope(cols, outer: outer), plan: .join(lp, rp, .cross, leftKeys: [], rightKeys: [], residual: nil))
                let n = lc.count
                for c in splitAnd(on) {
                    let e = try bindCondition(c, "ON", &ctx)
                    let used = e.columns
                    if case .binary(.eq, let a, let b) = e {
                        let ua = a.columns, ub = b.columns
                        if !ua.isEmpty, !ub.isEmpty, ua.allSatisfy({ $0 < n }), ub.allSatisfy({ $0 >= n }) {
                            lk.append(a); rk.append(b.remap { $0 - n }); continue
                        }
                        if !ua.isEmpty, !ub.isEmpty, ub.allSatisfy({ $0 < n }), ua.allSatisfy({ $0 >= n }) {
                            lk.append(b); rk.append(a.remap { $0 - n }); continue
                        }
                    }
                    if joinKind == .left, !used.isEmpty, used.allSatisfy({ $0 >= n }) {
                        // A condition on the right side alone only filters what can match.
                        right = .filter(right, e.remap { $0 - n })
                        continue
                    }
                    residual.append(e)
                }
            }
            let kindOut: JoinKind = lk.isEmpty && joinKind == .inner ? .cross : joinKind
            return (.join(lp, right, kindOut, leftKeys: lk, rightKeys: rk, residual: Expr.conjunction(residual)), cols)
        }
    }

    // MARK: subqueries

    mutating func applyExists(_ q: SQLQuery, negated: Bool, _ ctx: inout ExprContext) throws {
        guard case .select(let s) = q.body, q.ctes.isEmpty else {
            throw fail(.unsupported, nil, "EXISTS over a set operation or WITH is not supported")
        }
        var unused: [(Expr, Expr)] = []
        ctx.prepareForSubquery()
        let (sub, _, correlated) = try bindSelect(s, outer: ctx.scope, orderBy: [], limit: nil, offset: 0, correlation: .collect, keys: &unused)
        let width = ctx.width
        var lk: [Expr] = [], rk: [Expr] = [], residual: [Expr] = []
        for c in correlated {
            if case .binary(.eq, let a, let b) = c {
                if a.hasOuter, a.columns.isEmpty, !b.hasOuter, !b.columns.isEmpty { lk.append(outerToColumn(a)); rk.append(b); continue }
                if b.hasOuter, b.columns.isEmpty, !a.hasOuter, !a.columns.isEmpty { lk.append(outerToColumn(b)); rk.append(a); continue }
            }
            // Over (outer ++ inner): inner columns shift right by the outer width.
            residual.append(c.remap { $0 + width }.transform { e in
                if case .outer(let i, let n) = e { return .column(i, name: n) }
                return e
            })
        }
        ctx.plan = .join(ctx.plan, sub, negated ? .anti : .semi, leftKeys: lk, rightKeys: rk, residual: Expr.conjunction(residual))
    }

    func outerToColumn(_ e: Expr) -> Expr {
        e.transform { x in
            if case .outer(let i, let n) = x { return .column(i, name: n) }
            return x
        }
    }

    mutating func applyIn(_ lhs: SQLExpr, _ q: SQLQuery, negated: Bool, _ ctx: inout ExprContext) throws {
        let l = try bindExpr(lhs, &ctx)
        ctx.prepareForSubquery()
        let (sub, cols) = try bindQuery(q, outer: ctx.scope)
        guard cols.count == 1 else { throw fail(.type, nil, "a subquery after IN must return one column; it returns \(cols.count)") }
        ctx.plan = .join(ctx.plan, sub, negated ? .antiNullAware : .semi, leftKeys: [l], rightKeys: [.column(0, name: cols[0].name)], residual: nil)
    }

    mutating func applyScalar(_ q: SQLQuery, _ ctx: inout ExprContext) throws -> Expr {
        let width = ctx.width
        guard case .select(let s) = q.body, q.ctes.isEmpty else {
            let (sub, cols) = try bindQuery(q, outer: nil)
            guard cols.count == 1 else { throw fail(.type, nil, "a scalar subquery must return one column; it returns \(cols.count)") }
            ctx.plan = .join(ctx.plan, sub, .left, leftKeys: [], rightKeys: [], residual: nil)
            return .column(width, name: cols[0].name)
        }
        var keys: [(Expr, Expr)] = []
        ctx.prepareForSubquery()
        let (sub, cols, _) = try bindSelect(s, outer: ctx.scope, orderBy: q.orderBy, limit: q.limit, offset: q.offset,
                                            correlation: .groupKeys, keys: &keys)
        guard cols.count == keys.count + 1 else { throw fail(.type, nil, "a scalar subquery must return one column; it returns \(cols.count - keys.count)") }
        // Uncorrelated: a one-row result joined to every row. Correlated: grouped by the
        // correlation keys and left-joined on them, so a row with no group sees NULL.
        ctx.plan = .join(ctx.plan, sub, .left, leftKeys: keys.map { outerToColumn($0.0) },
                         rightKeys: keys.indices.map { .column($0, name: "key\($0)") }, residual: nil)
        return .column(width + keys.count, name: cols.last!.name)
    }

    // MARK: aggregates

    mutating func collectAggregates(_ e: SQLExpr, _ ctx: inout ExprContext, _ out: inout [Aggregate]) throws {
        switch e {
        case .function(let name, let args, let distinct, let pos) where SQLExpr.aggregateNames.contains(name):
            let a = try bindAggregate(name, args, distinct, pos, &ctx)
            if !out.contains(a) { out.append(a) }
        case .subquery, .exists, .inQuery: return
        default:
            for c in sqlChildren(e) { try collectAggregates(c, &ctx, &out) }
        }
    }

    mutating func bindAggregate(_ name: String, _ args: [SQLExpr], _ distinct: Bool, _ pos: Int, _ ctx: inout ExprContext) throws -> Aggregate {
        if name == "count" && args.isEmpty { return Aggregate(.countStar, nil) }
        guard args.count == 1 else { throw fail(.syntax, pos, "\(name) takes one argument, found \(args.count)") }
        guard !args[0].containsAggregate else { throw fail(.syntax, pos, "aggregate calls cannot be nested") }
        var pre = ctx.beforeAggregation
        let arg = try bindExpr(args[0], &pre)
        let t = pre.type(of: arg)
        if ["sum", "avg"].contains(name), !t.isNumeric { throw fail(.type, pos, "\(name) needs a number, found \(t)") }
        switch name {
        case "count": return Aggregate(distinct ? .countDistinct : .count, arg)
        case "sum": return Aggregate(.sum, arg)
        case "avg": return Aggregate(.avg, arg)
        case "min": return Aggregate(.min, arg)
        default: return Aggregate(.max, arg)
        }
    }

    func sqlChildren(_ e: SQLExpr) -> [SQLExpr] {
        switch e {
        case .unary(_, let a), .isNull(let a, _), .extract(_, let a, _), .cast(let a, _, _): return [a]
        case .binary(_, let a, let b, _), .like(let a, let b, _, _): return [a, b]
        case .between(let a, let b, let c, _): return [a, b, c]
        case .inList(let a, let l, _): return [a] + l
        case .inQuery(let a, _, _): return [a]
        case .function(_, let args, _, _): return args
        case .caseWhen(let o, let ws, let el): return (o.map { [$0] } ?? []) + ws.flatMap { [$0.0, $0.1] } + (el.map { [$0] } ?? [])
        case .substring(let a, let b, let c, _): return [a, b] + (c.map { [$0] } ?? [])
        default: return []
        }
    }
}
