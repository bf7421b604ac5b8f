/// A token of SQL text with its byte offset, for error positions.
struct Token: CustomStringConvertible {
    enum Kind { case identifier, quotedIdentifier, number, string, symbol, end }
    let kind: Kind
    let text: String
    let pos: Int

    var description: String { kind == .end ? "the end of the query" : "'\(text)'" }

    func isKeyword(_ k: String) -> Bool { kind == .identifier && text.lowercased() == k }
    func isSymbol(_ s: String) -> Bool { kind == .symbol && text == s }
}

/// Splits SQL text into tokens; comments (-- and /* */) are dropped.
func tokenize(_ sql: String) throws -> [Token] {
    let b = Array(sql.utf8)
    var tokens: [Token] = []
    var i = 0
    func isIdentStart(_ c: UInt8) -> Bool { (c >= 65 && c <= 90) || (c >= 97 && c <= 122) || c == 95 || c >= 128 }
    func isDigit(_ c: UInt8) -> Bool { c >= 48 && c <= 57 }
    while i < b.count {
        let c = b[i]
        if c == 32 || c == 9 || c == 10 || c == 13 { i += 1; continue }
        if c == UInt8(ascii: "-"), i + 1 < b.count, b[i + 1] == UInt8(ascii: "-") {
            while i < b.count, b[i] != 10 { i += 1 }
            continue
        }
        if c == UInt8(ascii: "/"), i + 1 < b.count, b[i + 1] == UInt8(ascii: "*") {
            i += 2
            while i + 1 < b.count, !(b[i] == UInt8(ascii: "*") && b[i + 1] == UInt8(ascii: "/")) { i += 1 }
            i += 2
            continue
        }
        let start = i
        if isIdentStart(c) {
            while i < b.count, isIdentStart(b[i]) || isDigit(b[i]) || b[i] == UInt8(ascii: "$") { i += 1 }
            tokens.append(Token(kind: .identifier, text: String(decoding: b[start..<i], as: UTF8.self), pos: start))
        } else if isDigit(c) || (c == UInt8(ascii: ".") && i + 1 < b.count && isDigit(b[i + 1])) {
            while i < b.count, isDigit(b[i]) || b[i] == UInt8(ascii: ".") { i += 1 }
            if i < b.count, b[i] == UInt8(ascii: "e") || b[i] == UInt8(ascii: "E") {
                i += 1
                if i < b.count, b[i] == UInt8(ascii: "-") || b[i] == UInt8(ascii: "+") { i += 1 }
                while i < b.count, isDigit(b[i]) { i += 1 }
            }
            tokens.append(Token(kind: .number, text: String(decoding: b[start..<i], as: UTF8.self), pos: start))
        } else if c == UInt8(ascii: "'") || c == UInt8(ascii: "\"") {
            var out: [UInt8] = []
            i += 1
            var closed = false
            while i < b.count {
                if b[i] == c {
                    if i + 1 < b.count, b[i + 1] == c { out.append(c); i += 2; continue }
                    closed = true; i += 1; break
                }
                out.append(b[i]); i += 1
            }
            guard closed else { throw sqlError(sql, start, "a closing \(c == 39 ? "quote (')" : "double quote (\")")", found: "the end of the query") }
            tokens.append(Token(kind: c == UInt8(ascii: "'") ? .string : .quotedIdentifier, text: String(decoding: out, as: UTF8.self), pos: start))
        } else {
            let two = i + 1 < b.count ? String(decoding: b[i...(i + 1)], as: UTF8.self) : ""
            if ["<=", ">=", "<>", "!=", "||", "::"].contains(two) {
                tokens.append(Token(kind: .symbol, text: two == "!=" ? "<>" : two, pos: start))
                i += 2
            } else if "=<>+-*/%(),.;".utf8.contains(c) {
                tokens.append(Token(kind: .symbol, text: String(UnicodeScalar(c)), pos: start))
                i += 1
            } else {
                throw sqlError(sql, start, "a token", found: "'\(UnicodeScalar(c))'")
            }
        }
    }
    tokens.append(Token(kind: .end, text: "", pos: b.count))
    return tokens
}

/// A syntax error pointing at line and column of the query text.
func sqlError(_ sql: String, _ pos: Int, _ expected: String, found: String) -> DataError {
    let (line, col, text) = location(sql, pos)
    let caret = String(repeating: " ", count: max(0, col - 1)) + "^"
    return DataError(.syntax, "syntax error at line \(line), column \(col): expected \(expected), found \(found)\n  \(text)\n  \(caret)")
}

func location(_ sql: String, _ pos: Int) -> (line: Int, column: Int, text: String) {
    let b = Array(sql.utf8)
    var line = 1, lineStart = 0
    for k in 0..<min(pos, b.count) where b[k] == 10 { line += 1; lineStart = k + 1 }
    var lineEnd = lineStart
    while lineEnd < b.count, b[lineEnd] != 10 { lineEnd += 1 }
    return (line, pos - lineStart + 1, String(decoding: b[lineStart..<lineEnd], as: UTF8.self))
}
