import Foundation
import Testing
import SkeinCollectives
import SkeinData
import SkeinTestSupport
import SkeinTransports

/// Rows `rank`, `rank + ranks`, … of a table: this rank's part.
func part(_ t: Table, rank: Int, of ranks: Int) -> Table {
    let rows = Array(stride(from: Int32(rank), to: Int32(t.rowCount), by: ranks))
    return Table(fields: t.fields, chunk: t.chunk.gather(rows))
}

@Suite("Distributed queries over in-process ranks: shuffles by key, results on rank 0", .serialized)
struct DistributedTests {
    @Test("Joins (shuffled or with a side copied to every rank), two-phase group-bys, sorts and set operations over 3 ranks equal one process",
          arguments: [UInt64(51), 52, 53])
    func randomQueries(seed: UInt64) async throws {
        var rng = SeededGenerator(seed: seed)
        let a = randomTable(&rng, rows: 400, keys: 30), b = randomTable(&rng, rows: 300, keys: 30)
        let single = database(["a": a, "b": b])
        let queries = [
            "SELECT a.k, count(*), sum(b.v) FROM a JOIN b ON a.k = b.k GROUP BY a.k",
            "SELECT s, avg(d), count(DISTINCT t) FROM a GROUP BY s",
            "SELECT k, v FROM a WHERE EXISTS (SELECT * FROM b WHERE b.k = a.k AND b.t > a.t)",
            "SELECT k FROM a WHERE k NOT IN (SELECT k FROM b WHERE d < 30)",
            "SELECT a.k, b.s FROM a LEFT JOIN b ON a.k = b.k AND b.d > 100",
            "SELECT k, s FROM a INTERSECT SELECT k, s FROM b",
            "SELECT count(*), min(v) FROM a",
            "SELECT k, d FROM a ORDER BY d DESC, k LIMIT 7",
            // Two-phase aggregation: partial states per rank, combined after the shuffle.
            "SELECT k, avg(v), sum(v), max(s), min(t), count(v), count(*) FROM a GROUP BY k",
            "SELECT avg(v), count(*), sum(d), max(t) FROM a WHERE k > 1000",
            // Small sides copied to every rank instead of shuffling both (right, then left).
            "SELECT a.k, count(*), sum(a.v) FROM a JOIN b ON a.k = b.k WHERE b.d < 10 GROUP BY a.k",
            "SELECT a.k, a.v, b.s FROM a LEFT JOIN b ON a.k = b.k AND b.d < 5",
            "SELECT a.s, b.v FROM a JOIN b ON a.k = b.k WHERE a.d < 8",
        ]
        let expected = try queries.map { try single.sql($0).rows }
        let outcomes = await InProcessGroup.run(size: 3) { transport -> [[[Value]]]? in
            let db = DistributedDatabase(communicator: Communicator(transport: transport))
            try await db.register(part(a, rank: transport.rank, of: 3), as: "a")
            try await db.register(part(b, rank: transport.rank, of: 3), as: "b")
            var results: [[[Value]]] = []
            for q in queries {
                let r = try await db.sql(q)
                if transport.rank == 0 { results.append(r!.rows) } else if r != nil { return nil }
            }
            return transport.rank == 0 ? results : []
        }
        let got = try outcomes[0].get()!
        for (i, q) in queries.enumerated() {
            #expect(sameRows(got[i], expected[i], ordered: q.contains("ORDER BY")), "seed \(seed): \(q)")
        }
        for r in outcomes.dropFirst() { #expect(try r.get() != nil, "other ranks return no rows") }
    }

    @Test("All 22 TPC-H queries over 3 ranks match DuckDB's answers")
    func tpch() async throws {
        let full = try TPCHTests.load(threads: 2)
        var tables: [String: Table] = [:]
        for name in TPCH.tableNames { tables[name] = full.table(name)! }
        let parts = tables
        let outcomes = await InProcessGroup.run(size: 3) { transport -> [Table] in
            let db = DistributedDatabase(communicator: Communicator(transport: transport))
            for name in TPCH.tableNames { try await db.register(part(parts[name]!, rank: transport.rank, of: 3), as: name) }
            var results: [Table] = []
            for q in TPCH.queries {
                if let r = try await db.sql(q) { results.append(r) }
            }
            return results
        }
        let results = try outcomes[0].get()
        #expect(results.count == 22)
        for (i, r) in results.enumerated() {
            let problem = AnswerCheck.mismatch(r, expected: try TPCHTests.answer(i + 1))
            #expect(problem == nil, "Q\(i + 1) over 3 ranks: \(problem ?? "")")
        }
    }
}
