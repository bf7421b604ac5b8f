/// An expression over a DataFrame's columns, named until the frame binds it: `col("price") * 2 > 10`.
public struct ColumnExpr: Sendable, ExpressibleByIntegerLiteral, ExpressibleByFloatLiteral, ExpressibleByStringLiteral {
    let sql: SQLExprBox
    var alias: String? = nil
    var descending = false

    var sqlExpr: SQLExpr { sql.expr }

    init(_ e: SQLExpr) { sql = SQLExprBox(e) }

    public init(integerLiteral v: Int) { self.init(.number(String(v), pos: -1)) }
    public init(floatLiteral v: Double) { self.init(.number(String(v), pos: -1)) }
    public init(stringLiteral v: String) { self.init(.string(v)) }

    /// Names the result column.
    public func `as`(_ name: String) -> ColumnExpr { var c = self; c.alias = name; return c }
    /// Sorts descending (in `orderBy`).
    public var desc: ColumnExpr { var c = self; c.descending = true; return c }

    public func like(_ pattern: String) -> ColumnExpr { ColumnExpr(.like(sqlExpr, .string(pattern), negated: false, pos: -1)) }
    public func isIn(_ values: [ColumnExpr]) -> ColumnExpr { ColumnExpr(.inList(sqlExpr, values.map(\.sqlExpr), negated: false)) }
    public func between(_ lo: ColumnExpr, _ hi: ColumnExpr) -> ColumnExpr { ColumnExpr(.between(sqlExpr, lo.sqlExpr, hi.sqlExpr, negated: false)) }
    public var isNull: ColumnExpr { ColumnExpr(.isNull(sqlExpr, negated: false)) }
    public var year: ColumnExpr { ColumnExpr(.extract("year", sqlExpr, pos: -1)) }

    static func op(_ o: String, _ a: ColumnExpr, _ b: ColumnExpr) -> ColumnExpr { ColumnExpr(.binary(o, a.sqlExpr, b.sqlExpr, pos: -1)) }
    public static func + (a: ColumnExpr, b: ColumnExpr) -> ColumnExpr { op("+", a, b) }
    public static func - (a: ColumnExpr, b: ColumnExpr) -> ColumnExpr { op("-", a, b) }
    public static func * (a: ColumnExpr, b: ColumnExpr) -> ColumnExpr { op("*", a, b) }
    public static func / (a: ColumnExpr, b: ColumnExpr) -> ColumnExpr { op("/", a, b) }
    public static func == (a: ColumnExpr, b: ColumnExpr) -> ColumnExpr { op("=", a, b) }
    public static func != (a: ColumnExpr, b: ColumnExpr) -> ColumnExpr { op("<>", a, b) }
    public static func < (a: ColumnExpr, b: ColumnExpr) -> ColumnExpr { op("<", a, b) }
    public static func <= (a: ColumnExpr, b: ColumnExpr) -> ColumnExpr { op("<=", a, b) }
    public static func > (a: ColumnExpr, b: ColumnExpr) -> ColumnExpr { op(">", a, b) }
    public static func >= (a: ColumnExpr, b: ColumnExpr) -> ColumnExpr { op(">=", a, b) }
    public static func && (a: ColumnExpr, b: ColumnExpr) -> ColumnExpr { op("and", a, b) }
    public static func || (a: ColumnExpr, b: ColumnExpr) -> ColumnExpr { op("or", a, b) }
    public static prefix func ! (a: ColumnExpr) -> ColumnExpr { ColumnExpr(.unary("not", a.sqlExpr)) }
}

/// Holds a parsed expression; immutable once made.
final class SQLExprBox: @unchecked Sendable {
    // Safe: never mutated after init.
    let expr: SQLExpr
    init(_ e: SQLExpr) { expr = e }
}

/// A column by name, optionally qualified: `col("l_price")`, `col("b.v")`.
public func col(_ name: String) -> ColumnExpr {
    ColumnExpr(.name(name.lowercased().split(separator: ".").map(String.init), pos: 0))
}

/// A constant.
public func lit(_ v: ColumnExpr) -> ColumnExpr { v }
public func count() -> ColumnExpr { ColumnExpr(.function("count", [], distinct: false, pos: 0)) }
public func count(_ e: ColumnExpr, distinct: Bool = false) -> ColumnExpr { ColumnExpr(.function("count", [e.sqlExpr], distinct: distinct, pos: 0)) }
public func sum(_ e: ColumnExpr) -> ColumnExpr { ColumnExpr(.function("sum", [e.sqlExpr], distinct: false, pos: 0)) }
public func avg(_ e: ColumnExpr) -> ColumnExpr { ColumnExpr(.function("avg", [e.sqlExpr], distinct: false, pos: 0)) }
public func min(_ e: ColumnExpr) -> ColumnExpr { ColumnExpr(.function("min", [e.sqlExpr], distinct: false, pos: 0)) }
public func max(_ e: ColumnExpr) -> ColumnExpr { ColumnExpr(.function("max", [e.sqlExpr], distinct: false, pos: 0)) }
