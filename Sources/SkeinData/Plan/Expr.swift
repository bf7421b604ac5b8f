/// A scalar expression over the columns of an operator's input (bound: columns by position).
public indirect enum Expr: Hashable, Sendable, CustomStringConvertible {
    case column(Int, name: String)
    case literal(Value, DataType)
    case binary(BinaryOp, Expr, Expr)
    case not(Expr)
    case negate(Expr)
    case isNull(Expr, negated: Bool)
    case like(Expr, pattern: String, negated: Bool)
    case inList(Expr, [Value], negated: Bool)
    case caseWhen([WhenClause], otherwise: Expr?)
    case extractYear(Expr)
    case extract(DateField, Expr)
    case substring(Expr, start: Int, length: Int?)
    case cast(Expr, DataType)
    /// date + INTERVAL n MONTH, clamping the day to the month's length.
    case addMonths(Expr, Int)
    /// A column of the enclosing query, seen from inside a correlated subquery (binding only).
    case outer(Int, name: String)

    public enum DateField: String, Sendable { case year, month, day }

    public static func col(_ i: Int) -> Expr { .column(i, name: "#\(i)") }
    public static func lit(_ v: Value) -> Expr { .literal(v, v.type ?? .int64) }

    public var description: String {
        switch self {
        case .column(_, let n): return n
        case .outer(_, let n): return "outer.\(n)"
        case .literal(let v, let t):
            if case .string(let s) = v { return "'\(s)'" }
            if t == .date { return "DATE '\(v)'" }
            return v.description
        case .binary(let op, let l, let r): return "(\(l) \(op.rawValue) \(r))"
        case .not(let e): return "NOT \(e)"
        case .negate(let e): return "-\(e)"
        case .isNull(let e, let n): return "\(e) IS \(n ? "NOT " : "")NULL"
        case .like(let e, let p, let n): return "\(e) \(n ? "NOT " : "")LIKE '\(p)'"
        case .inList(let e, let vs, let n): return "\(e) \(n ? "NOT " : "")IN (\(vs.map { Expr.lit($0).description }.joined(separator: ", ")))"
        case .caseWhen(let ws, let e):
            return "CASE " + ws.map { "WHEN \($0.condition) THEN \($0.result)" }.joined(separator: " ") + (e.map { " ELSE \($0)" } ?? "") + " END"
        case .extractYear(let e): return "EXTRACT(YEAR FROM \(e))"
        case .extract(let f, let e): return "EXTRACT(\(f.rawValue.uppercased()) FROM \(e))"
        case .substring(let e, let s, let l): return "SUBSTRING(\(e), \(s)\(l.map { ", \($0)" } ?? ""))"
        case .cast(let e, let t): return "CAST(\(e) AS \(t))"
        case .addMonths(let e, let n): return "(\(e) + INTERVAL '\(n)' MONTH)"
        }
    }

    /// The input columns this expression reads.
    public var columns: Set<Int> {
        var s = Set<Int>()
        visit { if case .column(let i, _) = $0 { s.insert(i) } }
        return s
    }

    public var hasOuter: Bool {
        var found = false
        visit { if case .outer = $0 { found = true } }
        return found
    }

    public func visit(_ f: (Expr) -> Void) {
        f(self)
        for c in children { c.visit(f) }
    }

    public var children: [Expr] {
        switch self {
        case .column, .literal, .outer: []
        case .binary(_, let l, let r): [l, r]
        case .not(let e), .negate(let e), .isNull(let e, _), .like(let e, _, _), .inList(let e, _, _),
             .extractYear(let e), .extract(_, let e), .substring(let e, _, _), .cast(let e, _), .addMonths(let e, _): [e]
        case .caseWhen(let ws, let e): ws.flatMap { [$0.condition, $0.result] } + (e.map { [$0] } ?? [])
        }
    }

    /// Rebuilds the expression bottom-up through `f`.
    public func transform(_ f: (Expr) -> Expr) -> Expr {
        let rebuilt: Expr
        switch self {
        case .column, .literal, .outer: rebuilt = self
        case .binary(let op, let l, let r): rebuilt = .binary(op, l.transform(f), r.transform(f))
        case .not(let e): rebuilt = .not(e.transform(f))
        case .negate(let e): rebuilt = .negate(e.transform(f))
        case .isNull(let e, let n): rebuilt = .isNull(e.transform(f), negated: n)
        case .like(let e, let p, let n): rebuilt = .like(e.transform(f), pattern: p, negated: n)
        case .inList(let e, let v, let n): rebuilt = .inList(e.transform(f), v, negated: n)
        case .caseWhen(let ws, let e):
            rebuilt = .caseWhen(ws.map { WhenClause(condition: $0.condition.transform(f), result: $0.result.transform(f)) }, otherwise: e?.transform(f))
        case .extractYear(let e): rebuilt = .extractYear(e.transform(f))
        case .extract(let d, let e): rebuilt = .extract(d, e.transform(f))
        case .substring(let e, let s, let l): rebuilt = .substring(e.transform(f), start: s, length: l)
        case .cast(let e, let t): rebuilt = .cast(e.transform(f), t)
        case .addMonths(let e, let n): rebuilt = .addMonths(e.transform(f), n)
        }
        return f(rebuilt)
    }

    /// Renumbers column references.
    public func remap(_ m: (Int) -> Int) -> Expr {
        transform { e in
            if case .column(let i, let n) = e { return .column(m(i), name: n) }
            return e
        }
    }

    /// The conjuncts of an AND chain.
    public var conjuncts: [Expr] {
        if case .binary(.and, let l, let r) = self { return l.conjuncts + r.conjuncts }
        return [self]
    }

    public static func conjunction(_ es: [Expr]) -> Expr? {
        guard var acc = es.first else { return nil }
        for e in es.dropFirst() { acc = .binary(.and, acc, e) }
        return acc
    }
}

public struct WhenClause: Hashable, Sendable {
    public var condition: Expr
    public var result: Expr
    public init(condition: Expr, result: Expr) { self.condition = condition; self.result = result }
}

public enum BinaryOp: String, Hashable, Sendable {
    case add = "+", sub = "-", mul = "*", div = "/", mod = "%"
    case eq = "=", ne = "<>", lt = "<", le = "<=", gt = ">", ge = ">="
    case and = "AND", or = "OR"
    case concat = "||"

    public var isComparison: Bool { [.eq, .ne, .lt, .le, .gt, .ge].contains(self) }
    public var isArithmetic: Bool { [.add, .sub, .mul, .div, .mod].contains(self) }

    /// The comparison with its operands swapped (a < b ⇔ b > a).
    var flipped: BinaryOp {
        switch self {
        case .lt: .gt
        case .le: .ge
        case .gt: .lt
        case .ge: .le
        default: self
        }
    }
}

/// The result type of an expression over inputs of `types`.
public func resultType(_ e: Expr, _ types: [DataType]) -> DataType {
    switch e {
    case .column(let i, _), .outer(let i, _): return types[i]
    case .literal(_, let t): return t
    case .binary(let op, let l, let r):
        if op.isComparison || op == .and || op == .or { return .bool }
        if op == .concat { return .string }
        return arithmeticType(op, resultType(l, types), resultType(r, types))
    case .not, .isNull, .like, .inList: return .bool
    case .negate(let x): return resultType(x, types)
    case .caseWhen(let ws, let e):
        var t: DataType? = nil
        for r in ws.map(\.result) + (e.map { [$0] } ?? []) {
            if case .literal(.null, _) = r { continue }
            let rt = resultType(r, types)
            t = t.map { unify($0, rt) } ?? rt
        }
        return t ?? .int64
    case .extractYear, .extract: return .int64
    case .substring: return .string
    case .cast(_, let t): return t
    case .addMonths: return .date
    }
}

/// The common type of two numeric operands (for comparison and CASE branches).
func unify(_ a: DataType, _ b: DataType) -> DataType {
    if a == b { return a }
    switch (a, b) {
    case (.double, _), (_, .double): return .double
    case (.decimal(let s), .decimal(let t)): return .decimal(scale: max(s, t))
    case (.decimal, .int64): return a
    case (.int64, .decimal): return b
    default: return a
    }
}

/// Arithmetic typing: decimals stay exact for +, − and × (scales add, up to 12); ÷ gives a double.
func arithmeticType(_ op: BinaryOp, _ a: DataType, _ b: DataType) -> DataType {
    switch (a, b) {
    case (.date, .int64) where op == .add || op == .sub: return .date
    case (.date, .date) where op == .sub: return .int64
    default: break
    }
    if op == .div { return .double }
    switch (a, b) {
    case (.double, _), (_, .double): return .double
    case (.int64, .int64): return .int64
    default:
        let s = a.scale, t = b.scale
        if op == .mul { return s + t <= 12 ? .decimal(scale: s + t) : .double }
        if op == .mod { return .double }
        return .decimal(scale: max(s, t))
    }
}
