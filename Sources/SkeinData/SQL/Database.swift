import Foundation
import Synchronization

/// Tables by name and the way to query them: SQL or DataFrames, planned, optimized and run
/// in parallel. The in-process equivalent of a DuckDB connection.
public final class Database: Sendable {
    private let tables = Mutex<[String: Table]>([:])
    public let statistics = Statistics()
    public let threads: Int
    /// Rows per morsel, the unit of parallel work (small values exercise merging in tests).
    public let morselRows: Int
    /// Working memory a query may hold (join tables, aggregation states, sort inputs; not the
    /// tables it reads). Over it, hash aggregations partition their input to `spillDirectory`.
    public let memoryLimit: Int?
    public let spillDirectory: String
    private let lastPeak = Mutex(0)

    public init(threads: Int = ProcessInfo.processInfo.activeProcessorCount, morselRows: Int = 1 << 16,
                memoryLimit: Int? = nil, spillDirectory: String = NSTemporaryDirectory()) {
        self.threads = max(1, threads)
        self.morselRows = morselRows
        self.memoryLimit = memoryLimit
        self.spillDirectory = spillDirectory
    }

    /// The most working memory the last query held at once.
    public var lastQueryPeakBytes: Int { lastPeak.withLock { $0 } }

    /// Makes a table queryable under `name` (replacing any table of that name).
    public func register(_ table: Table, as name: String) {
        tables.withLock { $0[name.lowercased()] = table }
    }

    public func table(_ name: String) -> Table? { tables.withLock { $0[name.lowercased()] } }

    public var tableNames: [String] { tables.withLock { $0.keys.sorted() } }

    /// Reads a CSV file into a table named `name`.
    @discardableResult
    public func loadCSV(path: String, as name: String, options: CSVOptions = CSVOptions(),
                        progress: (@Sendable (Int, Int) -> Void)? = nil) throws -> CSVReadResult {
        var o = options
        o.threads = min(o.threads, threads)
        let r = try CSVReader.read(path: path, options: o, progress: progress)
        register(r.table, as: name)
        return r
    }

    /// The plan of one SQL query, optimized unless asked not to.
    public func plan(_ sql: String, optimized: Bool = true) throws -> LogicalPlan {
        var parser = try Parser(sql)
        let statements = try parser.parseStatements()
        guard statements.count == 1 else { throw DataError(.syntax, "expected one statement, found \(statements.count)") }
        switch statements[0] {
        case .query(let q), .explain(let q): return try bind(q, sql, optimized: optimized)
        }
    }

    func bind(_ q: SQLQuery, _ sql: String, optimized: Bool = true) throws -> LogicalPlan {
        var binder = Binder(catalog: tables.withLock { $0 }, sql: sql)
        let (plan, _) = try binder.bindQuery(q, outer: nil)
        return optimized ? Optimizer(statistics: statistics).optimize(plan) : plan
    }

    /// Runs SQL (one statement or several separated by ';') and returns the last result.
    /// EXPLAIN returns the optimized plan as a one-column table.
    public func sql(_ sql: String) throws -> Table {
        var parser = try Parser(sql)
        let statements = try parser.parseStatements()
        guard !statements.isEmpty else { throw DataError(.syntax, "no statement in the query text") }
        var last: Table? = nil
        for s in statements {
            switch s {
            case .query(let q): last = try execute(try bind(q, sql))
            case .explain(let q):
                let text = try bind(q, sql).explain()
                last = Table(fields: [Field("plan", .string)], columns: [Column(strings: text.split(separator: "\n").map(String.init))])
            }
        }
        return last!
    }

    /// The optimized plan of a query as text (EXPLAIN).
    public func explain(_ sql: String) throws -> String { try plan(sql).explain() }

    /// Runs a logical plan.
    public func execute(_ plan: LogicalPlan, optimize: Bool = false) throws -> Table {
        let p = optimize ? Optimizer(statistics: statistics).optimize(plan) : plan
        let memory = MemoryTracker(limit: memoryLimit)
        defer { lastPeak.withLock { $0 = memory.peak } }
        return try Executor(threads: threads, morselRows: morselRows, memory: memory, spillDirectory: spillDirectory,
                            statistics: statistics).run(p)
    }
}

#if os(Linux)
@_silgen_name("mallopt")
private func mallopt(_ parameter: Int32, _ value: Int32) -> Int32
#endif

extension Database {
    /// Keeps freed memory in the process instead of returning it to the kernel at once. glibc
    /// serves blocks over 32 MiB with fresh mmap'd pages and trims the heap after each large
    /// free, so every query would pay to fault in and zero its column buffers again (40% of a
    /// TPC-H query's time here). Process-wide, so only a program's entry point should call it.
    public static func retainFreedMemory() {
        #if os(Linux)
        let trimThreshold: Int32 = -1, mmapThreshold: Int32 = -3  // M_TRIM_THRESHOLD, M_MMAP_THRESHOLD (malloc.h)
        _ = mallopt(mmapThreshold, 1 << 30)
        _ = mallopt(trimThreshold, 1 << 30)
        #endif
    }
}
