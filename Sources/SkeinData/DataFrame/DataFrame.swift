/// A lazily evaluated query over tables, built call by call; nothing runs until `collect()`.
/// Each call goes through the same binder as SQL, so a DataFrame and the equivalent SQL make the
/// same logical plan, optimized and executed the same way.
public struct DataFrame: Sendable {
    let database: Database
    let plan: LogicalPlan
    let columns: [ScopeColumn]

    /// The column names, as `collect()` will return them.
    public var names: [String] { columns.map(\.name) }

    /// The unoptimized logical plan.
    public var logicalPlan: LogicalPlan { plan }

    private func binder() -> Binder {
        var b = Binder(catalog: [:], sql: "")
        b.ctes[Self.frameName] = (plan, columns)
        return b
    }

    static let frameName = "__frame"

    private func select(_ s: SQLSelect, orderBy: [SQLOrderItem] = [], limit: Int? = nil) throws -> DataFrame {
        var s = s
        s.from = [.table(Self.frameName, alias: nil, pos: 0)]
        var b = binder()
        var unused: [(Expr, Expr)] = []
        let (p, cols, _) = try b.bindSelect(s, outer: nil, orderBy: orderBy, limit: limit, offset: 0, correlation: .none, keys: &unused)
        // A filter, sort or limit keeps the columns' tables, so "b.v" still resolves after it.
        let keep = cols.count == columns.count && zip(cols, columns).allSatisfy { $0.name == $1.name }
        return DataFrame(database: database, plan: p, columns: keep ? columns : cols)
    }

    private var all: [SQLSelectItem] {
        columns.map { SQLSelectItem(expr: .name(($0.qualifier.map { [$0] } ?? []) + [$0.name], pos: 0), alias: $0.name) }
    }

    /// Keeps the rows where `predicate` is true (σ).
    public func filter(_ predicate: ColumnExpr) throws -> DataFrame {
        var s = SQLSelect()
        s.items = all
        s.whereClause = predicate.sqlExpr
        return try select(s)
    }

    /// Computes these expressions for each row (π).
    public func select(_ exprs: ColumnExpr...) throws -> DataFrame {
        var s = SQLSelect()
        s.items = exprs.map { SQLSelectItem(expr: $0.sqlExpr, alias: $0.alias) }
        return try select(s)
    }

    /// Joins with another frame on pairs of equal columns (⋈); `kind` is inner, left, semi or anti.
    public func join(_ other: DataFrame, on pairs: [(String, String)], kind: JoinKind = .inner) throws -> DataFrame {
        var b = binder()
        b.ctes["__left"] = (plan, columns)
        b.ctes["__right"] = (other.plan, other.columns)
        let (lp, lc) = try b.bindTableRef(.table("__left", alias: nil, pos: 0), outer: nil)
        let (rp, rc) = try b.bindTableRef(.table("__right", alias: nil, pos: 0), outer: nil)
        var ctxL = ExprContext(scope: Scope(lc, outer: nil), plan: lp)
        var ctxR = ExprContext(scope: Scope(rc, outer: nil), plan: rp)
        let lk = try pairs.map { try b.bindExpr(col($0.0).sqlExpr, &ctxL) }
        let rk = try pairs.map { try b.bindExpr(col($0.1).sqlExpr, &ctxR) }
        let p = LogicalPlan.join(lp, rp, kind, leftKeys: lk, rightKeys: rk, residual: nil)
        let semi = kind == .semi || kind == .anti || kind == .antiNullAware
        return DataFrame(database: database, plan: p, columns: semi ? lc : lc + rc)
    }

    /// Groups rows by these columns; follow with `agg`.
    public func groupBy(_ names: String...) -> GroupedFrame { GroupedFrame(frame: self, keys: names) }

    /// Sorts by these keys (`col("x").desc` for descending).
    public func orderBy(_ keys: ColumnExpr...) throws -> DataFrame {
        var s = SQLSelect()
        s.items = all
        return try select(s, orderBy: keys.map { SQLOrderItem(expr: $0.sqlExpr, ascending: !$0.descending, nullsFirst: nil) })
    }

    /// At most `n` rows.
    public func limit(_ n: Int) throws -> DataFrame {
        var s = SQLSelect()
        s.items = all
        return try select(s, limit: n)
    }

    /// Distinct rows.
    public func distinct() throws -> DataFrame {
        var s = SQLSelect()
        s.items = all
        s.distinct = true
        return try select(s)
    }

    /// Runs the query and returns its rows.
    public func collect() throws -> Table { try database.execute(plan, optimize: true) }

    /// The optimized plan, as EXPLAIN prints it.
    public func explain() -> String { Optimizer(statistics: database.statistics).optimize(plan).explain() }

    fileprivate func aggregate(_ keys: [String], _ aggs: [ColumnExpr]) throws -> DataFrame {
        var s = SQLSelect()
        let keyExprs = keys.map { col($0).sqlExpr }
        s.items = zip(keys, keyExprs).map { SQLSelectItem(expr: $1, alias: $0.split(separator: ".").last.map(String.init)) }
            + aggs.map { SQLSelectItem(expr: $0.sqlExpr, alias: $0.alias) }
        s.groupBy = keyExprs
        return try select(s)
    }
}

/// A frame grouped by key columns, waiting for its aggregates.
public struct GroupedFrame: Sendable {
    let frame: DataFrame
    let keys: [String]

    /// One row per group: the keys, then these aggregates (`sum(col("x")).as("total")`).
    public func agg(_ aggregates: ColumnExpr...) throws -> DataFrame { try frame.aggregate(keys, aggregates) }
}

extension Database {
    /// A DataFrame over a registered table.
    public func frame(_ table: String) throws -> DataFrame {
        guard let t = self.table(table) else {
            let hint = closest(table, in: tableNames).map { "; did you mean '\($0)'?" } ?? ""
            throw DataError(.unknownTable, "unknown table '\(table)'\(hint)")
        }
        let name = table.lowercased()
        return DataFrame(database: self, plan: .scan(name: name, table: t, columns: Array(t.fields.indices)),
                         columns: t.fields.map { ScopeColumn(qualifier: name, name: $0.name) })
    }
}
