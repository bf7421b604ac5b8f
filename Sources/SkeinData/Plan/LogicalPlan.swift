/// How rows of two inputs pair up.
public enum JoinKind: String, Hashable, Sendable {
    case inner = "INNER", left = "LEFT", semi = "SEMI", anti = "ANTI"
    /// NOT IN: an anti join that returns nothing when the right side holds a null key.
    case antiNullAware = "ANTI (NULL-AWARE)"
    /// Every pair (no keys); a residual may still filter.
    case cross = "CROSS"
}

public enum SetOpKind: String, Hashable, Sendable { case union = "UNION", intersect = "INTERSECT", except = "EXCEPT" }

public enum AggregateFunction: String, Hashable, Sendable {
    case countStar = "count_star", count, countDistinct = "count_distinct", sum, avg, min, max
}

/// One aggregate of a group-by: a function over an argument expression of the input.
public struct Aggregate: Hashable, Sendable, CustomStringConvertible {
    public var function: AggregateFunction
    public var argument: Expr?

    public init(_ function: AggregateFunction, _ argument: Expr?) {
        self.function = function
        self.argument = argument
    }

    public var description: String {
        switch function {
        case .countStar: "count(*)"
        case .countDistinct: "count(DISTINCT \(argument!))"
        default: "\(function.rawValue)(\(argument.map { "\($0)" } ?? ""))"
        }
    }

    func resultType(_ input: [DataType]) -> DataType {
        switch function {
        case .countStar, .count, .countDistinct: return .int64
        case .avg: return .double
        case .sum:
            let t = SkeinData.resultType(argument!, input)
            return t == .date ? .int64 : t
        case .min, .max: return SkeinData.resultType(argument!, input)
        }
    }
}

public struct SortKey: Hashable, Sendable {
    public var expr: Expr
    public var ascending: Bool
    public var nullsFirst: Bool

    public init(_ expr: Expr, ascending: Bool = true, nullsFirst: Bool? = nil) {
        self.expr = expr
        self.ascending = ascending
        // SQL's default (PostgreSQL, DuckDB): nulls sort as if larger than every value.
        self.nullsFirst = nullsFirst ?? !ascending
    }
}

/// A relational plan: what to compute, not how. The SQL binder and the DataFrame API build it,
/// the optimizer rewrites it, the executor runs it.
public indirect enum LogicalPlan: Sendable {
    case scan(name: String, table: Table, columns: [Int])
    case filter(LogicalPlan, Expr)
    case project(LogicalPlan, [Expr], names: [String])
    case join(LogicalPlan, LogicalPlan, JoinKind, leftKeys: [Expr], rightKeys: [Expr], residual: Expr?)
    case aggregate(LogicalPlan, groups: [Expr], aggregates: [Aggregate], names: [String])
    case sort(LogicalPlan, [SortKey])
    case limit(LogicalPlan, count: Int?, offset: Int)
    case distinct(LogicalPlan)
    case setOperation(SetOpKind, all: Bool, LogicalPlan, LogicalPlan)
    case values(Table)

    /// The output columns.
    public var fields: [Field] {
        switch self {
        case .scan(_, let t, let cols): return cols.map { t.fields[$0] }
        case .filter(let p, _), .sort(let p, _), .limit(let p, _, _), .distinct(let p): return p.fields
        case .project(let p, let es, let names):
            let types = p.fields.map(\.type)
            return zip(es, names).map { Field($1, resultType($0, types)) }
        case .join(let l, let r, let kind, _, _, _):
            switch kind {
            case .semi, .anti, .antiNullAware: return l.fields
            default: return l.fields + r.fields
            }
        case .aggregate(let p, let groups, let aggs, let names):
            let types = p.fields.map(\.type)
            let ts = groups.map { resultType($0, types) } + aggs.map { $0.resultType(types) }
            return zip(names, ts).map { Field($0, $1) }
        case .setOperation(_, _, let l, _): return l.fields
        case .values(let t): return t.fields
        }
    }

    public var types: [DataType] { fields.map(\.type) }

    public var inputs: [LogicalPlan] {
        switch self {
        case .scan, .values: []
        case .filter(let p, _), .project(let p, _, _), .aggregate(let p, _, _, _), .sort(let p, _), .limit(let p, _, _), .distinct(let p): [p]
        case .join(let l, let r, _, _, _, _), .setOperation(_, _, let l, let r): [l, r]
        }
    }

    /// The plan as an indented tree, as EXPLAIN prints it.
    public func explain(indent: Int = 0) -> String {
        let pad = String(repeating: "  ", count: indent)
        let names = fields.map(\.name)
        func named(_ e: Expr, _ input: [String]) -> String { e.description }
        var line: String
        switch self {
        case .scan(let n, let t, let cols): line = "SCAN \(n) [\(cols.map { t.fields[$0].name }.joined(separator: ", "))] (\(t.rowCount) rows)"
        case .filter(_, let e): line = "FILTER \(e)"
        case .project(_, let es, let ns): line = "PROJECT " + zip(es, ns).map { e, n in e.description == n ? n : "\(e) AS \(n)" }.joined(separator: ", ")
        case .join(_, _, let k, let lk, let rk, let res):
            let keys = zip(lk, rk).map { "\($0) = \($1)" }.joined(separator: " AND ")
            line = "\(k.rawValue) JOIN" + (keys.isEmpty ? "" : " ON \(keys)") + (res.map { " WHERE \($0)" } ?? "")
        case .aggregate(_, let g, let a, _):
            line = "AGGREGATE" + (g.isEmpty ? "" : " BY \(g.map(\.description).joined(separator: ", "))") + " → \(a.map(\.description).joined(separator: ", "))"
        case .sort(_, let keys): line = "SORT " + keys.map { "\($0.expr)\($0.ascending ? "" : " DESC")" }.joined(separator: ", ")
        case .limit(_, let c, let o): line = "LIMIT \(c.map(String.init) ?? "ALL")" + (o > 0 ? " OFFSET \(o)" : "")
        case .distinct: line = "DISTINCT"
        case .setOperation(let k, let all, _, _): line = k.rawValue + (all ? " ALL" : "")
        case .values(let t): line = "VALUES (\(t.rowCount) rows)"
        }
        _ = names
        return ([pad + line] + inputs.map { $0.explain(indent: indent + 1) }).joined(separator: "\n")
    }
}
