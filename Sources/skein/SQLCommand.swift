import ArgumentParser
import Foundation
import SkeinCollectives
import SkeinData
import SkeinTransports

/// `skein sql`: queries over CSV, .tbl and Skein columnar files, or an interactive shell.
struct SQLCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "sql",
        abstract: "Run SQL over CSV/.tbl/.skein files (each file is a table named after it), or open a shell.",
        discussion: """
            skein sql data/orders.csv -c "SELECT count(*) FROM orders"
            skein sql --tpch .build/tpch/sf1 --tpch-query 9 --explain
            skein sql data/orders.csv            (no query: an interactive shell; .help lists its commands)
            """)

    @Argument(help: "Files to load as tables: .csv (header, inferred types), .tbl ('|', no header), .skein.")
    var files: [String] = []
    @Option(name: .customLong("tpch"), help: "A directory of TPC-H .tbl files to load with their schema.")
    var tpchDirectory: String?
    @Option(name: .shortAndLong, help: "A query (several may be separated by ';').")
    var command: String?
    @Option(name: .shortAndLong, help: "A file of queries.")
    var file: String?
    @Option(name: .customLong("tpch-query"), help: "Run TPC-H query N (1-22), as DuckDB prints it.")
    var tpchQuery: Int?
    @Flag(help: "Print the optimized plan instead of running the query.")
    var explain = false
    @Option(help: "Worker threads (default: one per core).")
    var threads = ProcessInfo.processInfo.activeProcessorCount
    @Option(help: "Field delimiter for .csv files.")
    var delimiter = ","
    @Option(help: "Write the last result to this file (.csv or .skein).")
    var output: String?
    @Flag(help: "Skip malformed CSV rows (and count them) instead of stopping at the first.")
    var skipMalformed = false
    @Option(help: "Working memory a query may hold (e.g. 256MB); aggregations, joins and sorts past it spill to disk.")
    var memoryLimit: ByteSize?
    @Option(help: "Run distributed over this many in-process ranks, each holding every n-th row of each table (with -c, -f or --tpch-query).")
    var ranks: Int?
    @Option(help: "inprocess, mpi, or auto (mpi when started by mpirun or srun: each process reads its share of each file, rank 0 prints).")
    var transport = TransportChoice.auto

    func validate() throws {
        guard delimiter.count == 1, let c = delimiter.first, c.isASCII else {
            throw ValidationError("--delimiter must be one ASCII character, not '\(delimiter)'")
        }
    }

    func run() async throws {
        Database.retainFreedMemory()
        if let session = try MPISession.start(transport) {
            try await runOverMPI(session)
            return
        }
        let db = Database(threads: threads, memoryLimit: memoryLimit?.bytes)
        do {
            try load(db)
            guard let text = try queryText() else { return shell(db) }
            if let ranks, ranks > 1 {
                try await distributed(db, text, ranks: ranks)
                return
            }
            for statement in Self.statements(text) {
                try runOne(db, statement, timing: false)
            }
        } catch let e as DataError {
            FileHandle.standardError.write(Data("Error: \(e.message)\n".utf8))
            throw ExitCode.failure
        }
    }

    /// The statements to run (-c, -f or --tpch-query), or nil for the shell.
    func queryText() throws -> String? {
        var text = command
        if let file { text = try String(contentsOfFile: file, encoding: .utf8) }
        if let n = tpchQuery {
            guard (1...22).contains(n) else { throw ValidationError("TPC-H has queries 1 to 22, not \(n)") }
            text = TPCH.queries[n - 1]
        }
        return text
    }

    /// The tables to load: (path, table name).
    var tablePaths: [(String, String)] {
        var paths = files.map { ($0, URL(fileURLWithPath: $0).deletingPathExtension().lastPathComponent.lowercased()) }
        if let dir = tpchDirectory {
            paths += TPCH.tableNames.map { ("\(dir)/\($0).tbl", $0) }
        }
        return paths
    }

    /// How to read a CSV or .tbl file named `name`.
    func csvOptions(_ path: String, _ name: String) -> CSVOptions {
        var o: CSVOptions
        if path.hasSuffix(".tbl") {
            o = TPCH.schema(name) != nil ? TPCH.options(name, threads: threads) : CSVOptions(delimiter: "|", header: false)
        } else {
            o = CSVOptions(delimiter: Character(delimiter), header: true)
        }
        o.skipMalformed = skipMalformed
        o.threads = threads
        return o
    }

    func load(_ db: Database) throws {
        for (path, name) in tablePaths {
            let start = Date()
            let size = (try? FileManager.default.attributesOfItem(atPath: path)[.size] as? Int) ?? 0
            if path.hasSuffix(".skein") {
                db.register(try ColumnarFile.read(path: path), as: name)
            } else {
                let o = csvOptions(path, name)
                var progress: (@Sendable (Int, Int) -> Void)? = nil
                if size > 50_000_000 {
                    let label = name
                    progress = { @Sendable done, total in
                        let pct = 100 * Double(done) / Double(max(1, total))
                        FileHandle.standardError.write(Data(String(format: "\r  loading %@ %3.0f%%", label, pct).utf8))
                    }
                }
                let r = try db.loadCSV(path: path, as: name, options: o, progress: progress)
                if progress != nil { FileHandle.standardError.write(Data("\r".utf8)) }
                if r.skippedRows > 0 {
                    FileHandle.standardError.write(Data("skipped \(r.skippedRows) malformed rows of \(path); first: \(r.skippedErrors.first?.message ?? "")\n".utf8))
                }
            }
            let t = db.table(name)!
            let dt = Date().timeIntervalSince(start)
            FileHandle.standardError.write(Data(String(format: "loaded %@: %d rows, %d columns in %.2f s (%.0f MB/s)\n",
                                                       name, t.rowCount, t.fields.count, dt, Double(size) / dt / 1e6).utf8))
        }
    }

    func runOne(_ db: Database, _ sql: String, timing: Bool) throws {
        if explain {
            out(try db.explain(sql))
            return
        }
        let start = Date()
        let result = try db.sql(sql)
        let dt = Date().timeIntervalSince(start)
        out(result.formatted(maxRows: 60))
        if timing { out(String(format: "Run time: %.3f s, peak working memory %@", dt, formatBytes(db.lastQueryPeakBytes))) }
        try writeOutput(result)
    }

    /// The non-empty statements of `text`, split at ';'.
    static func statements(_ text: String) -> [String] {
        text.split(separator: ";").map(String.init).filter { !$0.trimmingCharacters(in: .whitespacesAndNewlines).isEmpty }
    }

    /// Writes `result` to `--output`, as a Skein file or CSV by its extension.
    func writeOutput(_ result: Table) throws {
        guard let output else { return }
        if output.hasSuffix(".skein") { try ColumnarFile.write(result, to: output) } else { try CSVWriter.write(result, to: output) }
    }

    /// Splits every table over `ranks` in-process ranks and runs the statements there (SPMD).
    func distributed(_ db: Database, _ text: String, ranks: Int) async throws {
        let statements = Self.statements(text)
        let tables = db.tableNames.map { ($0, db.table($0)!) }
        let outcomes = await InProcessGroup.run(size: ranks) { transport -> [(Table, Double)] in
            let ddb = DistributedDatabase(communicator: Communicator(transport: transport))
            for (name, t) in tables {
                let rows = Array(stride(from: Int32(transport.rank), to: Int32(t.rowCount), by: ranks))
                try await ddb.register(Table(fields: t.fields, chunk: t.chunk.gather(rows)), as: name)
            }
            var results: [(Table, Double)] = []
            for s in statements {
                let start = Date()
                if let r = try await ddb.sql(s) { results.append((r, Date().timeIntervalSince(start))) }
            }
            return results
        }
        for (table, seconds) in try outcomes[0].get() {
            out(table.formatted(maxRows: 60))
            out(String(format: "Run time: %.3f s on %d ranks", seconds, ranks))
        }
    }

    /// One rank per MPI process: each reads its share of every file (a line-aligned byte range),
    /// every rank runs each statement, and rank 0 prints the results.
    func runOverMPI(_ session: MPISession) async throws {
        let comm = Communicator(transport: session.transport)
        let lead = comm.rank == 0
        defer { session.finish() }
        do {
            guard let text = try queryText() else {
                throw ValidationError("under MPI, skein sql runs -c, -f or --tpch-query; the interactive shell runs without MPI")
            }
            if lead { FileHandle.standardError.write(Data("skein sql on \(session.banner)\n".utf8)) }
            let ddb = DistributedDatabase(communicator: comm, threads: threads)
            for (path, name) in tablePaths {
                let start = Date()
                var rows: Int
                if path.hasSuffix(".skein") {
                    let t = try ColumnarFile.read(path: path)
                    let part = Table(fields: t.fields, chunk: t.chunk.gather(Array(stride(from: Int32(comm.rank), to: Int32(t.rowCount), by: comm.size))))
                    try await ddb.register(part, as: name)
                    rows = part.rowCount
                } else {
                    let r = try await ddb.loadCSV(path: path, as: name, options: csvOptions(path, name))
                    rows = r.table.rowCount
                    if r.skippedRows > 0 {
                        FileHandle.standardError.write(Data("rank \(comm.rank): skipped \(r.skippedRows) malformed rows of \(path); first: \(r.skippedErrors.first?.message ?? "")\n".utf8))
                    }
                }
                let total = try await comm.allreduce([Int64(rows)], op: .sum)[0]
                if lead {
                    FileHandle.standardError.write(Data(String(format: "loaded %@: %lld rows over %d processes (%d here) in %.2f s\n",
                                                               name, total, comm.size, rows, Date().timeIntervalSince(start)).utf8))
                }
            }
            for statement in Self.statements(text) {
                if explain {
                    if lead { out(try ddb.explain(statement)) }
                    continue
                }
                let start = Date()
                let result = try await ddb.sql(statement)
                let seconds = Date().timeIntervalSince(start)
                guard lead, let result else { continue }
                out(result.formatted(maxRows: 60))
                out(String(format: "Run time: %.3f s on %d MPI processes", seconds, comm.size))
                try writeOutput(result)
            }
        } catch let e as DataError {
            FileHandle.standardError.write(Data("Error (rank \(comm.rank)): \(e.message)\n".utf8))
            throw ExitCode.failure
        }
    }

    /// Writes a line straight to standard output, so results and prompts keep their order.
    func out(_ s: String) { FileHandle.standardOutput.write(Data((s + "\n").utf8)) }

    /// A line-oriented shell: statements end with ';', dot-commands inspect; history goes to ~/.skein_history.
    func shell(_ db: Database) {
        let home = ProcessInfo.processInfo.environment["HOME"] ?? FileManager.default.homeDirectoryForCurrentUser.path
        let editor = LineEditor(historyPath: home + "/.skein_history")
        out("Skein SQL shell: statements end with ';'. .tables, .schema NAME, .explain SQL, .quit; ↑/↓ recall earlier lines")
        var buffer = ""
        while true {
            guard let line = editor.readLine(prompt: buffer.isEmpty ? "skein> " : "   ..> ") else { break }
            if buffer.isEmpty, line.trimmingCharacters(in: .whitespaces).hasPrefix(".") { editor.remember(line) }
            let trimmed = line.trimmingCharacters(in: .whitespaces)
            if buffer.isEmpty, trimmed.hasPrefix(".") {
                let parts = trimmed.split(separator: " ", maxSplits: 1).map(String.init)
                switch parts[0] {
                case ".quit", ".exit": return
                case ".tables": out(db.tableNames.joined(separator: "  "))
                case ".schema":
                    for n in parts.count > 1 ? [parts[1]] : db.tableNames {
                        guard let t = db.table(n) else { out("no table \(n)"); continue }
                        out("\(n)(" + t.fields.map { "\($0.name) \($0.type)" }.joined(separator: ", ") + ")  \(t.rowCount) rows")
                    }
                case ".explain" where parts.count > 1:
                    do { out(try db.explain(parts[1])) } catch { out("Error: \(error)") }
                default: out("commands: .tables  .schema [NAME]  .explain SQL  .quit")
                }
                continue
            }
            buffer += line + "\n"
            guard trimmed.hasSuffix(";") else { continue }
            editor.remember(buffer)
            do { try runOne(db, buffer, timing: true) } catch { out("Error: \(error)") }
            buffer = ""
        }
    }
}
