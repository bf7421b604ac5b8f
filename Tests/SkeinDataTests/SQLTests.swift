import Foundation
import Testing
import SkeinData
import SkeinTestSupport

@Suite("SQL: errors that point at the problem, EXPLAIN, the DataFrame API")
struct SQLTests {
    func db() -> Database {
        var rng = SeededGenerator(seed: 5)
        return database(["orders": randomTable(&rng, rows: 20, keys: 4), "items": randomTable(&rng, rows: 20, keys: 4)])
    }

    @Test("Syntax, name and type errors say what, where, and the closest name")
    func errors() throws {
        let cases: [(String, DataError.Code, String)] = [
            ("SELECT k FROM orders WHERE", .syntax, "line 1, column 27: expected an expression, found the end of the query"),
            ("SELECT k\nFROM orders WHERE k = = 1", .syntax, "line 2, column 23: expected an expression, found '='"),
            ("SELECT k FROM order", .unknownTable, "unknown table 'order'; did you mean 'orders'?"),
            ("SELECT kk FROM orders", .unknownColumn, "unknown column 'kk'; did you mean 'k'?"),
            ("SELECT o.k FROM orders x", .unknownTable, "no table or alias named 'o'"),
            ("SELECT k FROM orders, items", .unknownColumn, "ambiguous"),
            ("SELECT k + s FROM orders", .type, "cannot apply + to BIGINT and VARCHAR in k + s at line 1, column 10"),
            ("SELECT k FROM orders WHERE s > 3", .type, "cannot compare VARCHAR with BIGINT in s > 3 at line 1, column 30"),
            ("SELECT k\nFROM orders\nWHERE k = 1 AND k LIKE 'a%'", .type, "LIKE needs a VARCHAR on its left, found BIGINT in k at line 3, column 19"),
            ("SELECT k FROM orders WHERE k BETWEEN 1 AND 'x'", .type, "cannot compare BIGINT with VARCHAR in k <= 'x' at line 1, column 28"),
            ("SELECT k FROM orders WHERE s IN ('a', 2)", .type, "cannot compare VARCHAR with BIGINT in s = 2 at line 1, column 39"),
            ("SELECT extract(year FROM s) FROM orders", .type, "EXTRACT needs a DATE, found VARCHAR in s at line 1, column 26"),
            ("SELECT k FROM orders WHERE k AND d > 1", .type, "WHERE needs a BOOLEAN condition, found BIGINT in k at line 1, column 28"),
            ("SELECT k FROM orders WHERE (k OR d > 1)", .type, "OR needs booleans, found BIGINT and BOOLEAN at line 1, column 31"),
            ("SELECT CASE WHEN v THEN 1 END FROM orders", .type, "WHEN needs a BOOLEAN condition, found"),
            ("SELECT k FROM orders a JOIN items b ON a.k + b.k", .type, "ON needs a BOOLEAN condition, found BIGINT"),
            ("SELECT substring(k, 1, 2) FROM orders", .type, "SUBSTRING needs a VARCHAR, found BIGINT in k at line 1, column 18"),
            ("SELECT k, sum(v) FROM orders", .syntax, "column 'k' must appear in GROUP BY"),
            ("SELECT 'abc", .syntax, "expected a closing quote"),
            ("SELECT frob(k) FROM orders", .syntax, "unknown function frob()"),
        ]
        let d = db()
        for (sql, code, message) in cases {
            do {
                _ = try d.sql(sql)
                Issue.record("no error for \(sql)")
            } catch let e as DataError {
                #expect(e.code == code && e.message.contains(message), "\(sql): \(e.message)")
            }
        }
    }

    @Test("EXPLAIN shows the optimized plan: filters pushed to scans, cross products turned into joins")
    func explain() throws {
        let plan = try db().explain("SELECT o.k, i.s FROM orders o, items i WHERE o.k = i.k AND i.d > 10 AND o.s = 'fig'")
        #expect(plan.contains("INNER JOIN ON"), "\(plan)")
        #expect(!plan.contains("CROSS"), "\(plan)")
        let lines = plan.split(separator: "\n")
        // Each filter sits directly above a scan.
        for (i, l) in lines.enumerated() where l.contains("FILTER") {
            #expect(i + 1 < lines.count && lines[i + 1].contains("SCAN"), "\(plan)")
        }
        let t = try db().sql("EXPLAIN SELECT count(*) FROM orders")
        #expect(t.rowCount >= 2)
    }

    @Test("The DataFrame API builds the same plan as SQL and gives the same rows", arguments: [UInt64(1), 2, 3])
    func dataFrame(seed: UInt64) throws {
        var rng = SeededGenerator(seed: seed)
        let d = database(["a": randomTable(&rng, rows: 50, keys: 5), "b": randomTable(&rng, rows: 30, keys: 5)])
        let viaSQL = try d.sql("""
            SELECT a.s, count(*) AS n, sum(b.v) AS total FROM a JOIN b ON a.k = b.k
            WHERE a.d > 20 GROUP BY a.s ORDER BY n DESC, a.s LIMIT 3
            """)
        let a = try d.frame("a"), b = try d.frame("b")
        let viaFrame = try a.filter(col("d") > 20)
            .join(b, on: [("k", "k")])
            .groupBy("a.s").agg(count().as("n"), sum(col("b.v")).as("total"))
            .orderBy(col("n").desc, col("s"))
            .limit(3)
            .collect()
        #expect(viaFrame.names == ["s", "n", "total"])
        #expect(sameRows(viaFrame.rows, viaSQL.rows, ordered: true), "seed \(seed)")
    }
}

@Suite("The README's analytics example")
struct ReadmeExampleTests {
    @Test("SQL and the DataFrame chain in the README give the same top customers")
    func readme() throws {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("skein-readme-orders.csv").path
        var text = "customer,total\n"
        var spent: [String: Double] = [:]
        var rng = SeededGenerator(seed: 77)
        for _ in 0..<500 {
            let c = "c\(rng.next() % 40)", t = Double(rng.next() % 10_000) / 4
            text += "\(c),\(t)\n"
            spent[c, default: 0] += t
        }
        try text.write(toFile: path, atomically: true, encoding: .utf8)
        defer { try? FileManager.default.removeItem(atPath: path) }

        let db = Database()
        try db.loadCSV(path: path, as: "orders")
        let top = try db.sql("SELECT customer, sum(total) AS spent FROM orders GROUP BY customer ORDER BY spent DESC LIMIT 5")
        let same = try db.frame("orders").groupBy("customer").agg(sum(col("total")).as("spent"))
            .orderBy(col("spent").desc).limit(5).collect()
        let want = spent.sorted { $0.value > $1.value }.prefix(5).map { [Value.string($0.key), .double($0.value)] }
        #expect(sameRows(top.rows, want, ordered: true))
        #expect(sameRows(same.rows, want, ordered: true))
        #expect(top.names == ["customer", "spent"] && same.names == ["customer", "spent"])
    }
}

@Suite("Overflow is an error, not a wrong answer")
struct OverflowTests {
    @Test("A sum past 64 bits says so and how to avoid it")
    func sumOverflow() throws {
        let db = Database(threads: 1)
        db.register(Table(fields: [Field("x", .int64)], columns: [Column(ints: [Int64.max, Int64.max, 1])]), as: "big")
        #expect(throws: DataError.self) { try db.sql("SELECT sum(x) FROM big") }
        #expect(try db.sql("SELECT sum(CAST(x AS DOUBLE)) FROM big").rowCount == 1)
        #expect(try db.sql("SELECT avg(x) FROM big").row(0)[0].doubleValue! > 6e18)
    }
}
