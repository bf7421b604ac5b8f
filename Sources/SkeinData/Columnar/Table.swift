import Foundation

/// A named, typed column of a schema.
public struct Field: Hashable, Sendable {
    public var name: String
    public var type: DataType

    public init(_ name: String, _ type: DataType) {
        self.name = name
        self.type = type
    }
}

/// A columnar table: a schema and one column per field, all of `rowCount` rows.
public struct Table: Sendable {
    public var fields: [Field]
    public var columns: [Column]
    public var rowCount: Int

    public init(fields: [Field], columns: [Column]) {
        precondition(fields.count == columns.count, "a table needs one column per field")
        self.fields = fields
        self.columns = columns
        rowCount = columns.first?.count ?? 0
    }

    public init(fields: [Field], chunk: Chunk) {
        self.fields = fields
        columns = chunk.columns
        rowCount = chunk.count
    }

    public var chunk: Chunk { Chunk(columns: columns, count: rowCount) }
    public var names: [String] { fields.map(\.name) }
    public var types: [DataType] { fields.map(\.type) }

    public func column(named name: String) -> Column? {
        fields.firstIndex { $0.name.lowercased() == name.lowercased() }.map { columns[$0] }
    }

    /// Row i as values (slow path).
    public func row(_ i: Int) -> [Value] { columns.map { $0.value(at: i) } }

    /// All rows as values (slow path: tests and small results).
    public var rows: [[Value]] { (0..<rowCount).map(row) }

    /// The table as aligned text, as a SQL shell prints it.
    public func formatted(maxRows: Int = 40) -> String {
        let shown = min(rowCount, maxRows)
        var cells: [[String]] = [names]
        for i in 0..<shown { cells.append(row(i).map(\.description)) }
        var widths = names.map(\.count)
        for r in cells { for (c, s) in r.enumerated() { widths[c] = max(widths[c], s.count) } }
        func line(_ r: [String]) -> String {
            zip(r, fields.indices).map { s, c in
                let pad = String(repeating: " ", count: widths[c] - s.count)
                return fields[c].type.isNumeric ? pad + s : s + pad
            }.joined(separator: " │ ")
        }
        var out = [line(cells[0]), widths.map { String(repeating: "─", count: $0) }.joined(separator: "─┼─")]
        for r in cells.dropFirst() { out.append(line(r)) }
        if rowCount > shown { out.append("… \(rowCount - shown) more rows") }
        out.append("(\(rowCount) row\(rowCount == 1 ? "" : "s"))")
        return out.joined(separator: "\n")
    }
}

/// What went wrong in the data engine, where, and the likely cause.
public struct DataError: Error, CustomStringConvertible, Sendable {
    public struct Code: Hashable, Sendable, CustomStringConvertible {
        enum Kind: String { case io, malformedCSV, syntax, unknownTable, unknownColumn, type, unsupported, memory }
        let kind: Kind
        public static let io = Code(kind: .io)
        public static let malformedCSV = Code(kind: .malformedCSV)
        public static let syntax = Code(kind: .syntax)
        public static let unknownTable = Code(kind: .unknownTable)
        public static let unknownColumn = Code(kind: .unknownColumn)
        public static let type = Code(kind: .type)
        public static let unsupported = Code(kind: .unsupported)
        public static let memory = Code(kind: .memory)
        public var description: String { kind.rawValue }
    }

    public let code: Code
    public let message: String

    public init(_ code: Code, _ message: String) {
        self.code = code
        self.message = message
    }

    public var description: String { message }
}

/// The closest of `candidates` to `name` by edit distance, for "did you mean" hints.
func closest(_ name: String, in candidates: [String]) -> String? {
    func distance(_ a: [Character], _ b: [Character]) -> Int {
        if a.isEmpty { return b.count }
        var prev = Array(0...b.count)
        for (i, ca) in a.enumerated() {
            var cur = [i + 1] + [Int](repeating: 0, count: b.count)
            for (j, cb) in b.enumerated() {
                cur[j + 1] = min(prev[j + 1] + 1, cur[j] + 1, prev[j] + (ca == cb ? 0 : 1))
            }
            prev = cur
        }
        return prev[b.count]
    }
    let lower = Array(name.lowercased())
    let best = candidates.map { ($0, distance(lower, Array($0.lowercased()))) }.min { $0.1 < $1.1 }
    guard let best, best.1 <= max(2, lower.count / 2) else { return nil }
    return best.0
}
