import ArgumentParser
import Foundation
import SkeinData

/// `skein bench operators`: each relational operator alone on TPC-H data, on 1 and 2 threads,
/// beside DuckDB running the same SQL in the same run, to show that each one scales with threads.
struct BenchOperators: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "operators",
        abstract: "Each operator (filter, aggregation, join, sort, top-N) on 1 and 2 threads, with its speedup, beside DuckDB.",
        discussion: "Runs on TPC-H data (scripts/tpch-data.sh SF); run from the repository root.")

    @OptionGroup var options: TPCHBenchOptions
    @Option(help: "Runs per case; the best is reported.")
    var repetitions = 5

    /// Each case stresses one operator; results are small or materialized by both engines alike.
    static let cases: [(name: String, sql: String)] = [
        ("scan + filter (lineitem)", """
            SELECT count(*), sum(l_extendedprice) FROM lineitem
            WHERE l_quantity < 24 AND l_discount BETWEEN 0.05 AND 0.07 AND l_shipdate >= DATE '1994-01-01'
            """),
        ("aggregate, 4 groups", """
            SELECT l_returnflag, l_linestatus, sum(l_quantity), avg(l_discount), count(*) FROM lineitem
            GROUP BY l_returnflag, l_linestatus
            """),
        ("aggregate, 1.5 M groups", """
            SELECT l_orderkey, sum(l_quantity) FROM lineitem GROUP BY l_orderkey HAVING sum(l_quantity) > 300
            """),
        ("join, 1.5 M-row build", """
            SELECT count(*), sum(o1.o_totalprice) FROM orders o1 JOIN orders o2 ON o1.o_orderkey = o2.o_orderkey
            WHERE o2.o_orderstatus <> 'X'
            """),
        ("join, 6 M probes into 1.5 M", """
            SELECT count(*), sum(l_extendedprice) FROM lineitem JOIN orders ON l_orderkey = o_orderkey
            WHERE o_orderdate < DATE '1996-01-01'
            """),
        ("sort, 1.5 M rows", """
            SELECT o_orderkey, o_totalprice, o_orderdate FROM orders ORDER BY o_totalprice DESC, o_orderdate
            """),
        ("top-N of 6 M rows", """
            SELECT l_orderkey, l_extendedprice FROM lineitem ORDER BY l_extendedprice DESC, l_orderkey LIMIT 10
            """),
    ]

    struct Row: Codable {
        var operation: String
        var threads: Int
        var skein: Double
        var duckdb: Double?
    }

    func run() throws {
        Database.retainFreedMemory()
        let threadCounts = options.threadCounts
        let dir = try options.dataDirectory()
        var rows: [Row] = []
        let tables = try TPCH.tableNames.map { name in
            (name, try CSVReader.read(path: "\(dir)/\(name).tbl", options: TPCH.options(name, threads: threadCounts.max() ?? 2)).table)
        }
        for t in threadCounts {
            let db = Database(threads: t)
            for (name, table) in tables { db.register(table, as: name) }
            for (name, sql) in Self.cases {
                var best = Double.infinity
                for _ in 0..<repetitions {
                    let start = Date()
                    _ = try db.sql(sql)
                    best = min(best, Date().timeIntervalSince(start))
                }
                rows.append(Row(operation: name, threads: t, skein: best))
                note(String(format: "  %@ on %d thread(s): %.1f ms", name, t, best * 1000))
            }
        }
        if !options.noPeers {
            let texts = String(decoding: try JSONEncoder().encode(Self.cases.map(\.sql)), as: UTF8.self)
            for t in threadCounts {
                note("running DuckDB on \(t) thread(s)")
                for d in try options.peers("operators \(dir) \(t) \(repetitions)", input: texts) {
                    guard let c = d["case"] as? Int, let s = d["seconds"] as? Double,
                          let k = rows.firstIndex(where: { $0.operation == Self.cases[c].name && $0.threads == t }) else { continue }
                    rows[k].duckdb = s
                }
            }
        }
        if options.json { return try options.printJSON(rows) }
        report(rows, threadCounts)
    }

    func report(_ rows: [Row], _ threadCounts: [Int]) {
        func ms(_ s: Double?) -> String { s.map { String(format: "%8.1f", $0 * 1000) } ?? "       –" }
        print("Operators on TPC-H SF \(options.sf): best of \(repetitions), milliseconds; speedup = 1 thread / n threads; ratio = Skein / DuckDB")
        var header = "operation                     "
        for t in threadCounts { header += " │ skein \(t)T duckdb \(t)T  ratio" + (t == threadCounts.first ? "" : " speedup") }
        print(header)
        for (name, _) in Self.cases {
            var line = name.padding(toLength: 30, withPad: " ", startingAt: 0)
            let first = rows.first { $0.operation == name && $0.threads == threadCounts.first }
            for t in threadCounts {
                guard let r = rows.first(where: { $0.operation == name && $0.threads == t }) else { continue }
                line += " │ \(ms(r.skein))  \(ms(r.duckdb)) " + (r.duckdb.map { String(format: "%5.2f×", r.skein / $0) } ?? "     –")
                if t != threadCounts.first, let f = first { line += String(format: "   %5.2f×", f.skein / r.skein) }
            }
            print(line)
        }
    }
}
