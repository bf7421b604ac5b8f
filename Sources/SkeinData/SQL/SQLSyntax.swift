/// SQL as parsed, before names are resolved.
indirect enum SQLExpr {
    case name([String], pos: Int)
    case star(qualifier: String?)
    case number(String, pos: Int)
    case string(String)
    case null
    case boolean(Bool)
    case date(String, pos: Int)
    case interval(String, unit: String, pos: Int)
    case unary(String, SQLExpr)
    case binary(String, SQLExpr, SQLExpr, pos: Int)
    case between(SQLExpr, SQLExpr, SQLExpr, negated: Bool)
    case like(SQLExpr, SQLExpr, negated: Bool, pos: Int)
    case inList(SQLExpr, [SQLExpr], negated: Bool)
    case inQuery(SQLExpr, SQLQuery, negated: Bool)
    case exists(SQLQuery, negated: Bool)
    case subquery(SQLQuery)
    case isNull(SQLExpr, negated: Bool)
    case function(String, [SQLExpr], distinct: Bool, pos: Int)
    case caseWhen(SQLExpr?, [(SQLExpr, SQLExpr)], SQLExpr?)
    case cast(SQLExpr, String, pos: Int)
    case extract(String, SQLExpr, pos: Int)
    case substring(SQLExpr, SQLExpr, SQLExpr?, pos: Int)

    /// Where the expression starts in the SQL text, or its operator (nil for expressions built by the DataFrame API).
    var position: Int? {
        switch self {
        case .name(_, let p), .date(_, let p), .interval(_, _, let p), .function(_, _, _, let p), .cast(_, _, let p),
             .number(_, let p), .binary(_, _, _, let p), .like(_, _, _, let p), .extract(_, _, let p), .substring(_, _, _, let p):
            return p >= 0 ? p : nil
        case .unary(_, let e), .isNull(let e, _), .between(let e, _, _, _), .inList(let e, _, _), .inQuery(let e, _, _): return e.position
        case .caseWhen(let o, let ws, _): return o?.position ?? ws.first?.0.position
        default: return nil
        }
    }

    static let aggregateNames: Set<String> = ["count", "sum", "avg", "min", "max"]

    var containsAggregate: Bool {
        switch self {
        case .function(let n, let args, _, _): return SQLExpr.aggregateNames.contains(n) || args.contains { $0.containsAggregate }
        case .unary(_, let e), .isNull(let e, _), .extract(_, let e, _), .cast(let e, _, _): return e.containsAggregate
        case .binary(_, let a, let b, _), .like(let a, let b, _, _): return a.containsAggregate || b.containsAggregate
        case .between(let a, let b, let c, _): return a.containsAggregate || b.containsAggregate || c.containsAggregate
        case .inList(let a, let l, _): return a.containsAggregate || l.contains { $0.containsAggregate }
        case .inQuery(let a, _, _): return a.containsAggregate
        case .caseWhen(let o, let ws, let e):
            return (o?.containsAggregate ?? false) || ws.contains { $0.0.containsAggregate || $0.1.containsAggregate } || (e?.containsAggregate ?? false)
        case .substring(let a, let b, let c, _): return a.containsAggregate || b.containsAggregate || (c?.containsAggregate ?? false)
        default: return false
        }
    }
}

struct SQLSelectItem {
    var expr: SQLExpr
    var alias: String?
}

indirect enum SQLTableRef {
    case table(String, alias: String?, pos: Int)
    case subquery(SQLQuery, alias: String?, columns: [String])
    case join(SQLTableRef, SQLTableRef, kind: String, on: SQLExpr?, using: [String])
}

struct SQLSelect {
    var distinct = false
    var items: [SQLSelectItem] = []
    var from: [SQLTableRef] = []
    var whereClause: SQLExpr?
    var groupBy: [SQLExpr] = []
    var having: SQLExpr?
}

indirect enum SQLQueryBody {
    case select(SQLSelect)
    case setOperation(String, all: Bool, SQLQueryBody, SQLQueryBody)
    case nested(SQLQuery)
}

struct SQLOrderItem {
    var expr: SQLExpr
    var ascending: Bool
    var nullsFirst: Bool?
}

struct SQLCTE {
    var name: String
    var columns: [String]
    var query: SQLQuery
}

final class SQLQuery {
    var ctes: [SQLCTE] = []
    var body: SQLQueryBody
    var orderBy: [SQLOrderItem] = []
    var limit: Int?
    var offset = 0

    init(body: SQLQueryBody) { self.body = body }
}

/// A statement: a query, or EXPLAIN of one.
enum SQLStatement {
    case query(SQLQuery)
    case explain(SQLQuery)
}
