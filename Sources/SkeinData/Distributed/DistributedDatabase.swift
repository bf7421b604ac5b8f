import Foundation
import SkeinCollectives
import SkeinCore

/// SQL over tables whose rows are spread across the ranks of a communicator (embedded ranks or
/// MPI processes). Every rank calls each method with the same arguments (SPMD). Every rank plans
/// the query alike (the optimizer sees the tables' global sizes and distinct counts), runs
/// filters and projections on its own rows, repartitions by key hash with an all-to-all shuffle
/// for joins and group-bys, and sends what needs one place (sort, limit, distinct, set
/// operations, global aggregates) to rank 0, which returns the result.
public final class DistributedDatabase: Sendable {
    public let communicator: Communicator
    let local: Database

    public init(communicator: Communicator, threads: Int = 1) {
        self.communicator = communicator
        local = Database(threads: threads)
    }

    public var rank: Int { communicator.rank }

    /// Registers this rank's part of table `name` (collective: every rank registers its part).
    public func register(_ part: Table, as name: String) async throws {
        local.register(part, as: name)
        // Global size and distinct counts: sum the rows, merge HyperLogLog registers by max.
        let rows = try await communicator.allreduce([Int64(part.rowCount)], op: .sum)[0]
        var registers: [Int32] = []
        for c in part.columns { registers += Statistics.registers(c).map { Int32($0) } }
        let merged = try await communicator.allreduce(registers, op: .max)
        let m = 1 << Statistics.registerBits
        let distinct = part.columns.indices.map { c in
            Statistics.estimate(registers: merged[(c * m)..<((c + 1) * m)].map { UInt8($0) }, rows: Int(rows))
        }
        local.statistics.setGlobal(table: name.lowercased(), rows: Int(rows), distinct: distinct)
    }

    /// Reads this rank's shard of a CSV file (a line-aligned share of its bytes) and registers it
    /// as its part of table `name` (collective: every rank calls it with the same arguments).
    public func loadCSV(path: String, as name: String, options: CSVOptions = CSVOptions()) async throws -> CSVReadResult {
        var o = options
        o.shard = (communicator.rank, communicator.size)
        let r = try CSVReader.read(path: path, options: o)
        try await register(r.table, as: name)
        return r
    }

    /// The optimized plan every rank runs (not collective).
    public func explain(_ text: String) throws -> String { try local.explain(text) }

    /// Runs one query (collective); rank 0 gets the result, the other ranks nil.
    public func sql(_ text: String) async throws -> Table? {
        let plan = try local.plan(text)
        let rows = try await run(plan)
        let all = try await gather(rows, types: plan.types)
        return rank == 0 ? Table(fields: plan.fields, chunk: all) : nil
    }

    var executor: Executor { Executor(threads: local.threads, statistics: local.statistics) }

    func runLocally(_ plan: LogicalPlan) throws -> Chunk { try executor.run(plan).chunk }

    static func rows(_ c: Chunk, _ fields: [Field]) -> LogicalPlan { .values(Table(fields: fields, chunk: c)) }

    static func empty(_ types: [DataType]) -> Chunk { Chunk(columns: types.map { Column.empty($0) }, count: 0) }

    /// Whether a plan needs no data from other ranks: scans, filters and projections only.
    static func isLocal(_ plan: LogicalPlan) -> Bool {
        switch plan {
        case .scan, .values: true
        case .filter(let input, _), .project(let input, _, _): isLocal(input)
        default: false
        }
    }

    /// This rank's rows of `plan`'s result.
    func run(_ plan: LogicalPlan) async throws -> Chunk {
        switch plan {
        case .scan, .values,
            .filter where Self.isLocal(plan),
            .project where Self.isLocal(plan):
            // Scans, filters and projections stream through one local pipeline.
            return try runLocally(plan)
        case .filter(let input, let p):
            return try runLocally(.filter(Self.rows(try await run(input), input.fields), p))
        case .project(let input, let e, let n):
            return try runLocally(.project(Self.rows(try await run(input), input.fields), e, names: n))
        case .join(let l, let r, let kind, let lk0, let rk0, let res) where !lk0.isEmpty && kind != .antiNullAware && kind != .cross:
            let b = try await run(r)
            let (lk, rk) = executor.alignKeys(lk0, l.types, rk0, r.types)
            // A shuffle moves about (a + b)(p − 1)/p rows; copying the smaller side to every rank
            // moves that side (p − 1) times: cheaper when it is under a/(p − 1). A local left side
            // is only estimated here, so that, when the right side is copied, the left streams
            // through the probe without being materialized.
            let p = Int64(communicator.size)
            let leftEstimate = Self.isLocal(l) ? Int64(Optimizer(statistics: local.statistics).estimate(l) / Double(p)) : nil
            let a = leftEstimate == nil ? try await run(l) : nil
            let sizes = try await communicator.allreduce([leftEstimate ?? Int64(a!.count), Int64(b.count)], op: .sum)
            if p > 1, sizes[1] * (p - 1) < sizes[0] {
                let all = try await allgather(b, types: r.types)
                return try runLocally(.join(a.map { Self.rows($0, l.fields) } ?? l, Self.rows(all, r.fields), kind, leftKeys: lk, rightKeys: rk, residual: res))
            }
            let left = try a ?? runLocally(l)
            func join(_ x: Chunk, _ y: Chunk) throws -> Chunk {
                try runLocally(.join(Self.rows(x, l.fields), Self.rows(y, r.fields), kind, leftKeys: lk, rightKeys: rk, residual: res))
            }
            // Only an inner join may copy its left side (a left, semi or anti join must see each
            // left row once).
            if p > 1, kind == .inner, sizes[0] * (p - 1) < sizes[1] {
                return try join(try await allgather(left, types: l.types), b)
            }
            return try join(try await shuffle(left, types: l.types, keys: lk), try await shuffle(b, types: r.types, keys: rk))
        case .join(let l, let r, let kind, let lk0, let rk0, let res):
            // No keys, or NOT IN (which must see every null on the right): every row in one place.
            let a0 = try await gather(try await run(l), types: l.types), b0 = try await gather(try await run(r), types: r.types)
            guard rank == 0 else { return Self.empty(plan.types) }
            return try runLocally(.join(Self.rows(a0, l.fields), Self.rows(b0, r.fields), kind, leftKeys: lk0, rightKeys: rk0, residual: res))
        case .aggregate(let input, let g, let aggs, let n) where !aggs.contains(where: { $0.function == .countDistinct }):
            // A local input streams into the partial aggregation instead of being materialized.
            let source = Self.isLocal(input) ? input : Self.rows(try await run(input), input.fields)
            return try await twoPhaseAggregate(source, groups: g, aggregates: aggs, names: n, types: plan.types)
        case .aggregate(let input, let g, let aggs, let n):
            let c = try await run(input)
            if g.isEmpty {
                let all = try await gather(c, types: input.types)
                guard rank == 0 else { return Self.empty(plan.types) }
                return try runLocally(.aggregate(Self.rows(all, input.fields), groups: g, aggregates: aggs, names: n))
            }
            // Each group's rows meet on one rank, which aggregates them.
            let mine = try await shuffle(c, types: input.types, keys: g)
            return try runLocally(.aggregate(Self.rows(mine, input.fields), groups: g, aggregates: aggs, names: n))
        case .sort(let input, _), .limit(let input, _, _), .distinct(let input):
            let all = try await gather(try await run(input), types: input.types)
            guard rank == 0 else { return Self.empty(plan.types) }
            return try runLocally(replacingInputs(plan, [Self.rows(all, input.fields)]))
        case .setOperation(let k, let allRows, let l, let r):
            let a = try await gather(try await run(l), types: l.types), b = try await gather(try await run(r), types: r.types)
            guard rank == 0 else { return Self.empty(plan.types) }
            return try runLocally(.setOperation(k, all: allRows, Self.rows(a, l.fields), Self.rows(b, r.fields)))
        }
    }

    func replacingInputs(_ plan: LogicalPlan, _ inputs: [LogicalPlan]) -> LogicalPlan {
        switch plan {
        case .sort(_, let k): .sort(inputs[0], k)
        case .limit(_, let c, let o): .limit(inputs[0], count: c, offset: o)
        case .distinct: .distinct(inputs[0])
        default: plan
        }
    }

    /// Aggregates this rank's rows first (partial states: counts, sums, minima, maxima; an average
    /// as a sum and a count), then moves only those partial rows, by group hash (to rank 0 for a
    /// global aggregate), where they are combined: each rank sends one row per group it holds,
    /// not its input rows.
    func twoPhaseAggregate(_ input: LogicalPlan, groups g: [Expr], aggregates aggs: [Aggregate], names n: [String],
                           types outputTypes: [DataType]) async throws -> Chunk {
        let k = g.count
        var partials: [Aggregate] = []
        var finals: [Aggregate] = []
        var outputs: [Expr] = (0..<k).map { Expr.column($0, name: n[$0]) }
        for a in aggs {
            let at = k + partials.count
            switch a.function {
            case .countStar, .count:
                partials.append(a)
                finals.append(Aggregate(.sum, .col(at)))
                outputs.append(.col(k + finals.count - 1))
            case .avg:
                partials.append(Aggregate(.sum, a.argument))
                partials.append(Aggregate(.count, a.argument))
                finals.append(Aggregate(.sum, .col(at)))
                finals.append(Aggregate(.sum, .col(at + 1)))
                let f = k + finals.count
                outputs.append(.binary(.div, .cast(.col(f - 2), .double), .cast(.col(f - 1), .double)))
            default:  // sum, min, max combine with themselves
                partials.append(a)
                finals.append(Aggregate(a.function, .col(at)))
                outputs.append(.col(k + finals.count - 1))
            }
        }
        let partialPlan = LogicalPlan.aggregate(input, groups: g, aggregates: partials,
                                                names: Array(n.prefix(k)) + partials.map(\.description))
        let local = try runLocally(partialPlan)
        let types = partialPlan.types
        let mine = k == 0 ? try await gather(local, types: types) : try await shuffle(local, types: types, keys: (0..<k).map { Expr.col($0) })
        if k == 0 && rank != 0 { return Self.empty(outputTypes) }
        let combined = LogicalPlan.aggregate(Self.rows(mine, partialPlan.fields), groups: (0..<k).map { Expr.col($0) }, aggregates: finals,
                                             names: Array(n.prefix(k)) + finals.map(\.description))
        return try runLocally(.project(combined, outputs, names: n))
    }

    /// Every rank's rows, on every rank (encoded once, moved by an allgather).
    func allgather(_ c: Chunk, types: [DataType]) async throws -> Chunk {
        let communicator = self.communicator
        return try await move([c], types: types) { try await communicator.allgather($0) }
    }

    /// Sends each row to the rank its key hash picks; returns the rows this rank receives.
    func shuffle(_ c: Chunk, types: [DataType], keys: [Expr]) async throws -> Chunk {
        let size = communicator.size
        let ev = Evaluator(chunk: c)
        // Any subset of the key places equal keys on one rank: hash the non-string columns only
        // when there are some (a group-by on a key and its descriptive strings, as in TPC-H Q10,
        // then hashes one integer per row). Both sides of a join have the same key types.
        let columns = try keys.map { try ev.evaluate($0) }
        let cheap = columns.filter { $0.type != .string }
        let hashes = KeyColumns(columns: cheap.isEmpty ? columns : cheap).hashes()
        var parts = [[Int32]](repeating: [], count: size)
        // Bits apart from those the spill partitioning uses, so a rank's rows still spread over partitions.
        for (r, h) in hashes.enumerated() { parts[Int((h >> 20) % UInt64(size))].append(Int32(r)) }
        return try await exchange(parts.map { c.gather($0) }, types: types)
    }

    /// Sends every row to rank 0 (an empty chunk elsewhere).
    func gather(_ c: Chunk, types: [DataType]) async throws -> Chunk {
        let communicator = self.communicator
        return try await move([c], types: types) { try await communicator.gather($0, root: 0) ?? [] }
    }

    /// An all-to-all of chunks: part j goes to rank j.
    func exchange(_ parts: [Chunk], types: [DataType]) async throws -> Chunk {
        let communicator = self.communicator
        return try await move(parts, types: types) { try await communicator.allToAll($0) }
    }

    /// Moves `parts` by `collective` and concatenates the blocks that arrive. Chunks travel in
    /// Skein's columnar format, packed into Int64 words and padded to the largest part on any rank
    /// (the collectives move equal blocks).
    private func move(_ parts: [Chunk], types: [DataType], by collective: ([Int64]) async throws -> [Int64]) async throws -> Chunk {
        let fields = types.enumerated().map { Field("c\($0.offset)", $0.element) }
        let encodings = parts.map { ColumnarFile.Encoding(Table(fields: fields, chunk: $0)) }
        let longest = try await communicator.allreduce([Int64(encodings.map(\.size).max() ?? 0)], op: .max)[0]
        let words = (Int(longest) + 7) / 8 + 1
        // Each part is encoded in place: its length word, then its bytes.
        var send = [Int64](repeating: 0, count: words * parts.count)
        send.withUnsafeMutableBytes { out in
            for (j, e) in encodings.enumerated() {
                out.storeBytes(of: Int64(e.size), toByteOffset: j * words * 8, as: Int64.self)
                e.write(into: out.baseAddress! + (j * words + 1) * 8)
            }
        }
        let received = try await collective(send)
        var chunks: [Chunk] = []
        try received.withUnsafeBytes { all in
            for i in 0..<(received.count / words) {
                let length = Int(received[i * words])
                let bytes = UnsafeRawBufferPointer(rebasing: all[((i * words + 1) * 8)..<((i * words + 1) * 8 + length)])
                chunks.append(try ColumnarFile.decode(bytes, name: "the rows from rank \(i)").chunk)
            }
        }
        return Chunk.concat(chunks, types: types)
    }
}
