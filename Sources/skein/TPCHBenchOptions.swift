import ArgumentParser
import Foundation

/// What the TPC-H benchmarks (`bench tpch`, `bench operators`) share: the data, the thread
/// counts, the peers, and how their figures come back.
struct TPCHBenchOptions: ParsableArguments {
    @Option(help: "Scale factor (generated once into .build/tpch/sfSF).")
    var sf = "1"
    @Option(help: "Thread counts to measure, comma-separated.")
    var threads = "1,2"
    @Flag(help: "Skip the peers (DuckDB, Polars).")
    var noPeers = false
    @Flag(help: "One JSON object per row instead of a table.")
    var json = false

    var threadCounts: [Int] { threads.split(separator: ",").compactMap { Int($0) } }

    /// The directory of .tbl files at this scale factor, generated on first use.
    func dataDirectory() throws -> String {
        try shell("scripts/tpch-data.sh \(sf)").trimmingCharacters(in: .whitespacesAndNewlines)
    }

    /// Runs the peers' script (installing them first) with `arguments`; one object per JSON line it prints.
    func peers(_ arguments: String, input: String? = nil) throws -> [[String: Any]] {
        try shell("scripts/tpch-setup.sh --peers")
        let out = try shell(".venv-tpch/bin/python Benchmarks/tpch/duckdb_tpch.py \(arguments)", input: input)
        return out.split(separator: "\n").compactMap { try? JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any] }
    }

    /// Prints each row as one JSON object with sorted keys.
    func printJSON<Row: Encodable>(_ rows: [Row]) throws {
        let encoder = JSONEncoder()
        encoder.outputFormatting = .sortedKeys
        for r in rows { print(String(decoding: try encoder.encode(r), as: UTF8.self)) }
    }
}
