import Foundation
import Testing
import SkeinData
import SkeinTestSupport

/// TPC-H at scale factor 0.1: the data comes from tpchgen-cli (scripts/tpch-data.sh, which the
/// test script runs), the answers from DuckDB, checked in under TPCH/sf0.1.
@Suite("TPC-H: all 22 queries against DuckDB's answers", .serialized)
struct TPCHTests {
    static let here = URL(fileURLWithPath: #filePath).deletingLastPathComponent()

    static func dataDirectory() throws -> String {
        if let d = ProcessInfo.processInfo.environment["SKEIN_TPCH_DIR"] { return d }
        let guess = here.appendingPathComponent("../../.build/tpch/sf0.1").standardized.path
        guard FileManager.default.fileExists(atPath: guess + "/.complete") else {
            throw DataError(.io, "no TPC-H data: run scripts/tpch-data.sh 0.1 (scripts/test.sh does), or set SKEIN_TPCH_DIR")
        }
        return guess
    }

    static func load(threads: Int) throws -> Database {
        let dir = try dataDirectory()
        let db = Database(threads: threads)
        for t in TPCH.tableNames { try db.loadCSV(path: "\(dir)/\(t).tbl", as: t, options: TPCH.options(t, threads: threads)) }
        return db
    }

    static func answer(_ q: Int) throws -> String {
        try String(contentsOf: here.appendingPathComponent(String(format: "TPCH/sf0.1/q%02d.csv", q)), encoding: .utf8)
    }

    @Test("Every query's answer matches DuckDB's, on 1 and 2 threads", arguments: [1, 2])
    func all22(threads: Int) throws {
        let db = try Self.load(threads: threads)
        for (i, sql) in TPCH.queries.enumerated() {
            let q = i + 1
            let result = try db.sql(sql)
            let problem = AnswerCheck.mismatch(result, expected: try Self.answer(q))
            #expect(problem == nil, "Q\(q) on \(threads) thread(s): \(problem ?? "")")
        }
    }

    @Test("Under a 1 MiB working-memory limit (aggregations, joins and sorts spill), every answer still matches")
    func spilling() throws {
        let dir = try Self.dataDirectory()
        let spill = try scratchDirectory("skein-tpch-spill")
        defer { try? FileManager.default.removeItem(atPath: spill) }
        let db = Database(threads: 2, memoryLimit: 1 << 20, spillDirectory: spill)
        for t in TPCH.tableNames { try db.loadCSV(path: "\(dir)/\(t).tbl", as: t, options: TPCH.options(t, threads: 2)) }
        for (i, sql) in TPCH.queries.enumerated() {
            let problem = AnswerCheck.mismatch(try db.sql(sql), expected: try Self.answer(i + 1))
            #expect(problem == nil, "Q\(i + 1) under 1 MiB: \(problem ?? "")")
        }
        #expect(try FileManager.default.contentsOfDirectory(atPath: spill).isEmpty, "spill files left behind")
    }

    @Test("The specification's own text (DATE literals, INTERVAL arithmetic) gives the same answers")
    func specificationText() throws {
        let db = try Self.load(threads: 2)
        let spec: [Int: String] = [
            1: """
               select l_returnflag, l_linestatus, sum(l_quantity) as sum_qty, sum(l_extendedprice) as sum_base_price,
                 sum(l_extendedprice*(1-l_discount)) as sum_disc_price, sum(l_extendedprice*(1-l_discount)*(1+l_tax)) as sum_charge,
                 avg(l_quantity) as avg_qty, avg(l_extendedprice) as avg_price, avg(l_discount) as avg_disc, count(*) as count_order
               from lineitem where l_shipdate <= date '1998-12-01' - interval '90' day (3)
               group by l_returnflag, l_linestatus order by l_returnflag, l_linestatus;
               """,
            5: """
               select n_name, sum(l_extendedprice * (1 - l_discount)) as revenue
               from customer, orders, lineitem, supplier, nation, region
               where c_custkey = o_custkey and l_orderkey = o_orderkey and l_suppkey = s_suppkey and c_nationkey = s_nationkey
                 and s_nationkey = n_nationkey and n_regionkey = r_regionkey and r_name = 'ASIA'
                 and o_orderdate >= date '1994-01-01' and o_orderdate < date '1994-01-01' + interval '1' year
               group by n_name order by revenue desc;
               """,
            14: """
                select 100.00 * sum(case when p_type like 'PROMO%' then l_extendedprice*(1-l_discount) else 0 end)
                  / sum(l_extendedprice * (1 - l_discount)) as promo_revenue
                from lineitem, part
                where l_partkey = p_partkey and l_shipdate >= date '1995-09-01' and l_shipdate < date '1995-09-01' + interval '1' month;
                """,
        ]
        for (q, sql) in spec.sorted(by: { $0.key < $1.key }) {
            let problem = AnswerCheck.mismatch(try db.sql(sql), expected: try Self.answer(q))
            #expect(problem == nil, "Q\(q) (specification text): \(problem ?? "")")
        }
    }
}
