/// A recursive-descent parser for Skein's SQL dialect (the SELECT language of DuckDB and
/// PostgreSQL that the TPC-H queries use).
struct Parser {
    let sql: String
    let tokens: [Token]
    var i = 0

    static let reserved: Set<String> = [
        "select", "from", "where", "group", "by", "having", "order", "limit", "offset", "union", "intersect", "except",
        "join", "inner", "left", "right", "outer", "cross", "on", "using", "and", "or", "not", "as", "asc", "desc",
        "case", "when", "then", "else", "end", "in", "exists", "between", "like", "is", "null", "with", "distinct", "all",
        "full", "natural", "nulls", "first", "last", "interval", "date",
    ]

    init(_ sql: String) throws {
        self.sql = sql
        tokens = try tokenize(sql)
    }

    var peek: Token { tokens[i] }
    func peek(_ k: Int) -> Token { tokens[min(i + k, tokens.count - 1)] }

    mutating func advance() -> Token {
        let t = tokens[i]
        if i < tokens.count - 1 { i += 1 }
        return t
    }

    mutating func accept(_ keyword: String) -> Bool {
        if peek.isKeyword(keyword) { i += 1; return true }
        return false
    }

    mutating func acceptSymbol(_ s: String) -> Bool {
        if peek.isSymbol(s) { i += 1; return true }
        return false
    }

    mutating func expect(_ keyword: String) throws {
        guard accept(keyword) else { throw error("\(keyword.uppercased())") }
    }

    mutating func expectSymbol(_ s: String) throws {
        guard acceptSymbol(s) else { throw error("'\(s)'") }
    }

    func error(_ expected: String) -> DataError {
        sqlError(sql, peek.pos, expected, found: peek.description)
    }

    /// Statements separated by semicolons.
    mutating func parseStatements() throws -> [SQLStatement] {
        var out: [SQLStatement] = []
        while peek.kind != .end {
            if acceptSymbol(";") { continue }
            if accept("explain") { out.append(.explain(try parseQuery())) } else { out.append(.query(try parseQuery())) }
            if peek.kind != .end, !peek.isSymbol(";") { throw error("';' or the end of the query") }
        }
        return out
    }

    mutating func parseQuery() throws -> SQLQuery {
        var ctes: [SQLCTE] = []
        if accept("with") {
            repeat {
                let name = try identifier()
                var cols: [String] = []
                if acceptSymbol("(") {
                    repeat { cols.append(try identifier()) } while acceptSymbol(",")
                    try expectSymbol(")")
                }
                try expect("as")
                try expectSymbol("(")
                let q = try parseQuery()
                try expectSymbol(")")
                ctes.append(SQLCTE(name: name, columns: cols, query: q))
            } while acceptSymbol(",")
        }
        let body = try parseSetOperations()
        let q = SQLQuery(body: body)
        q.ctes = ctes
        if accept("order") {
            try expect("by")
            repeat {
                let e = try parseExpr()
                var asc = true
                if accept("desc") { asc = false } else { _ = accept("asc") }
                var nullsFirst: Bool? = nil
                if accept("nulls") {
                    if accept("first") { nullsFirst = true } else { try expect("last"); nullsFirst = false }
                }
                q.orderBy.append(SQLOrderItem(expr: e, ascending: asc, nullsFirst: nullsFirst))
            } while acceptSymbol(",")
        }
        if accept("limit") {
            guard peek.kind == .number, let n = Int(advance().text) else { throw error("a row count") }
            q.limit = n
        }
        if accept("offset") {
            guard peek.kind == .number, let n = Int(advance().text) else { throw error("a row count") }
            q.offset = n
        }
        return q
    }

    mutating func parseSetOperations() throws -> SQLQueryBody {
        var left = try parseSetTerm()
        while peek.isKeyword("union") || peek.isKeyword("except") {
            let op = advance().text.lowercased()
            let all = accept("all")
            if !all { _ = accept("distinct") }
            left = .setOperation(op, all: all, left, try parseSetTerm())
        }
        return left
    }

    /// INTERSECT binds tighter than UNION and EXCEPT, as in the SQL standard.
    mutating func parseSetTerm() throws -> SQLQueryBody {
        var left = try parseSetPrimary()
        while accept("intersect") {
            let all = accept("all")
            if !all { _ = accept("distinct") }
            left = .setOperation("intersect", all: all, left, try parseSetPrimary())
        }
        return left
    }

    mutating func parseSetPrimary() throws -> SQLQueryBody {
        if peek.isSymbol("("), peek(1).isKeyword("select") || peek(1).isKeyword("with") || peek(1).isSymbol("(") {
            _ = advance()
            let q = try parseQuery()
            try expectSymbol(")")
            return .nested(q)
        }
        return .select(try parseSelect())
    }

    mutating func parseSelect() throws -> SQLSelect {
        try expect("select")
        var s = SQLSelect()
        if accept("distinct") { s.distinct = true } else { _ = accept("all") }
        repeat {
            if peek.isSymbol("*") { _ = advance(); s.items.append(SQLSelectItem(expr: .star(qualifier: nil))); continue }
            if peek.kind == .identifier, peek(1).isSymbol("."), peek(2).isSymbol("*") {
                let q = advance().text
                _ = advance(); _ = advance()
                s.items.append(SQLSelectItem(expr: .star(qualifier: q)))
                continue
            }
            let e = try parseExpr()
            var alias: String? = nil
            if accept("as") { alias = try identifier() } else if isAliasStart { alias = try identifier() }
            s.items.append(SQLSelectItem(expr: e, alias: alias))
        } while acceptSymbol(",")
        if accept("from") {
            repeat { s.from.append(try parseTableRef()) } while acceptSymbol(",")
        }
        if accept("where") { s.whereClause = try parseExpr() }
        if accept("group") {
            try expect("by")
            repeat { s.groupBy.append(try parseExpr()) } while acceptSymbol(",")
        }
        if accept("having") { s.having = try parseExpr() }
        return s
    }

    var isAliasStart: Bool {
        (peek.kind == .identifier && !Parser.reserved.contains(peek.text.lowercased())) || peek.kind == .quotedIdentifier
    }

    mutating func identifier() throws -> String {
        if peek.kind == .quotedIdentifier { return advance().text }
        guard peek.kind == .identifier else { throw error("a name") }
        return advance().text.lowercased()
    }

    mutating func parseTableRef() throws -> SQLTableRef {
        var left = try parseTablePrimary()
        while true {
            var kind = ""
            if accept("cross") { try expect("join"); kind = "cross" }
            else if accept("inner") { try expect("join"); kind = "inner" }
            else if accept("left") { _ = accept("outer"); try expect("join"); kind = "left" }
            else if peek.isKeyword("right") || peek.isKeyword("full") {
                throw DataError(.unsupported, "\(peek.text.uppercased()) JOIN is not supported yet at \(location(sql, peek.pos).line):\(location(sql, peek.pos).column); swap the tables and use LEFT JOIN")
            }
            else if accept("join") { kind = "inner" }
            else { break }
            let right = try parseTablePrimary()
            var on: SQLExpr? = nil
            var using: [String] = []
            if kind != "cross" {
                if accept("on") { on = try parseExpr() } else if accept("using") {
                    try expectSymbol("(")
                    repeat { using.append(try identifier()) } while acceptSymbol(",")
                    try expectSymbol(")")
                } else { throw error("ON or USING") }
            }
            left = .join(left, right, kind: kind, on: on, using: using)
        }
        return left
    }

    mutating func parseTablePrimary() throws -> SQLTableRef {
        if acceptSymbol("(") {
            if peek.isKeyword("select") || peek.isKeyword("with") {
                let q = try parseQuery()
                try expectSymbol(")")
                var alias: String? = nil
                if accept("as") { alias = try identifier() } else if isAliasStart { alias = try identifier() }
                var cols: [String] = []
                if alias != nil, acceptSymbol("(") {
                    repeat { cols.append(try identifier()) } while acceptSymbol(",")
                    try expectSymbol(")")
                }
                return .subquery(q, alias: alias, columns: cols)
            }
            let t = try parseTableRef()
            try expectSymbol(")")
            return t
        }
        let pos = peek.pos
        let name = try identifier()
        var alias: String? = nil
        if accept("as") { alias = try identifier() } else if isAliasStart { alias = try identifier() }
        return .table(name, alias: alias, pos: pos)
    }

    // MARK: expressions, by precedence

    mutating func parseExpr() throws -> SQLExpr { try parseOr() }

    /// `operand (op operand)*`, grouped to the left; `ops` are keywords (lower case) or symbols.
    mutating func leftAssociative(_ ops: Set<String>, _ operand: (inout Parser) throws -> SQLExpr) rethrows -> SQLExpr {
        var l = try operand(&self)
        while (peek.kind == .symbol && ops.contains(peek.text)) || (peek.kind == .identifier && ops.contains(peek.text.lowercased())) {
            let op = advance()
            l = .binary(op.kind == .symbol ? op.text : op.text.lowercased(), l, try operand(&self), pos: op.pos)
        }
        return l
    }

    mutating func parseOr() throws -> SQLExpr { try leftAssociative(["or"]) { try $0.parseAnd() } }

    mutating func parseAnd() throws -> SQLExpr { try leftAssociative(["and"]) { try $0.parseNot() } }

    mutating func parseNot() throws -> SQLExpr {
        if accept("not") {
            if peek.isKeyword("exists") {
                _ = advance()
                return .exists(try parenthesizedQuery(), negated: true)
            }
            return .unary("not", try parseNot())
        }
        return try parseComparison()
    }

    mutating func parenthesizedQuery() throws -> SQLQuery {
        try expectSymbol("(")
        let q = try parseQuery()
        try expectSymbol(")")
        return q
    }

    mutating func parseComparison() throws -> SQLExpr {
        if accept("exists") { return .exists(try parenthesizedQuery(), negated: false) }
        let l = try parseConcat()
        if peek.kind == .symbol, ["=", "<>", "<", "<=", ">", ">="].contains(peek.text) {
            let op = advance()
            return .binary(op.text, l, try parseConcat(), pos: op.pos)
        }
        if accept("is") {
            let neg = accept("not")
            try expect("null")
            return .isNull(l, negated: neg)
        }
        let neg = accept("not")
        if accept("between") {
            let lo = try parseConcat()
            try expect("and")
            return .between(l, lo, try parseConcat(), negated: neg)
        }
        if peek.isKeyword("like") {
            let pos = advance().pos
            return .like(l, try parseConcat(), negated: neg, pos: pos)
        }
        if accept("in") {
            try expectSymbol("(")
            if peek.isKeyword("select") || peek.isKeyword("with") {
                let q = try parseQuery()
                try expectSymbol(")")
                return .inQuery(l, q, negated: neg)
            }
            var items: [SQLExpr] = []
            repeat { items.append(try parseExpr()) } while acceptSymbol(",")
            try expectSymbol(")")
            return .inList(l, items, negated: neg)
        }
        if neg { throw error("BETWEEN, LIKE or IN after NOT") }
        return l
    }

    mutating func parseConcat() throws -> SQLExpr { try leftAssociative(["||"]) { try $0.parseAdditive() } }

    mutating func parseAdditive() throws -> SQLExpr { try leftAssociative(["+", "-"]) { try $0.parseMultiplicative() } }

    mutating func parseMultiplicative() throws -> SQLExpr { try leftAssociative(["*", "/", "%"]) { try $0.parseUnary() } }

    mutating func parseUnary() throws -> SQLExpr {
        if acceptSymbol("-") { return .unary("-", try parseUnary()) }
        if acceptSymbol("+") { return try parseUnary() }
        var e = try parsePrimary()
        while acceptSymbol("::") {
            let pos = peek.pos
            e = .cast(e, try typeName(), pos: pos)
        }
        return e
    }

    mutating func typeName() throws -> String {
        var name = try identifier()
        if name == "double", accept("precision") { name = "double" }
        if acceptSymbol("(") {
            var args: [String] = []
            repeat { args.append(advance().text) } while acceptSymbol(",")
            try expectSymbol(")")
            name += "(" + args.joined(separator: ",") + ")"
        }
        return name
    }

    mutating func parsePrimary() throws -> SQLExpr {
        let t = peek
        switch t.kind {
        case .number: _ = advance(); return .number(t.text, pos: t.pos)
        case .string: _ = advance(); return .string(t.text)
        case .quotedIdentifier: return try parseName()
        case .symbol:
            if acceptSymbol("(") {
                if peek.isKeyword("select") || peek.isKeyword("with") {
                    let q = try parseQuery()
                    try expectSymbol(")")
                    return .subquery(q)
                }
                let e = try parseExpr()
                try expectSymbol(")")
                return e
            }
            throw error("an expression")
        case .end: throw error("an expression")
        case .identifier: break
        }
        let k = t.text.lowercased()
        switch k {
        case "null": _ = advance(); return .null
        case "true": _ = advance(); return .boolean(true)
        case "false": _ = advance(); return .boolean(false)
        case "date" where peek(1).kind == .string:
            _ = advance()
            return .date(advance().text, pos: t.pos)
        case "interval":
            _ = advance()
            var value: String
            if peek.kind == .string { value = advance().text } else if peek.kind == .number { value = advance().text } else { throw error("an interval amount") }
            var unit: String
            let parts = value.split(separator: " ")
            if parts.count == 2 { value = String(parts[0]); unit = parts[1].lowercased() } else { unit = try identifier() }
            // The specification's "day (3)" precision suffix.
            if acceptSymbol("(") { _ = advance(); try expectSymbol(")") }
            return .interval(value, unit: unit, pos: t.pos)
        case "case":
            _ = advance()
            var operand: SQLExpr? = nil
            if !peek.isKeyword("when") { operand = try parseExpr() }
            var whens: [(SQLExpr, SQLExpr)] = []
            while accept("when") {
                let c = try parseExpr()
                try expect("then")
                whens.append((c, try parseExpr()))
            }
            guard !whens.isEmpty else { throw error("WHEN") }
            var otherwise: SQLExpr? = nil
            if accept("else") { otherwise = try parseExpr() }
            try expect("end")
            return .caseWhen(operand, whens, otherwise)
        case "cast":
            _ = advance()
            try expectSymbol("(")
            let e = try parseExpr()
            try expect("as")
            let pos = peek.pos
            let type = try typeName()
            try expectSymbol(")")
            return .cast(e, type, pos: pos)
        case "extract":
            let pos = advance().pos
            try expectSymbol("(")
            let field = try identifier()
            try expect("from")
            let e = try parseExpr()
            try expectSymbol(")")
            return .extract(field, e, pos: pos)
        case "substring", "substr":
            let pos = advance().pos
            try expectSymbol("(")
            let e = try parseExpr()
            var from: SQLExpr
            var len: SQLExpr? = nil
            if accept("from") {
                from = try parseExpr()
                if accept("for") { len = try parseExpr() }
            } else {
                try expectSymbol(",")
                from = try parseExpr()
                if acceptSymbol(",") { len = try parseExpr() }
            }
            try expectSymbol(")")
            return .substring(e, from, len, pos: pos)
        default: break
        }
        if peek(1).isSymbol("(") {
            _ = advance(); _ = advance()
            if acceptSymbol("*") {
                try expectSymbol(")")
                return .function(k, [], distinct: false, pos: t.pos)
            }
            let distinct = accept("distinct")
            var args: [SQLExpr] = []
            if !peek.isSymbol(")") {
                repeat { args.append(try parseExpr()) } while acceptSymbol(",")
            }
            try expectSymbol(")")
            return .function(k, args, distinct: distinct, pos: t.pos)
        }
        if Parser.reserved.contains(k) { throw error("an expression") }
        return try parseName()
    }

    mutating func parseName() throws -> SQLExpr {
        let pos = peek.pos
        var parts = [try identifier()]
        while peek.isSymbol("."), peek(1).kind == .identifier || peek(1).kind == .quotedIdentifier {
            _ = advance()
            parts.append(try identifier())
        }
        return .name(parts, pos: pos)
    }
}
