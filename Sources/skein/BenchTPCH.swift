import ArgumentParser
import Foundation
import SkeinData

/// `skein bench tpch`: the 22 TPC-H queries on Skein beside DuckDB and Polars, same data, same run.
struct BenchTPCH: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "tpch",
        abstract: "TPC-H: Skein's time per query on 1 and 2 threads beside DuckDB's and Polars', and CSV ingest MB/s.",
        discussion: "Data and the peers come from scripts/tpch-setup.sh and scripts/tpch-data.sh (run from the repository root).")

    @OptionGroup var options: TPCHBenchOptions
    @Option(help: "Runs per query; the best is reported (as DuckDB's benchmark runner does).")
    var repetitions = 3
    @Option(help: "Also run Q9 and Q18 under this working-memory limit.")
    var memoryLimit = ByteSize(bytes: 256 << 20)

    struct Row: Codable {
        var query: Int
        var threads: Int
        var skein: Double
        var duckdb: Double?
        var polars: Double?
        var correct: Bool?
    }

    func run() throws {
        Database.retainFreedMemory()
        let threadCounts = options.threadCounts
        let dir = try options.dataDirectory()
        let answers = "Tests/SkeinDataTests/TPCH/sf\(options.sf)"
        var rows: [Row] = []
        var ingest: [(String, Int, Double)] = []
        for t in threadCounts {
            let db = Database(threads: t)
            let lineitem = "\(dir)/lineitem.tbl"
            let size = Double((try FileManager.default.attributesOfItem(atPath: lineitem)[.size] as? Int) ?? 0)
            for name in TPCH.tableNames {
                let start = Date()
                try db.loadCSV(path: "\(dir)/\(name).tbl", as: name, options: TPCH.options(name, threads: t))
                if name == "lineitem" { ingest.append(("skein", t, size / Date().timeIntervalSince(start) / 1e6)) }
            }
            note("loaded SF \(options.sf) on \(t) thread(s); running 22 queries × \(repetitions)")
            for (i, sql) in TPCH.queries.enumerated() {
                var best = Double.infinity
                var result: Table? = nil
                for _ in 0..<repetitions {
                    let start = Date()
                    result = try db.sql(sql)
                    best = min(best, Date().timeIntervalSince(start))
                }
                let expected = try? String(contentsOfFile: String(format: "%@/q%02d.csv", answers, i + 1), encoding: .utf8)
                let correct = expected.map { AnswerCheck.mismatch(result!, expected: $0) == nil }
                rows.append(Row(query: i + 1, threads: t, skein: best, correct: correct))
                note(String(format: "  Q%02d %.3f s %@", i + 1, best, correct.map { $0 ? "correct" : "WRONG" } ?? "(no reference answer)"))
            }
        }
        // Q9 and Q18 under the memory limit (aggregations partition to disk past it).
        var limited: [(Int, Double, Int, Int, Bool?)] = []
        do {
            let db = Database(threads: threadCounts.max() ?? 2, memoryLimit: memoryLimit.bytes)
            let free = Database(threads: threadCounts.max() ?? 2)
            for name in TPCH.tableNames {
                let t = try CSVReader.read(path: "\(dir)/\(name).tbl", options: TPCH.options(name, threads: threadCounts.max() ?? 2)).table
                db.register(t, as: name)
                free.register(t, as: name)
            }
            for q in [9, 18] {
                _ = try free.sql(TPCH.queries[q - 1])
                let unlimitedPeak = free.lastQueryPeakBytes
                let start = Date()
                let r = try db.sql(TPCH.queries[q - 1])
                let dt = Date().timeIntervalSince(start)
                let expected = try? String(contentsOfFile: String(format: "%@/q%02d.csv", answers, q), encoding: .utf8)
                limited.append((q, dt, db.lastQueryPeakBytes, unlimitedPeak, expected.map { AnswerCheck.mismatch(r, expected: $0) == nil }))
            }
        }
        if !options.noPeers {
            for t in threadCounts {
                note("running DuckDB and Polars on \(t) thread(s)")
                for d in try options.peers("time \(dir) \(t) \(repetitions)") {
                    guard let q = d["query"] as? Int, let engine = d["engine"] as? String,
                          let k = rows.firstIndex(where: { $0.query == q && $0.threads == t }) else { continue }
                    let s = d["seconds"] as? Double
                    if engine == "duckdb" { rows[k].duckdb = s } else { rows[k].polars = s }
                }
                for d in try options.peers("ingest \(dir)/lineitem.tbl \(t)") {
                    guard let engine = d["engine"] as? String, let mbps = d["mb_per_s"] as? Double else { continue }
                    ingest.append((engine, t, mbps))
                }
            }
        }
        if options.json { return try options.printJSON(rows) }
        report(rows, threadCounts, ingest)
        print("under a \(memoryLimit) working-memory limit (\(threadCounts.max() ?? 2) threads):")
        for (q, dt, peak, unlimited, ok) in limited {
            print(String(format: "  Q%d: %.1f ms, peak working memory %@ (without the limit: %@), %@", q, dt * 1000, formatBytes(peak),
                         formatBytes(unlimited), ok.map { $0 ? "correct" : "WRONG" } ?? "unchecked"))
        }
    }

    func report(_ rows: [Row], _ threadCounts: [Int], _ ingest: [(String, Int, Double)]) {
        func ms(_ s: Double?) -> String { s.map { String(format: "%8.1f", $0 * 1000) } ?? "       –" }
        func ratio(_ a: Double, _ b: Double?) -> String { b.map { String(format: "%6.2f×", a / $0) } ?? "      –" }
        print("TPC-H SF \(options.sf): best of \(repetitions) runs, milliseconds; ratio = Skein / DuckDB (lower is better)")
        var header = "query"
        for t in threadCounts { header += "  │ skein \(t)T  duckdb \(t)T   ratio  polars \(t)T" }
        print(header + "  │ answer")
        for q in 1...22 {
            var line = String(format: "Q%02d  ", q)
            var correct = true
            for t in threadCounts {
                guard let r = rows.first(where: { $0.query == q && $0.threads == t }) else { continue }
                line += "  │ \(ms(r.skein))  \(ms(r.duckdb))  \(ratio(r.skein, r.duckdb))  \(ms(r.polars))"
                if r.correct == false { correct = false }
            }
            let checked = rows.contains { $0.query == q && $0.correct != nil }
            print(line + "  │ " + (checked ? (correct ? "correct" : "WRONG") : "unchecked"))
        }
        for t in threadCounts {
            let mine = rows.filter { $0.threads == t }
            let geo = exp(mine.map { log($0.skein) }.reduce(0, +) / Double(mine.count))
            let paired = mine.filter { $0.duckdb != nil }
            var line = String(format: "%dT: Skein geometric mean %.1f ms", t, geo * 1000)
            if !paired.isEmpty {
                let dgeo = exp(paired.map { log($0.duckdb!) }.reduce(0, +) / Double(paired.count))
                let rgeo = exp(paired.map { log($0.skein / $0.duckdb!) }.reduce(0, +) / Double(paired.count))
                line += String(format: ", DuckDB %.1f ms, geometric mean of ratios %.2f×, worst %.2f× (Q%d)", dgeo * 1000, rgeo,
                               paired.map { $0.skein / $0.duckdb! }.max()!, paired.max { $0.skein / $0.duckdb! < $1.skein / $1.duckdb! }!.query)
            }
            let six = [1, 3, 5, 6, 9, 18]
            let s6 = mine.filter { six.contains($0.query) }.reduce(0) { $0 + $1.skein }
            line += String(format: "; Q1+Q3+Q5+Q6+Q9+Q18 %.2f s", s6)
            let d6 = mine.filter { six.contains($0.query) }.compactMap(\.duckdb)
            if d6.count == 6 { line += String(format: " (DuckDB %.2f s)", d6.reduce(0, +)) }
            print(line)
        }
        print("lineitem CSV ingest, MB/s:")
        for t in threadCounts {
            let row = ingest.filter { $0.1 == t }
            let skein = row.first { $0.0 == "skein" }?.2
            var line = "  \(t)T:"
            for (engine, _, v) in row { line += String(format: "  %@ %.0f", engine, v) }
            if let skein, let d = row.first(where: { $0.0 == "duckdb" })?.2 { line += String(format: "  (Skein/DuckDB %.2f×)", skein / d) }
            print(line)
        }
    }
}
