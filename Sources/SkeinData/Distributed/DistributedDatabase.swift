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

    /// This rank's rows of `plan`'s result.
    func run(_ plan: LogicalPlan) async throws -> Chunk {
        switch plan {
        case .scan, .values:
            return try runLocally(plan)
        case .filter(let input, let p):
            return try runLocally(.filter(Self.rows(try await run(input), input.fields), p))
        case .project(let input, let e, let n):
            return try runLocally(.project(Self.rows(try await run(input), input.fields), e, names: n))
        case .join(let l, let r, let kind, let lk0, let rk0, let res):
            let a = try await run(l), b = try await run(r)
            if lk0.isEmpty || kind == .antiNullAware || kind == .cross {
                // Needs every row in one place (NOT IN must see every null on the right).
                let a0 = try await gather(a, types: l.types), b0 = try await gather(b, types: r.types)
                guard rank == 0 else { return Self.empty(plan.types) }
                return try runLocally(.join(Self.rows(a0, l.fields), Self.rows(b0, r.fields), kind, leftKeys: lk0, rightKeys: rk0, residual: res))
            }
            let (lk, rk) = executor.alignKeys(lk0, l.types, rk0, r.types)
            let a1 = try await shuffle(a, types: l.types, keys: lk), b1 = try await shuffle(b, types: r.types, keys: rk)
            return try runLocally(.join(Self.rows(a1, l.fields), Self.rows(b1, r.fields), kind, leftKeys: lk, rightKeys: rk, residual: res))
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

    /// Sends each row to the rank its key hash picks; returns the rows this rank receives.
    func shuffle(_ c: Chunk, types: [DataType], keys: [Expr]) async throws -> Chunk {
        let size = communicator.size
        let ev = Evaluator(chunk: c)
        let hashes = KeyColumns(columns: try keys.map { try ev.evaluate($0) }).hashes()
        var parts = [[Int32]](repeating: [], count: size)
        // Bits apart from those the spill partitioning uses, so a rank's rows still spread over partitions.
        for (r, h) in hashes.enumerated() { parts[Int((h >> 20) % UInt64(size))].append(Int32(r)) }
        return try await exchange(parts.map { c.gather($0) }, types: types)
    }

    /// Sends every row to rank 0.
    func gather(_ c: Chunk, types: [DataType]) async throws -> Chunk {
        var parts = (0..<communicator.size).map { _ in Self.empty(types) }
        parts[0] = c
        return try await exchange(parts, types: types)
    }

    /// An all-to-all of chunks: part j goes to rank j. Chunks travel in Skein's columnar format,
    /// packed into Int64 words and padded to the largest part (the collective moves equal blocks).
    func exchange(_ parts: [Chunk], types: [DataType]) async throws -> Chunk {
        let fields = types.enumerated().map { Field("c\($0.offset)", $0.element) }
        let payloads = parts.map { ColumnarFile.encode(Table(fields: fields, chunk: $0)) }
        let longest = try await communicator.allreduce([Int64(payloads.map(\.count).max() ?? 0)], op: .max)[0]
        let words = (Int(longest) + 7) / 8 + 1
        var send = [Int64](repeating: 0, count: words * parts.count)
        for (j, p) in payloads.enumerated() {
            send[j * words] = Int64(p.count)
            send.withUnsafeMutableBytes { out in
                p.withUnsafeBytes { src in
                    if src.count > 0 { (out.baseAddress! + (j * words + 1) * 8).copyMemory(from: src.baseAddress!, byteCount: src.count) }
                }
            }
        }
        let received = try await communicator.allToAll(send)
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
