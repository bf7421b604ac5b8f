import Foundation
import Synchronization

/// How to read a delimited text file.
public struct CSVOptions: Sendable {
    public var delimiter: UInt8 = UInt8(ascii: ",")
    public var header = true
    /// The quote character; nil turns quoting off.
    public var quote: UInt8? = UInt8(ascii: "\"")
    /// The escape inside quotes; nil means a doubled quote ("") stands for one.
    public var escape: UInt8? = nil
    /// The columns; nil infers them from the first `sampleRows` rows.
    public var schema: [Field]? = nil
    public var sampleRows = 2048
    /// Skip and count malformed rows instead of failing on the first.
    public var skipMalformed = false
    public var threads = ProcessInfo.processInfo.activeProcessorCount
    /// Files smaller than this parse on one thread (splitting costs more than it saves).
    public var parallelMinimumBytes = 1 << 22
    /// Read only shard `index` of `count`: a line-aligned `count`-th of the body's bytes (every
    /// `count`-th row when quotes could hide line ends), so that each rank parses its own rows.
    public var shard: (index: Int, count: Int)? = nil

    public init(delimiter: Character = ",", header: Bool = true, schema: [Field]? = nil, skipMalformed: Bool = false) {
        self.delimiter = delimiter.asciiValue ?? UInt8(ascii: ",")
        self.header = header
        self.schema = schema
        self.skipMalformed = skipMalformed
    }
}

/// A table read from CSV, with the malformed rows skipped (when asked to skip them).
public struct CSVReadResult: Sendable {
    public var table: Table
    public var skippedRows: Int
    /// The first few skipped rows' errors, to show the user.
    public var skippedErrors: [DataError]
}

/// Reads delimited text into a columnar table. Large files without quote characters are parsed
/// in parallel, split at line ends; values are parsed straight from the mapped bytes.
public enum CSVReader {
    public static func read(path: String, options: CSVOptions = CSVOptions(),
                            progress: (@Sendable (_ done: Int, _ total: Int) -> Void)? = nil) throws -> CSVReadResult {
        let file = try MappedFile(path: path)
        return try file.withBytes { bytes in try read(bytes: bytes, name: path, options: options, progress: progress) }
    }

    public static func read(text: String, name: String = "<text>", options: CSVOptions = CSVOptions()) throws -> CSVReadResult {
        var t = text
        return try t.withUTF8 { try read(bytes: UnsafeRawBufferPointer($0), name: name, options: options, progress: nil) }
    }

    static func read(bytes: UnsafeRawBufferPointer, name: String, options: CSVOptions,
                     progress: (@Sendable (Int, Int) -> Void)?) throws -> CSVReadResult {
        let base = bytes.baseAddress?.assumingMemoryBound(to: UInt8.self) ?? UnsafePointer(bitPattern: 1)!
        let total = bytes.count
        var start = 0
        if total >= 3, base[0] == 0xEF, base[1] == 0xBB, base[2] == 0xBF { start = 3 }
        let sample = sampleRows(base + start, total - start, options: options, limit: options.sampleRows + 1)
        var names: [String]
        var bodyStart = start
        var firstLine = 1
        if options.header, let first = sample.first {
            names = first.map { $0 ?? "" }
            bodyStart = start + lineLength(base + start, total - start, options: options)
            firstLine = 2
        } else {
            names = (0..<(sample.first?.count ?? 0)).map { "column\($0)" }
        }
        let fields: [Field]
        if let schema = options.schema {
            fields = schema
        } else {
            let rows = options.header ? Array(sample.dropFirst()) : sample
            fields = names.enumerated().map { c, n in Field(n.isEmpty ? "column\(c)" : n, inferType(rows.compactMap { c < $0.count ? $0[c] : nil })) }
        }
        if fields.isEmpty { return CSVReadResult(table: Table(fields: [], columns: []), skippedRows: 0, skippedErrors: []) }

        // Split into pieces at line ends; only safe when no quote can hide a line end.
        let quoted = options.quote.map { q in memchr(base + bodyStart, Int32(q), total - bodyStart) != nil } ?? false
        /// The start of the line holding byte p (p itself when it starts a line).
        func lineStart(_ p: Int, from lo: Int) -> Int {
            guard p > lo, p < total else { return min(p, total) }
            guard let nl = memchr(base + p - 1, 0x0A, total - p + 1) else { return total }
            return UnsafePointer<UInt8>(nl.assumingMemoryBound(to: UInt8.self)) - base + 1
        }
        var first = bodyStart, last = total
        if let (k, count) = options.shard, count > 1, !quoted {
            first = lineStart(bodyStart + (total - bodyStart) * k / count, from: bodyStart)
            last = lineStart(bodyStart + (total - bodyStart) * (k + 1) / count, from: bodyStart)
        }
        let bodyLen = last - first
        var pieces: [Range<Int>] = [first..<last]
        // Split large files even on one thread: pieces are the unit of progress reports.
        if bodyLen > options.parallelMinimumBytes, !quoted {
            let n = max(16, options.threads * 8)
            var cuts = [first]
            for k in 1..<n {
                let p = lineStart(first + bodyLen * k / n, from: first)
                if p > cuts.last!, p < last { cuts.append(p) }
            }
            cuts.append(last)
            pieces = (0..<(cuts.count - 1)).map { cuts[$0]..<cuts[$0 + 1] }
        }
        let done = Atomic<Int>(0)
        let shared = Shared(base)
        let ranges = pieces
        let parsed: [Result<ParsedPiece, DataError>] = Parallel.map(pieces.count, threads: options.threads) { i, _ in
            let r = ranges[i]
            var parser = PieceParser(base: shared.value, fields: fields, options: options, name: name, expectedRows: r.count / 100)
            let result = parser.parse(r)
            let d = done.add(r.count, ordering: .relaxed).newValue
            progress?(d, bodyLen)
            return result
        }
        // Lines are counted per piece; an error's line is relative to its piece until placed here.
        func firstLineOf(_ piece: Int) -> Int {
            var before = firstLine
            var q = base + bodyStart
            let end = base + pieces[piece].lowerBound
            while q < end, let nl = memchr(q, 0x0A, end - q) {
                before += 1
                q = UnsafePointer(nl.assumingMemoryBound(to: UInt8.self)) + 1
            }
            return before
        }
        var chunks: [ParsedPiece] = []
        var errors: [DataError] = []
        for (i, p) in parsed.enumerated() {
            switch p {
            case .success(let piece):
                chunks.append(piece)
                if !piece.errors.isEmpty, errors.count < 10 {
                    let first = firstLineOf(i)
                    errors += piece.errors.map { DataError($0.code, $0.message.replacingLineOffsets(first)) }
                }
            case .failure(let e):
                throw DataError(e.code, e.message.replacingLineOffsets(firstLineOf(i)))
            }
        }
        let columns = fields.indices.map { c in Column.concat(chunks.map { $0.columns[c] }, type: fields[c].type) }
        let skipped = chunks.reduce(0) { $0 + $1.skipped }
        var table = Table(fields: fields, columns: columns)
        if let (k, count) = options.shard, count > 1, quoted {
            table = Table(fields: fields, chunk: table.chunk.gather(Array(stride(from: Int32(k), to: Int32(table.rowCount), by: count))))
        }
        return CSVReadResult(table: table, skippedRows: skipped, skippedErrors: Array(errors.prefix(10)))
    }

    /// Splits the first rows into fields, honouring quotes (for the header and type inference).
    static func sampleRows(_ p: UnsafePointer<UInt8>, _ n: Int, options: CSVOptions, limit: Int) -> [[String?]] {
        var rows: [[String?]] = []
        var i = 0
        while i < n, rows.count < limit {
            var row: [String?] = []
            var field: [UInt8] = []
            var inQuotes = false
            var wasQuoted = false
            while i < n {
                let b = p[i]
                if inQuotes {
                    if let e = options.escape, b == e, e != options.quote, i + 1 < n { field.append(p[i + 1]); i += 2; continue }
                    if b == options.quote {
                        if options.escape == nil, i + 1 < n, p[i + 1] == b { field.append(b); i += 2; continue }
                        inQuotes = false; i += 1; continue
                    }
                    field.append(b); i += 1; continue
                }
                if let q = options.quote, b == q, field.isEmpty { inQuotes = true; wasQuoted = true; i += 1; continue }
                if b == options.delimiter {
                    row.append(field.isEmpty && !wasQuoted ? nil : String(decoding: field, as: UTF8.self))
                    field = []; wasQuoted = false; i += 1; continue
                }
                if b == 0x0A || b == 0x0D {
                    i += (b == 0x0D && i + 1 < n && p[i + 1] == 0x0A) ? 2 : 1
                    break
                }
                field.append(b); i += 1
            }
            row.append(field.isEmpty && !wasQuoted ? nil : String(decoding: field, as: UTF8.self))
            if row.count == 1, row[0] == nil { continue }
            rows.append(row)
        }
        // A trailing delimiter on every line (TPC-H's .tbl files) is not a column.
        if rows.count > 0, rows.allSatisfy({ $0.last.map { $0 == nil } ?? false }), rows.allSatisfy({ $0.count == rows[0].count }) {
            rows = rows.map { Array($0.dropLast()) }
        }
        return rows
    }

    /// The length of the first line, its line end included.
    static func lineLength(_ p: UnsafePointer<UInt8>, _ n: Int, options: CSVOptions) -> Int {
        var i = 0
        var inQuotes = false
        while i < n {
            let b = p[i]
            if let q = options.quote, b == q { inQuotes.toggle() }
            if !inQuotes, b == 0x0A { return i + 1 }
            i += 1
        }
        return n
    }

    /// The narrowest type that parses every sampled value of a column.
    static func inferType(_ values: [String?]) -> DataType {
        let present = values.compactMap { $0 }
        if present.isEmpty { return .string }
        let lower = present.map { $0.lowercased() }
        if lower.allSatisfy({ ["true", "false"].contains($0) }) { return .bool }
        if present.allSatisfy({ Int64($0) != nil }) { return .int64 }
        if present.allSatisfy({ Double($0) != nil && $0.first != "." && !$0.lowercased().contains("n") }) { return .double }
        if present.allSatisfy({ $0.count == 10 && parseDate($0) != nil }) { return .date }
        return .string
    }
}

private extension String {
    /// Replaces "line +k" markers written by a piece parser with absolute line numbers.
    func replacingLineOffsets(_ base: Int) -> String {
        guard let r = range(of: "@LINE+") else { return self }
        let rest = self[r.upperBound...]
        let digits = rest.prefix { $0.isNumber }
        let n = Int(digits) ?? 0
        return String(self[..<r.lowerBound]) + "\(base + n)" + String(rest.dropFirst(digits.count))
    }
}

struct ParsedPiece: @unchecked Sendable {
    // Columns are immutable values; @unchecked only because Result needs it spelled out.
    var columns: [Column]
    var skipped: Int
    var errors: [DataError]
}

/// Parses one piece of the body (whole lines) into column builders.
struct PieceParser {
    let base: UnsafePointer<UInt8>
    let fields: [Field]
    let options: CSVOptions
    let name: String
    /// The columns being filled, mutated through this pointer (see ParseColumn).
    let builders: UnsafeMutablePointer<ParseColumn>
    var unquoteBuffer: [UInt8] = []

    init(base: UnsafePointer<UInt8>, fields: [Field], options: CSVOptions, name: String, expectedRows: Int) {
        self.base = base
        self.fields = fields
        self.options = options
        self.name = name
        builders = .allocate(capacity: max(1, fields.count))
        for (c, f) in fields.enumerated() { (builders + c).initialize(to: ParseColumn(f.type, capacity: expectedRows)) }
    }

    struct FieldError: Error { let column: Int; let offset: Int; let expected: String; let found: String }

    mutating func parse(_ range: Range<Int>) -> Result<ParsedPiece, DataError> {
        var p = range.lowerBound
        let end = range.upperBound
        var line = 0
        var rows = 0
        var skipped = 0
        var errors: [DataError] = []
        let nf = fields.count
        let delim = options.delimiter
        let quote = options.quote ?? 0
        let quoting = options.quote != nil
        while p < end {
            let lineStart = p
            // Blank lines are not rows.
            if base[p] == 0x0A { p += 1; line += 1; continue }
            if base[p] == 0x0D, p + 1 < end, base[p + 1] == 0x0A { p += 2; line += 1; continue }
            var failure: FieldError? = nil
            var c = 0
            var linesInRow = 0
            fieldLoop: while c < nf {
                let fieldStart = p
                if quoting, p < end, base[p] == quote {
                    // Quoted: copy out, undoing escapes; line ends inside are part of the value.
                    unquoteBuffer.removeAll(keepingCapacity: true)
                    p += 1
                    var closed = false
                    while p < end {
                        let b = base[p]
                        if let e = options.escape, e != quote, b == e, p + 1 < end { unquoteBuffer.append(base[p + 1]); p += 2; continue }
                        if b == quote {
                            if options.escape == nil || options.escape == quote, p + 1 < end, base[p + 1] == quote {
                                unquoteBuffer.append(quote); p += 2; continue
                            }
                            closed = true; p += 1; break
                        }
                        if b == 0x0A { linesInRow += 1 }
                        unquoteBuffer.append(b); p += 1
                    }
                    if !closed { failure = FieldError(column: c, offset: fieldStart - lineStart, expected: "a closing quote", found: "the end of the file"); break fieldLoop }
                    let ok = unquoteBuffer.withUnsafeBufferPointer { b in
                        store(c, b.baseAddress ?? base, b.count, quoted: true)
                    }
                    if let ok { failure = FieldError(column: c, offset: fieldStart - lineStart, expected: ok, found: String(decoding: unquoteBuffer, as: UTF8.self)); break fieldLoop }
                } else {
                    var q = p
                    while q < end {
                        let b = base[q]
                        if b == delim || b == 0x0A || b == 0x0D { break }
                        q += 1
                    }
                    var len = q - p
                    if len > 0, base[p + len - 1] == 0x0D { len -= 1 }
                    if let expected = store(c, base + p, len, quoted: false) {
                        failure = FieldError(column: c, offset: p - lineStart, expected: expected,
                                             found: String(decoding: UnsafeRawBufferPointer(start: base + p, count: len), as: UTF8.self))
                        p = q
                        break fieldLoop
                    }
                    p = q
                }
                c += 1
                // After a field: a delimiter (more fields), or the line end.
                let atEnd = p >= end || base[p] == 0x0A || base[p] == 0x0D
                if c < nf {
                    if atEnd {
                        failure = FieldError(column: c, offset: p - lineStart, expected: "\(nf) fields", found: "\(c)")
                        break fieldLoop
                    }
                    if base[p] != delim {
                        failure = FieldError(column: c - 1, offset: p - lineStart, expected: "a delimiter after a quoted value", found: String(UnicodeScalar(base[p])))
                        break fieldLoop
                    }
                    p += 1
                } else if !atEnd {
                    if base[p] == delim {
                        // One trailing delimiter at the line end is allowed (TPC-H .tbl); a field after it is not.
                        let next = p + 1
                        if next >= end || base[next] == 0x0A || base[next] == 0x0D { p = next; break fieldLoop }
                        failure = FieldError(column: nf, offset: p - lineStart, expected: "\(nf) fields", found: "more")
                    } else {
                        failure = FieldError(column: c - 1, offset: p - lineStart, expected: "a delimiter after a quoted value", found: String(UnicodeScalar(base[p])))
                    }
                    break fieldLoop
                }
            }
            if let f = failure {
                if !options.skipMalformed {
                    let colName = f.column < nf ? "'\(fields[f.column].name)' (field \(f.column + 1))" : "field \(f.column + 1)"
                    for c in 0..<nf { _ = builders[c].finish() }
                    builders.deinitialize(count: nf)
                    builders.deallocate()
                    return .failure(DataError(.malformedCSV, "\(name):@LINE+\(line):\(f.offset + 1): expected \(f.expected) in column \(colName), found '\(f.found.prefix(40))'"))
                }
                let colName = f.column < nf ? "'\(fields[f.column].name)' (field \(f.column + 1))" : "field \(f.column + 1)"
                let msg = "\(name):@LINE+\(line):\(f.offset + 1): expected \(f.expected) in column \(colName), found '\(f.found.prefix(40))'"
                let err = DataError(.malformedCSV, msg)
                if !options.skipMalformed { return .failure(err) }
                skipped += 1
                if errors.count < 10 { errors.append(err) }
                for c in 0..<nf { builders[c].truncate(to: rows) }
                // Resume after this line.
                if let nl = memchr(base + p, 0x0A, end - p) {
                    p = UnsafePointer(nl.assumingMemoryBound(to: UInt8.self)) - base + 1
                } else { p = end }
                line += 1 + linesInRow
                continue
            }
            // Consume the line end.
            if p < end, base[p] == 0x0D { p += 1 }
            if p < end, base[p] == 0x0A { p += 1 }
            rows += 1
            line += 1 + linesInRow
        }
        let columns = (0..<nf).map { builders[$0].finish() }
        builders.deinitialize(count: nf)
        builders.deallocate()
        return .success(ParsedPiece(columns: columns, skipped: skipped, errors: errors))
    }

    /// Parses one field into its column; returns what was expected when the text does not parse.
    @inline(__always) func store(_ c: Int, _ p: UnsafePointer<UInt8>, _ n: Int, quoted: Bool) -> String? {
        let b = builders + c
        if n == 0 && !quoted { b.pointee.appendNull(); return nil }
        switch b.pointee.type {
        case .string:
            b.pointee.appendString(p, n)
        case .int64:
            guard let v = parseInt(p, n) else { return "an integer" }
            b.pointee.appendInt(v)
        case .decimal(let s):
            guard let v = parseDecimal(p, n, scale: s) else { return "a decimal number" }
            b.pointee.appendInt(v)
        case .double:
            guard let v = parseDouble(p, n) else { return "a number" }
            b.pointee.appendDouble(v)
        case .date:
            guard let v = parseDateBytes(p, n) else { return "a date (YYYY-MM-DD)" }
            b.pointee.appendInt(Int64(v))
        case .bool:
            guard let v = parseBool(p, n) else { return "a boolean (true/false)" }
            b.pointee.appendBool(v)
        }
        return nil
    }
}

@inline(__always) func parseInt(_ p: UnsafePointer<UInt8>, _ n: Int) -> Int64? {
    var i = 0
    var neg = false
    if n > 0, p[0] == UInt8(ascii: "-") || p[0] == UInt8(ascii: "+") { neg = p[0] == UInt8(ascii: "-"); i = 1 }
    guard i < n, n - i <= 19 else { return nil }
    var v: Int64 = 0
    while i < n {
        let d = p[i] &- 48
        guard d < 10 else { return nil }
        let (m, o1) = v.multipliedReportingOverflow(by: 10)
        let (a, o2) = m.addingReportingOverflow(Int64(d))
        guard !o1, !o2 else { return nil }
        v = a
        i += 1
    }
    return neg ? -v : v
}

@inline(__always) func parseDecimal(_ p: UnsafePointer<UInt8>, _ n: Int, scale: Int) -> Int64? {
    var i = 0
    var neg = false
    if n > 0, p[0] == UInt8(ascii: "-") || p[0] == UInt8(ascii: "+") { neg = p[0] == UInt8(ascii: "-"); i = 1 }
    var v: Int64 = 0
    var digits = 0
    while i < n, p[i] &- 48 < 10 { v = v &* 10 &+ Int64(p[i] &- 48); i += 1; digits += 1 }
    var frac = 0
    if i < n, p[i] == UInt8(ascii: ".") {
        i += 1
        while i < n, p[i] &- 48 < 10 {
            if frac < scale { v = v &* 10 &+ Int64(p[i] &- 48); frac += 1 } else if frac == scale {
                if p[i] >= UInt8(ascii: "5") { v &+= 1 }  // round half away from zero on the first dropped digit
                frac += 1
            }
            i += 1; digits += 1
        }
    }
    guard i == n, digits > 0, digits <= 18 else { return nil }
    if frac < scale { v = v &* pow10Int(scale - frac) }
    return neg ? -v : v
}

private let exactPowers: [Double] = (0...22).map { pow(10.0, Double($0)) }

@inline(__always) func parseDouble(_ p: UnsafePointer<UInt8>, _ n: Int) -> Double? {
    var i = 0
    var neg = false
    if n > 0, p[0] == UInt8(ascii: "-") || p[0] == UInt8(ascii: "+") { neg = p[0] == UInt8(ascii: "-"); i = 1 }
    var m: UInt64 = 0
    var digits = 0
    var exp = 0
    while i < n, p[i] &- 48 < 10 { m = m &* 10 &+ UInt64(p[i] &- 48); i += 1; digits += 1 }
    if i < n, p[i] == UInt8(ascii: ".") {
        i += 1
        while i < n, p[i] &- 48 < 10 { m = m &* 10 &+ UInt64(p[i] &- 48); i += 1; digits += 1; exp -= 1 }
    }
    if i == n, digits > 0, digits <= 15, exp >= -22 {
        // Clinger's fast path: an exact mantissa divided by an exact power of ten rounds once.
        let v = Double(m) / exactPowers[-exp]
        return neg ? -v : v
    }
    guard n < 64 else { return nil }
    var buf = [CChar](repeating: 0, count: n + 1)
    for k in 0..<n { buf[k] = CChar(bitPattern: p[k]) }
    var endp: UnsafeMutablePointer<CChar>? = nil
    let v = buf.withUnsafeMutableBufferPointer { b -> Double in strtod(b.baseAddress!, &endp) }
    let consumed = buf.withUnsafeMutableBufferPointer { b in endp.map { $0 - b.baseAddress! } ?? 0 }
    guard consumed == n, n > 0 else { return nil }
    return v
}

@inline(__always) func parseDateBytes(_ p: UnsafePointer<UInt8>, _ n: Int) -> Int32? {
    guard n == 10, p[4] == UInt8(ascii: "-"), p[7] == UInt8(ascii: "-") else { return nil }
    @inline(__always) func d(_ i: Int) -> Int? { let v = Int(p[i]) - 48; return v >= 0 && v < 10 ? v : nil }
    guard let y0 = d(0), let y1 = d(1), let y2 = d(2), let y3 = d(3), let m0 = d(5), let m1 = d(6), let d0 = d(8), let d1 = d(9) else { return nil }
    let m = m0 * 10 + m1
    let day = d0 * 10 + d1
    guard (1...12).contains(m), (1...31).contains(day) else { return nil }
    return daysFromCivil(y0 * 1000 + y1 * 100 + y2 * 10 + y3, m, day)
}

@inline(__always) func parseBool(_ p: UnsafePointer<UInt8>, _ n: Int) -> Bool? {
    let s = String(decoding: UnsafeRawBufferPointer(start: p, count: n), as: UTF8.self).lowercased()
    switch s {
    case "true", "t", "1", "yes", "y": return true
    case "false", "f", "0", "no", "n": return false
    default: return nil
    }
}

/// A read-only memory map of a whole file.
final class MappedFile {
    let pointer: UnsafeRawPointer?
    let size: Int
    let path: String

    init(path: String) throws {
        self.path = path
        let fd = open(path, O_RDONLY)
        guard fd >= 0 else { throw DataError(.io, "cannot open '\(path)': \(String(cString: strerror(errno)))") }
        defer { close(fd) }
        var st = stat()
        guard fstat(fd, &st) == 0 else { throw DataError(.io, "cannot stat '\(path)': \(String(cString: strerror(errno)))") }
        size = Int(st.st_size)
        if size == 0 { pointer = nil; return }
        guard let m = mmap(nil, size, PROT_READ, MAP_PRIVATE, fd, 0), m != MAP_FAILED else {
            throw DataError(.io, "cannot map '\(path)': \(String(cString: strerror(errno)))")
        }
        madvise(m, size, MADV_SEQUENTIAL)
        pointer = UnsafeRawPointer(m)
    }

    func withBytes<R>(_ body: (UnsafeRawBufferPointer) throws -> R) rethrows -> R {
        try body(UnsafeRawBufferPointer(start: pointer, count: size))
    }

    deinit { if let p = pointer { munmap(UnsafeMutableRawPointer(mutating: p), size) } }
}
