extension Binder {
    /// Binds a scalar expression. After GROUP BY, aggregates and group expressions become
    /// columns of the aggregate's output; a scalar subquery joins onto `ctx.plan`.
    mutating func bindExpr(_ e: SQLExpr, _ ctx: inout ExprContext) throws -> Expr {
        if let groups = ctx.groups {
            if case .function(let name, let args, let distinct, let pos) = e, SQLExpr.aggregateNames.contains(name) {
                let a = try bindAggregate(name, args, distinct, pos, &ctx)
                guard let k = ctx.aggregates.firstIndex(of: a) else { throw fail(.syntax, pos, "aggregate \(a) was not collected") }
                return .column(groups.count + k, name: a.description)
            }
            if !e.containsAggregate, !containsSubquery(e) {
                var pre = ctx.beforeAggregation
                let bound = try bindExpr(e, &pre)
                if let k = groups.firstIndex(of: bound) { return .column(k, name: bound.description) }
                if bound.columns.isEmpty { return bound }
                if case .name(let parts, let pos) = e {
                    throw fail(.syntax, pos, "column '\(parts.joined(separator: "."))' must appear in GROUP BY or be used in an aggregate function")
                }
            }
        }
        switch e {
        case .name(let parts, let pos):
            return try resolve(parts, pos, ctx.scope)
        case .star:
            throw fail(.syntax, nil, "* is only allowed in the select list and count(*)")
        case .number(let text, let pos):
            return try numberLiteral(text, pos)
        case .string(let s):
            return .literal(.string(s), .string)
        case .null:
            return .literal(.null, .int64)
        case .boolean(let b):
            return .literal(.bool(b), .bool)
        case .date(let s, let pos):
            guard let d = parseDate(s) else { throw fail(.syntax, pos, "'\(s)' is not a date (YYYY-MM-DD)") }
            return .literal(.date(d), .date)
        case .interval(_, _, let pos):
            throw fail(.unsupported, pos, "an INTERVAL can only be added to or subtracted from a date")
        case .unary(let op, let a):
            let x = try bindExpr(a, &ctx)
            if op == "not" { return .not(x) }
            if case .literal(let v, let t) = x {
                switch v {
                case .int(let i): return .literal(.int(-i), t)
                case .decimal(let i, let s): return .literal(.decimal(-i, scale: s), t)
                case .double(let d): return .literal(.double(-d), t)
                default: break
                }
            }
            return .negate(x)
        case .binary(let op, let a, let b, let opPos):
            // date ± INTERVAL folds at bind time (the specification's "date '1998-12-01' - interval '90' day").
            if case .interval(let amount, let unit, let pos) = b, op == "+" || op == "-" {
                let base = try bindExpr(a, &ctx)
                return try addInterval(base, amount, unit, negate: op == "-", pos)
            }
            if case .interval(let amount, let unit, let pos) = a, op == "+" {
                return try addInterval(try bindExpr(b, &ctx), amount, unit, negate: false, pos)
            }
            var x = try bindExpr(a, &ctx)
            var y = try bindExpr(b, &ctx)
            // The parser emits each operator as BinaryOp spells it (AND and OR in lower case).
            guard let bop = BinaryOp(rawValue: op.uppercased()) else { throw fail(.syntax, opPos, "unknown operator '\(op)'") }
            if bop.isComparison { (x, y) = try coerceForComparison(x, y, &ctx) }
            try checkOperands(bop, x, y, ctx, opPos)
            return .binary(bop, x, y)
        case .between(let v, let lo, let hi, let negated):
            let x = try bindExpr(v, &ctx)
            let (a, l) = try coerceForComparison(x, try bindExpr(lo, &ctx), &ctx)
            let (b, h) = try coerceForComparison(x, try bindExpr(hi, &ctx), &ctx)
            try checkOperands(.ge, a, l, ctx, lo.position)
            try checkOperands(.le, b, h, ctx, hi.position ?? v.position)
            let both = Expr.binary(.and, .binary(.ge, a, l), .binary(.le, b, h))
            return negated ? .not(both) : both
        case .like(let v, let p, let negated, let pos):
            let x = try bindExpr(v, &ctx)
            guard case .literal(.string(let pattern), _) = try bindExpr(p, &ctx) else {
                throw fail(.unsupported, p.position ?? pos, "LIKE needs a constant string pattern")
            }
            guard ctx.type(of: x) == .string else { throw fail(.type, pos, "LIKE needs a VARCHAR on its left, found \(ctx.type(of: x)) in \(x)") }
            return .like(x, pattern: pattern, negated: negated)
        case .inList(let v, let items, let negated):
            let x = try bindExpr(v, &ctx)
            let t = ctx.type(of: x)
            var values: [Value] = []
            for item in items {
                let (_, lit) = try coerceForComparison(x, try bindExpr(item, &ctx), &ctx)
                try checkOperands(.eq, x, lit, ctx, item.position)
                guard case .literal(let value, _) = fold(lit) else {
                    // Not constants: expand to ORs.
                    let ors = try items.map { Expr.binary(.eq, x, try coerceForComparison(x, try bindExpr($0, &ctx), &ctx).1) }
                    let any = ors.dropFirst().reduce(ors[0]) { Expr.binary(.or, $0, $1) }
                    return negated ? .not(any) : any
                }
                values.append(t == .string || t == .date || t == .bool ? value : value)
            }
            return .inList(x, values, negated: negated)
        case .inQuery, .exists:
            throw fail(.unsupported, e.position, "IN (subquery) and EXISTS are supported as conditions joined by AND in WHERE")
        case .subquery(let q):
            return try applyScalar(q, &ctx)
        case .isNull(let v, let negated):
            return .isNull(try bindExpr(v, &ctx), negated: negated)
        case .function(let name, let args, _, let pos):
            if SQLExpr.aggregateNames.contains(name) {
                throw fail(.syntax, pos, "aggregate \(name)() is not allowed here (WHERE, GROUP BY or inside another aggregate)")
            }
            return try bindFunction(name, args, pos, &ctx)
        case .caseWhen(let operand, let whens, let otherwise):
            var clauses: [WhenClause] = []
            for (c, r) in whens {
                var cond: Expr
                if let operand {
                    let (a, b) = try coerceForComparison(try bindExpr(operand, &ctx), try bindExpr(c, &ctx), &ctx)
                    try checkOperands(.eq, a, b, ctx, c.position)
                    cond = .binary(.eq, a, b)
                } else {
                    cond = try bindCondition(c, "WHEN", &ctx)
                }
                clauses.append(WhenClause(condition: cond, result: try bindExpr(r, &ctx)))
            }
            return .caseWhen(clauses, otherwise: try otherwise.map { try bindExpr($0, &ctx) })
        case .cast(let v, let typeName, let pos):
            let t = try parseTypeName(typeName, pos)
            let x = try bindExpr(v, &ctx)
            if case .literal(let value, _) = x { return .literal(try castValue(value, to: t), t) }
            return .cast(x, t)
        case .extract(let field, let v, let pos):
            let x = try bindExpr(v, &ctx)
            guard ctx.type(of: x) == .date else { throw fail(.type, v.position ?? pos, "EXTRACT needs a DATE, found \(ctx.type(of: x)) in \(x)") }
            switch field {
            case "year": return .extractYear(x)
            case "month": return .extract(.month, x)
            case "day": return .extract(.day, x)
            default: throw fail(.unsupported, pos, "EXTRACT(\(field.uppercased()) …) is not supported; use YEAR, MONTH or DAY")
            }
        case .substring(let v, let from, let len, let pos):
            let x = try bindExpr(v, &ctx)
            guard ctx.type(of: x) == .string else { throw fail(.type, v.position ?? pos, "SUBSTRING needs a VARCHAR, found \(ctx.type(of: x)) in \(x)") }
            guard case .literal(.int(let start), _) = fold(try bindExpr(from, &ctx)) else { throw fail(.unsupported, from.position ?? pos, "SUBSTRING needs a constant integer start") }
            var length: Int? = nil
            if let len {
                guard case .literal(.int(let l), _) = fold(try bindExpr(len, &ctx)) else { throw fail(.unsupported, len.position ?? pos, "SUBSTRING needs a constant integer length") }
                length = Int(l)
            }
            return .substring(x, start: Int(start), length: length)
        }
    }

    func containsSubquery(_ e: SQLExpr) -> Bool {
        switch e {
        case .subquery, .exists, .inQuery: return true
        default: return sqlChildren(e).contains { containsSubquery($0) }
        }
    }

    func resolve(_ parts: [String], _ pos: Int, _ scope: Scope) throws -> Expr {
        let name = parts.last!
        let qualifier = parts.count > 1 ? parts[parts.count - 2] : nil
        let hits = scope.columns.indices.filter { i in
            scope.columns[i].name == name && (qualifier == nil || scope.columns[i].qualifier == qualifier)
        }
        if hits.count == 1 { return .column(hits[0], name: parts.joined(separator: ".")) }
        if hits.count > 1 {
            throw fail(.unknownColumn, pos, "column name '\(name)' is ambiguous: it is in \(hits.compactMap { scope.columns[$0].qualifier }.joined(separator: " and ")); qualify it")
        }
        if let outer = scope.outer, let e = try? resolve(parts, pos, outer) {
            guard case .column(let i, let n) = e else {
                throw fail(.unsupported, pos, "'\(name)' refers two queries out; only one level of correlation is supported")
            }
            return .outer(i, name: n)
        }
        var all: [String] = []
        var s: Scope? = scope
        while let sc = s { all += sc.columns.map(\.name); s = sc.outer }
        if let qualifier, !scope.columns.contains(where: { $0.qualifier == qualifier }) {
            throw fail(.unknownTable, pos, "no table or alias named '\(qualifier)' in this query")
        }
        let hint = closest(name, in: all).map { "; did you mean '\($0)'?" } ?? ""
        throw fail(.unknownColumn, pos, "unknown column '\(parts.joined(separator: "."))'\(hint)")
    }

    func numberLiteral(_ text: String, _ pos: Int? = nil) throws -> Expr {
        if let i = Int64(text) { return .literal(.int(i), .int64) }
        if !text.contains("e"), !text.contains("E"), let dot = text.firstIndex(of: ".") {
            // Trailing zeros add scale, not value: 0.0001000000 is 0.0001.
            var t = text
            while t.hasSuffix("0"), t.distance(from: dot, to: t.endIndex) > 2 { t.removeLast() }
            let scale = t.distance(from: t.firstIndex(of: ".")!, to: t.endIndex) - 1
            let digits = t.replacingOccurrences(of: ".", with: "")
            if scale <= 12, digits.count <= 18, let v = Int64(digits) { return .literal(.decimal(v, scale: scale), .decimal(scale: scale)) }
        }
        guard let d = Double(text) else { throw fail(.syntax, pos, "'\(text)' is not a number") }
        return .literal(.double(d), .double)
    }

    /// Makes both sides of a comparison comparable: a string constant beside a date becomes a date.
    func coerceForComparison(_ a: Expr, _ b: Expr, _ ctx: inout ExprContext) throws -> (Expr, Expr) {
        let ta = ctx.type(of: a), tb = ctx.type(of: b)
        if ta == .date, tb == .string, case .literal(let v, _) = b { return (a, .literal(try castValue(v, to: .date), .date)) }
        if tb == .date, ta == .string, case .literal(let v, _) = a { return (.literal(try castValue(v, to: .date), .date), b) }
        return (a, b)
    }

    func checkOperands(_ op: BinaryOp, _ a: Expr, _ b: Expr, _ ctx: ExprContext, _ pos: Int?) throws {
        let ta = ctx.type(of: a), tb = ctx.type(of: b)
        if case .literal(.null, _) = a { return }
        if case .literal(.null, _) = b { return }
        if op.isArithmetic {
            let ok = (ta.isNumeric && tb.isNumeric) || (ta == .date && tb == .int64) || (ta == .date && tb == .date && op == .sub)
            if !ok { throw fail(.type, pos, "cannot apply \(op.rawValue) to \(ta) and \(tb) in \(a) \(op.rawValue) \(b)") }
        } else if op.isComparison {
            let ok = ta == tb || (ta.isNumeric && tb.isNumeric)
            if !ok { throw fail(.type, pos, "cannot compare \(ta) with \(tb) in \(a) \(op.rawValue) \(b)") }
        } else if op == .and || op == .or {
            if ta != .bool || tb != .bool { throw fail(.type, pos, "\(op.rawValue) needs booleans, found \(ta) and \(tb)") }
        }
    }

    func addInterval(_ base: Expr, _ amount: String, _ unit: String, negate: Bool, _ pos: Int) throws -> Expr {
        guard let n0 = Int(amount) else { throw fail(.syntax, pos, "'\(amount)' is not a whole number of \(unit)s") }
        let n = negate ? -n0 : n0
        let u = unit.hasSuffix("s") ? String(unit.dropLast()) : unit
        guard case .literal(.date(let d), _) = fold(base) else {
            switch u {
            case "day": return .binary(.add, base, .literal(.int(Int64(n)), .int64))
            case "month": return .addMonths(base, n)
            case "year": return .addMonths(base, 12 * n)
            default: throw fail(.unsupported, pos, "INTERVAL unit '\(unit)' (use DAY, MONTH or YEAR)")
            }
        }
        switch u {
        case "day": return .literal(.date(d + Int32(n)), .date)
        case "month": return .literal(.date(addMonths(d, n)), .date)
        case "year": return .literal(.date(addMonths(d, 12 * n)), .date)
        default: throw fail(.unsupported, pos, "INTERVAL unit '\(unit)' (use DAY, MONTH or YEAR)")
        }
    }

    func parseTypeName(_ name: String, _ pos: Int) throws -> DataType {
        let base = name.split(separator: "(").first.map(String.init) ?? name
        switch base {
        case "date": return .date
        case "int", "integer", "bigint", "smallint", "tinyint", "int64", "int4", "int8": return .int64
        case "double", "float", "real", "float8", "float4": return .double
        case "varchar", "text", "string", "char", "character": return .string
        case "boolean", "bool": return .bool
        case "decimal", "numeric":
            let args = name.drop { $0 != "(" }.dropFirst().dropLast().split(separator: ",")
            let scale = args.count == 2 ? Int(args[1].trimmingCharacters(in: .whitespaces)) ?? 3 : 3
            return .decimal(scale: min(scale, 12))
        default:
            throw fail(.type, pos, "unknown type '\(name)'; known: BIGINT, DOUBLE, DECIMAL(p,s), BOOLEAN, DATE, VARCHAR")
        }
    }

    mutating func bindFunction(_ name: String, _ args: [SQLExpr], _ pos: Int, _ ctx: inout ExprContext) throws -> Expr {
        let xs = try args.map { try bindExpr($0, &ctx) }
        switch (name, xs.count) {
        case ("abs", 1):
            return .caseWhen([WhenClause(condition: .binary(.lt, xs[0], .literal(.int(0), .int64)), result: .negate(xs[0]))], otherwise: xs[0])
        case ("coalesce", 1...):
            return .caseWhen(xs.dropLast().map { WhenClause(condition: .isNull($0, negated: true), result: $0) }, otherwise: xs.last!)
        case ("year", 1): return .extractYear(xs[0])
        default:
            let known = ["abs", "coalesce", "year", "count", "sum", "avg", "min", "max", "substring", "extract", "cast"]
            let hint = closest(name, in: known).map { "; did you mean \($0)()?" } ?? ""
            throw fail(.syntax, pos, "unknown function \(name)() with \(xs.count) argument(s)\(hint)")
        }
    }
}

/// Folds constant subexpressions to literals.
func fold(_ e: Expr) -> Expr {
    e.transform { x in
        switch x {
        case .literal, .column, .outer: return x
        default:
            guard x.children.allSatisfy({ if case .literal = $0 { return true }; return false }) else { return x }
            guard let v = try? Evaluator(chunk: Chunk(columns: [], count: 1)).vec(x), case .constant(let value, let t) = v else { return x }
            return .literal(value, t)
        }
    }
}
