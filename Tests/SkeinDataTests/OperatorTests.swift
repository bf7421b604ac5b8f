import Foundation
import Testing
import SkeinData
import SkeinTestSupport

/// A random table with nulls and duplicates: k (small ints, join/group key), v (decimal), d
/// (double), s (a few strings), t (dates).
func randomTable(_ rng: inout SeededGenerator, rows: Int, keys: Int) -> Table {
    func maybeNull(_ v: Value) -> Value { rng.next() % 7 == 0 ? .null : v }
    let words = ["apple", "pear", "fig", "kiwi", "lime", ""]
    var cols: [[Value]] = [[], [], [], [], []]
    for _ in 0..<rows {
        cols[0].append(maybeNull(.int(Int64(rng.next() % UInt64(max(1, keys))))))
        cols[1].append(maybeNull(.decimal(Int64(rng.next() % 20000) - 10000, scale: 2)))
        cols[2].append(maybeNull(.double(Double(rng.next() % 1000) / 8)))
        cols[3].append(maybeNull(.string(words[Int(rng.next() % UInt64(words.count))])))
        cols[4].append(maybeNull(.date(Int32(9000 + rng.next() % 400))))
    }
    let fields = [Field("k", .int64), Field("v", .decimal(scale: 2)), Field("d", .double), Field("s", .string), Field("t", .date)]
    return Table(fields: fields, columns: fields.indices.map { c in column(cols[c], fields[c].type) })
}

func column(_ values: [Value], _ type: DataType) -> Column {
    let valid = values.map { !$0.isNull }
    switch type {
    case .double: return Column(doubles: values.map { $0.doubleValue ?? 0 }, validity: valid)
    case .string: return Column(strings: values.map { if case .string(let s) = $0 { return s }; return "" }, validity: valid)
    case .bool: return Column(bools: values.map { if case .bool(let b) = $0 { return b }; return false }, validity: valid)
    case .decimal(let s): return Column(ints: values.map { if case .decimal(let x, _) = $0 { return x }; return 0 }, type: .decimal(scale: s), validity: valid)
    case .date: return Column(ints: values.map { if case .date(let x) = $0 { return Int64(x) }; return 0 }, type: .date, validity: valid)
    default: return Column(ints: values.map { if case .int(let x) = $0 { return x }; return 0 }, validity: valid)
    }
}

/// Rows compared as multisets (or in order), doubles to a relative 1e-9.
func sameRows(_ a: [[Value]], _ b: [[Value]], ordered: Bool) -> Bool {
    guard a.count == b.count else { return false }
    func key(_ r: [Value]) -> String { r.map { v in v.doubleValue.map { String(format: "%.6f", $0) } ?? v.description }.joined(separator: "|") }
    let x = ordered ? a : a.sorted { key($0) < key($1) }
    let y = ordered ? b : b.sorted { key($0) < key($1) }
    for (r, s) in zip(x, y) {
        guard r.count == s.count else { return false }
        for (u, v) in zip(r, s) {
            if u.isNull || v.isNull { if u.isNull != v.isNull { return false }; continue }
            if let p = u.doubleValue, let q = v.doubleValue { if abs(p - q) > 1e-9 * max(1, abs(q)) { return false }; continue }
            if u != v { return false }
        }
    }
    return true
}

/// SQL comparison of two values, nil when either is null (three-valued logic).
func cmp(_ a: Value, _ b: Value) -> Int? {
    if a.isNull || b.isNull { return nil }
    switch (a, b) {
    case (.string(let x), .string(let y)): return x == y ? 0 : (Array(x.utf8).lexicographicallyPrecedes(Array(y.utf8)) ? -1 : 1)
    case (.date(let x), .date(let y)): return x == y ? 0 : (x < y ? -1 : 1)
    default:
        let x = a.doubleValue!, y = b.doubleValue!
        return x == y ? 0 : (x < y ? -1 : 1)
    }
}

func database(_ tables: [String: Table], threads: Int = 2, morsel: Int = 7) -> Database {
    let db = Database(threads: threads, morselRows: morsel)
    for (n, t) in tables { db.register(t, as: n) }
    return db
}

@Suite("Relational operators against naive row-at-a-time references")
struct OperatorTests {
    static let seeds: [UInt64] = [1, 2, 3, 4, 5, 6, 7, 8]

    @Test("Filter with nulls, comparisons, LIKE, IN and BETWEEN", arguments: seeds)
    func filter(seed: UInt64) throws {
        var rng = SeededGenerator(seed: seed)
        let t = randomTable(&rng, rows: Int(rng.next() % 60), keys: 6)
        let db = database(["t": t])
        let got = try db.sql("SELECT k, s FROM t WHERE (k > 2 AND v BETWEEN -50.00 AND 50.00) OR s LIKE '%i%' OR k IN (0, 5)").rows
        let want = t.rows.filter { r in
            let a = (cmp(r[0], .int(2)).map { $0 > 0 } ?? false) && (cmp(r[1], .decimal(-5000, scale: 2)).map { $0 >= 0 } ?? false)
                && (cmp(r[1], .decimal(5000, scale: 2)).map { $0 <= 0 } ?? false)
            let b: Bool = { if case .string(let s) = r[3] { return s.contains("i") }; return false }()
            let c = r[0] == .int(0) || r[0] == .int(5)
            return a || b || c
        }.map { [$0[0], $0[3]] }
        #expect(sameRows(got, want, ordered: false), "seed \(seed)")
    }

    static let aggregateSQL = "SELECT s, k, count(*), count(v), count(DISTINCT t), sum(v), avg(d), min(t), max(s) FROM t GROUP BY s, k"

    /// `aggregateSQL` computed row by row with dictionaries.
    static func referenceAggregate(_ t: Table) -> [[Value]] {
        var groups: [[Value]: [[Value]]] = [:]
        for r in t.rows { groups[[r[3], r[0]], default: []].append(r) }
        return groups.map { key, rows in
            let vs = rows.map { $0[1] }.filter { !$0.isNull }
            let ds = rows.map { $0[2] }.filter { !$0.isNull }
            let ts = rows.map { $0[4] }.filter { !$0.isNull }
            let ss = rows.map { $0[3] }.filter { !$0.isNull }
            let sum: Value = vs.isEmpty ? .null : .decimal(vs.reduce(Int64(0)) { if case .decimal(let x, _) = $1 { return $0 + x }; return $0 }, scale: 2)
            let avg: Value = ds.isEmpty ? .null : .double(ds.reduce(0) { $0 + $1.doubleValue! } / Double(ds.count))
            let minT = ts.min { cmp($0, $1)! < 0 } ?? .null
            let maxS = ss.max { cmp($0, $1)! < 0 } ?? .null
            return key + [.int(Int64(rows.count)), .int(Int64(vs.count)), .int(Int64(Set(ts).count)), sum, avg, minT, maxS]
        }
    }

    @Test("Group-by aggregates: count, count distinct, sum, avg, min, max", arguments: seeds)
    func aggregate(seed: UInt64) throws {
        var rng = SeededGenerator(seed: seed)
        let t = randomTable(&rng, rows: Int(rng.next() % 80), keys: 5)
        let got = try database(["t": t]).sql(Self.aggregateSQL).rows
        #expect(sameRows(got, Self.referenceAggregate(t), ordered: false), "seed \(seed)")
    }

    @Test("Many groups on 3 threads: the per-thread states merge partition by partition in parallel", arguments: [UInt64(81), 82])
    func partitionedMerge(seed: UInt64) throws {
        var rng = SeededGenerator(seed: seed)
        let t = randomTable(&rng, rows: 60_000, keys: 10_000)
        let got = try database(["t": t], threads: 3, morsel: 5000).sql(Self.aggregateSQL)
        #expect(got.rowCount > 1 << 15, "seed \(seed): too few groups (\(got.rowCount)) to take the partitioned merge")
        #expect(sameRows(got.rows, Self.referenceAggregate(t), ordered: false), "seed \(seed)")
    }

    @Test("A global aggregate over no rows gives one row: 0 counts, null sums")
    func emptyAggregate() throws {
        var rng = SeededGenerator(seed: 9)
        let db = database(["t": randomTable(&rng, rows: 0, keys: 3)])
        let got = try db.sql("SELECT count(*), sum(v), min(s) FROM t").rows
        #expect(got == [[.int(0), .null, .null]])
        #expect(try db.sql("SELECT k, count(*) FROM t GROUP BY k").rowCount == 0)
    }

    /// The same table with its keys spread far apart, so joins hash instead of indexing directly.
    static func spread(_ t: Table) -> Table {
        var cols = t.columns
        cols[0] = column(t.columns[0].values.map { v in if case .int(let k) = v { return .int(k &* 1_000_000_007) }; return v }, .int64)
        return Table(fields: t.fields, columns: cols)
    }

    @Test("Inner, left, semi and anti joins (with residuals and null keys), direct and hashed tables",
          arguments: seeds.flatMap { [($0, false), ($0, true)] })
    func joins(seed: UInt64, spreadKeys: Bool) throws {
        var rng = SeededGenerator(seed: seed)
        var a = randomTable(&rng, rows: Int(rng.next() % 40), keys: 8)
        var b = randomTable(&rng, rows: Int(rng.next() % 40), keys: 8)
        if spreadKeys { a = Self.spread(a); b = Self.spread(b) }
        let db = database(["a": a, "b": b])
        let ar = a.rows, br = b.rows
        func eq(_ x: Value, _ y: Value) -> Bool { cmp(x, y) == 0 }
        func lt(_ x: Value, _ y: Value) -> Bool { cmp(x, y).map { $0 < 0 } ?? false }

        let inner = try db.sql("SELECT a.k, a.v, b.v FROM a JOIN b ON a.k = b.k AND a.v < b.v").rows
        let innerWant = ar.flatMap { x in br.filter { y in eq(x[0], y[0]) && lt(x[1], y[1]) }.map { y in [x[0], x[1], y[1]] } }
        #expect(sameRows(inner, innerWant, ordered: false), "inner, seed \(seed)")

        let implicit = try db.sql("SELECT a.k, b.s FROM a, b WHERE a.k = b.k AND b.s <> 'fig'").rows
        let implicitWant = ar.flatMap { x in br.filter { y in eq(x[0], y[0]) && (cmp(y[3], .string("fig")).map { $0 != 0 } ?? false) }.map { [x[0], $0[3]] } }
        #expect(sameRows(implicit, implicitWant, ordered: false), "implicit join, seed \(seed)")

        let left = try db.sql("SELECT a.k, a.s, b.d FROM a LEFT JOIN b ON a.k = b.k AND b.d > 20").rows
        let leftWant = ar.flatMap { x -> [[Value]] in
            let m = br.filter { y in eq(x[0], y[0]) && (cmp(y[2], .double(20)).map { $0 > 0 } ?? false) }
            return m.isEmpty ? [[x[0], x[3], .null]] : m.map { [x[0], x[3], $0[2]] }
        }
        #expect(sameRows(left, leftWant, ordered: false), "left, seed \(seed)")

        let semi = try db.sql("SELECT k, v FROM a WHERE EXISTS (SELECT * FROM b WHERE b.k = a.k AND b.t > a.t)").rows
        let semiWant = ar.filter { x in br.contains { y in eq(x[0], y[0]) && lt(x[4], y[4]) } }.map { [$0[0], $0[1]] }
        #expect(sameRows(semi, semiWant, ordered: false), "exists, seed \(seed)")

        let anti = try db.sql("SELECT k, v FROM a WHERE NOT EXISTS (SELECT * FROM b WHERE b.k = a.k)").rows
        let antiWant = ar.filter { x in !br.contains { y in eq(x[0], y[0]) } }.map { [$0[0], $0[1]] }
        #expect(sameRows(anti, antiWant, ordered: false), "not exists, seed \(seed)")

        let inSub = try db.sql("SELECT k FROM a WHERE k IN (SELECT k FROM b WHERE s = 'pear')").rows
        let inWant = ar.filter { x in br.contains { y in eq(x[0], y[0]) && y[3] == .string("pear") } }.map { [$0[0]] }
        #expect(sameRows(inSub, inWant, ordered: false), "in, seed \(seed)")

        // NOT IN is null-aware: a null on the right makes it never true.
        let notIn = try db.sql("SELECT k FROM a WHERE k NOT IN (SELECT k FROM b WHERE d < 60)").rows
        let right = br.filter { cmp($0[2], .double(60)).map { $0 < 0 } ?? false }.map { $0[0] }
        let notInWant: [[Value]] = right.contains(where: \.isNull) ? [] : ar.filter { x in
            !x[0].isNull && !right.contains { eq(x[0], $0) } || (x[0].isNull && right.isEmpty)
        }.map { [$0[0]] }
        #expect(sameRows(notIn, notInWant, ordered: false), "not in, seed \(seed)")

        let scalar = try db.sql("SELECT k, v FROM a WHERE v > (SELECT avg(v) FROM b WHERE b.k = a.k)").rows
        let scalarWant = ar.filter { x in
            let vs = br.filter { eq($0[0], x[0]) && !$0[1].isNull }.map { $0[1].doubleValue! }
            guard !vs.isEmpty, let v = x[1].doubleValue else { return false }
            return v > vs.reduce(0, +) / Double(vs.count)
        }.map { [$0[0], $0[1]] }
        #expect(sameRows(scalar, scalarWant, ordered: false), "correlated scalar, seed \(seed)")
    }

    @Test("Joins with large build sides: tables built on 2 threads, bucket partition by partition",
          arguments: [(UInt64(91), false), (92, true)])
    func largeJoins(seed: UInt64, spreadKeys: Bool) throws {
        var rng = SeededGenerator(seed: seed)
        var a = randomTable(&rng, rows: 80_000, keys: 100_000)
        var b = randomTable(&rng, rows: 70_000, keys: 100_000)
        if spreadKeys { a = Self.spread(a); b = Self.spread(b) }
        let db = database(["a": a, "b": b], threads: 2, morsel: 8192)
        let ar = a.rows, br = b.rows
        var byKey: [Value: [[Value]]] = [:], byKeyAndWord: [[Value]: [[Value]]] = [:]
        for y in br where !y[0].isNull {
            byKey[y[0], default: []].append(y)
            if !y[3].isNull { byKeyAndWord[[y[0], y[3]], default: []].append(y) }
        }
        let inner = try db.sql("SELECT a.k, a.v, b.v FROM a JOIN b ON a.k = b.k").rows
        let innerWant = ar.flatMap { x in (byKey[x[0]] ?? []).map { [x[0], x[1], $0[1]] } }
        #expect(sameRows(inner, innerWant, ordered: false), "inner on an integer key, seed \(seed)")
        // A string in the key: hashed column by column, not packed.
        let twoKeys = try db.sql("SELECT a.k, a.s, b.d FROM a JOIN b ON a.k = b.k AND a.s = b.s").rows
        let twoKeysWant = ar.flatMap { x in (byKeyAndWord[[x[0], x[3]]] ?? []).map { [x[0], x[3], $0[2]] } }
        #expect(sameRows(twoKeys, twoKeysWant, ordered: false), "inner on (integer, string), seed \(seed)")
        let semi = try db.sql("SELECT k, t FROM a WHERE k IN (SELECT k FROM b)").rows
        let semiWant = ar.filter { byKey[$0[0]] != nil }.map { [$0[0], $0[4]] }
        #expect(sameRows(semi, semiWant, ordered: false), "semi, seed \(seed)")
    }

    @Test("ORDER BY several keys, directions and nulls; LIMIT and OFFSET", arguments: seeds)
    func sort(seed: UInt64) throws {
        var rng = SeededGenerator(seed: seed)
        let t = randomTable(&rng, rows: Int(rng.next() % 70), keys: 4)
        let db = database(["t": t])
        let got = try db.sql("SELECT k, s, d FROM t ORDER BY k DESC, s NULLS FIRST, d LIMIT 15 OFFSET 2").rows
        func order(_ a: Value, _ b: Value, asc: Bool, nullsFirst: Bool) -> Int {
            if a.isNull || b.isNull { return a.isNull == b.isNull ? 0 : (a.isNull == nullsFirst ? -1 : 1) }
            return asc ? cmp(a, b)! : -cmp(a, b)!
        }
        let all = t.rows.map { [$0[0], $0[3], $0[2]] }.sorted { x, y in
            for (c, (asc, nf)) in [(false, true), (true, true), (true, false)].enumerated() {
                let r = order(x[c], y[c], asc: asc, nullsFirst: nf)
                if r != 0 { return r < 0 }
            }
            return false
        }
        let want = Array(all.dropFirst(2).prefix(15))
        // Every selected column is a sort key, so rows that tie are identical: the order is exact.
        #expect(sameRows(got, want, ordered: true), "seed \(seed)")
    }

    @Test("A large ORDER BY (runs sorted on 3 threads, then merged) and ORDER BY … LIMIT (top-N per morsel) keep ties in input order",
          arguments: [UInt64(71), 72])
    func largeSort(seed: UInt64) throws {
        var rng = SeededGenerator(seed: seed)
        let base = randomTable(&rng, rows: 40_000, keys: 50)
        let ids = Column(ints: (0..<Int64(base.rowCount)).map { $0 }, validity: nil)
        let t = Table(fields: base.fields + [Field("id", .int64)], columns: base.columns + [ids])
        let db = database(["t": t], threads: 3, morsel: 1000)
        func order(_ a: Value, _ b: Value, asc: Bool, nullsFirst: Bool) -> Int {
            if a.isNull || b.isNull { return a.isNull == b.isNull ? 0 : (a.isNull == nullsFirst ? -1 : 1) }
            return asc ? cmp(a, b)! : -cmp(a, b)!
        }
        // k DESC NULLS FIRST (the default for DESC), s ASC NULLS LAST, t DESC; then input order.
        let want = t.rows.map { [$0[0], $0[3], $0[4], $0[5]] }.sorted { x, y in
            for (c, (asc, nf)) in [(false, true), (true, false), (false, true)].enumerated() {
                let r = order(x[c], y[c], asc: asc, nullsFirst: nf)
                if r != 0 { return r < 0 }
            }
            return cmp(x[3], y[3])! < 0
        }
        let sql = "SELECT k, s, t, id FROM t ORDER BY k DESC, s, t DESC"
        #expect(sameRows(try db.sql(sql).rows, want, ordered: true), "full sort, seed \(seed)")
        #expect(sameRows(try db.sql(sql + " LIMIT 25 OFFSET 990").rows, Array(want[990..<1015]), ordered: true), "top-N, seed \(seed)")
        #expect(sameRows(try db.sql(sql + " LIMIT 0").rows, [], ordered: true), "LIMIT 0, seed \(seed)")
    }

    @Test("DISTINCT, UNION, INTERSECT and EXCEPT (with ALL)", arguments: seeds)
    func setOperations(seed: UInt64) throws {
        var rng = SeededGenerator(seed: seed)
        let a = randomTable(&rng, rows: Int(rng.next() % 40), keys: 4)
        let b = randomTable(&rng, rows: Int(rng.next() % 40), keys: 4)
        let db = database(["a": a, "b": b])
        let x = a.rows.map { [$0[0], $0[3]] }, y = b.rows.map { [$0[0], $0[3]] }
        func distinct(_ r: [[Value]]) -> [[Value]] { Array(Set(r)) }
        func count(_ r: [[Value]]) -> [[Value]: Int] { r.reduce(into: [:]) { $0[$1, default: 0] += 1 } }
        #expect(sameRows(try db.sql("SELECT DISTINCT k, s FROM a").rows, distinct(x), ordered: false), "distinct, seed \(seed)")
        #expect(sameRows(try db.sql("SELECT k, s FROM a UNION SELECT k, s FROM b").rows, distinct(x + y), ordered: false), "union, seed \(seed)")
        #expect(sameRows(try db.sql("SELECT k, s FROM a UNION ALL SELECT k, s FROM b").rows, x + y, ordered: false), "union all, seed \(seed)")
        let cy = count(y), cx = count(x)
        #expect(sameRows(try db.sql("SELECT k, s FROM a INTERSECT SELECT k, s FROM b").rows, distinct(x).filter { cy[$0] != nil }, ordered: false), "intersect, seed \(seed)")
        #expect(sameRows(try db.sql("SELECT k, s FROM a EXCEPT SELECT k, s FROM b").rows, distinct(x).filter { cy[$0] == nil }, ordered: false), "except, seed \(seed)")
        let exceptAll = cx.flatMap { r, n in Array(repeating: r, count: max(0, n - (cy[r] ?? 0))) }
        #expect(sameRows(try db.sql("SELECT k, s FROM a EXCEPT ALL SELECT k, s FROM b").rows, exceptAll, ordered: false), "except all, seed \(seed)")
    }

    @Test("Expressions: CASE, arithmetic on decimals, EXTRACT, SUBSTRING, CAST, date ± INTERVAL")
    func expressions() throws {
        let t = Table(fields: [Field("p", .decimal(scale: 2)), Field("q", .decimal(scale: 2)), Field("day", .date), Field("name", .string)],
                      columns: [Column(ints: [1999, 250, -5], type: .decimal(scale: 2)), Column(ints: [5, 10, 0], type: .decimal(scale: 2)),
                                Column(ints: [Int64(parseDate("1998-12-01")!), Int64(parseDate("1994-02-28")!), Int64(parseDate("2000-01-31")!)], type: .date),
                                Column(strings: ["héllo", "ab", ""])])
        let db = database(["t": t], threads: 1)
        let r = try db.sql("""
            SELECT p * (1 - q) AS net, CASE WHEN p > 10 THEN 'big' WHEN p < 0 THEN 'neg' ELSE 'small' END AS size,
                   extract(year FROM day) AS y, substring(name FROM 2 FOR 3) AS sub, CAST(p AS DOUBLE) / 2 AS half,
                   day + INTERVAL '1' MONTH <= DATE '1999-01-01' AS early
            FROM t ORDER BY net
            """)
        #expect(r.rows.map { $0.map(\.description) } == [
            ["-0.0500", "neg", "2000", "", "-0.025", "false"],
            ["2.2500", "small", "1994", "b", "1.25", "true"],
            ["18.9905", "big", "1998", "éll", "9.995", "true"],
        ])
        let interval = try db.sql("SELECT DATE '1998-12-01' - INTERVAL '90' DAY (3) AS d, DATE '2000-01-31' + INTERVAL '1' MONTH AS m FROM t LIMIT 1")
        #expect(interval.row(0).map(\.description) == ["1998-09-02", "2000-02-29"])
    }
}

@Suite("Working memory: a limit makes aggregations and joins partition to disk, with the same answers")
struct MemoryLimitTests {
    /// Runs `body` with the same tables in a database under a working-memory limit (spilling into
    /// a fresh directory) and in one without; then checks that no spill file was left behind.
    static func withLimitedAndFree(
        _ tables: [String: Table], morsel: Int, limit: Int, _ body: (_ limited: Database, _ free: Database) throws -> Void
    ) throws {
        let dir = try scratchDirectory("skein-spill-test")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let limited = Database(threads: 2, morselRows: morsel, memoryLimit: limit, spillDirectory: dir)
        let free = Database(threads: 2, morselRows: morsel)
        for (name, t) in tables { limited.register(t, as: name); free.register(t, as: name) }
        try body(limited, free)
        #expect(try FileManager.default.contentsOfDirectory(atPath: dir).isEmpty, "spill files left behind")
    }

    @Test("Inner, left, semi and anti joins under a tiny limit equal the unlimited run", arguments: [UInt64(41), 42, 43])
    func graceJoins(seed: UInt64) throws {
        var rng = SeededGenerator(seed: seed)
        let a = randomTable(&rng, rows: 2000, keys: 300), b = randomTable(&rng, rows: 2500, keys: 300)
        try Self.withLimitedAndFree(["a": a, "b": b], morsel: 300, limit: 64 << 10) { limited, free throws in
            for sql in [
                "SELECT a.k, a.v, b.d FROM a JOIN b ON a.k = b.k AND a.t < b.t",
                "SELECT a.k, a.s, b.v FROM a LEFT JOIN b ON a.k = b.k AND b.d > 50",
                "SELECT k, v FROM a WHERE EXISTS (SELECT * FROM b WHERE b.k = a.k AND b.s <> a.s)",
                "SELECT k, v FROM a WHERE NOT EXISTS (SELECT * FROM b WHERE b.k = a.k AND b.d < 10)",
            ] {
                #expect(sameRows(try limited.sql(sql).rows, try free.sql(sql).rows, ordered: false), "seed \(seed): \(sql)")
            }
        }
    }

    @Test("ORDER BY under a tiny limit (an external merge sort) gives the same order", arguments: [UInt64(61), 62])
    func externalSort(seed: UInt64) throws {
        var rng = SeededGenerator(seed: seed)
        let t = randomTable(&rng, rows: 5000, keys: 50)
        try Self.withLimitedAndFree(["t": t], morsel: 700, limit: 32 << 10) { limited, free throws in
            // Every column is a key, so the order is total and must match row for row.
            let sql = "SELECT k, s, d, v, t FROM t ORDER BY k DESC, s NULLS FIRST, d, v DESC, t"
            #expect(sameRows(try limited.sql(sql).rows, try free.sql(sql).rows, ordered: true), "seed \(seed)")
        }
    }

    @Test("Join keys of different types (BIGINT = DECIMAL) match by value")
    func mixedKeyTypes() throws {
        let db = Database(threads: 1)
        db.register(Table(fields: [Field("i", .int64)], columns: [Column(ints: [1, 2, 3])]), as: "x")
        db.register(Table(fields: [Field("d", .decimal(scale: 2))], columns: [Column(ints: [200, 300, 450], type: .decimal(scale: 2))]), as: "y")
        #expect(try db.sql("SELECT i FROM x JOIN y ON i = d ORDER BY i").rows == [[.int(2)], [.int(3)]])
        #expect(try db.sql("SELECT i FROM x WHERE i IN (SELECT d FROM y) ORDER BY i").rows == [[.int(2)], [.int(3)]])
    }

    @Test("Group-by under a tiny memory limit equals the unlimited run; spill files are removed", arguments: [UInt64(31), 32, 33])
    func spillingAggregate(seed: UInt64) throws {
        var rng = SeededGenerator(seed: seed)
        let t = randomTable(&rng, rows: 3000, keys: 1500)
        try Self.withLimitedAndFree(["t": t], morsel: 256, limit: 16 << 10) { limited, free throws in
            let sql = "SELECT k, s, count(*), sum(v), avg(d), min(t), max(s), count(DISTINCT t) FROM t GROUP BY k, s"
            let a = try limited.sql(sql), b = try free.sql(sql)
            #expect(sameRows(a.rows, b.rows, ordered: false), "seed \(seed)")
            #expect(limited.lastQueryPeakBytes < free.lastQueryPeakBytes, "seed \(seed): \(limited.lastQueryPeakBytes) vs \(free.lastQueryPeakBytes)")
        }
    }
}
