import Foundation
import Synchronization

/// Runs logical plans: pipelines of streaming operators (filter, project, the probe side of a join)
/// run morsel by morsel on all threads; pipeline breakers (join build, aggregate, sort, limit, set
/// operations) gather their input first. This is morsel-driven parallelism, as in DuckDB and HyPer.
public struct Executor: Sendable {
    public var threads: Int
    public var morselRows: Int
    /// Working memory held by this run's operators, against the limit (if any).
    public var memory: MemoryTracker
    /// Where operators that spill write their partitions.
    public var spillDirectory: String
    /// Distinct-value estimates, for deciding whether an aggregation fits the memory limit.
    public var statistics: Statistics

    public init(threads: Int = ProcessInfo.processInfo.activeProcessorCount, morselRows: Int = 1 << 16,
                memory: MemoryTracker = MemoryTracker(limit: nil), spillDirectory: String = NSTemporaryDirectory(),
                statistics: Statistics = Statistics()) {
        self.threads = max(1, threads)
        self.morselRows = max(1, morselRows)
        self.memory = memory
        self.spillDirectory = spillDirectory
        self.statistics = statistics
    }

    /// Runs a plan to completion and returns its rows as one table.
    public func run(_ plan: LogicalPlan) throws -> Table {
        let s = try stream(plan)
        let chunk = Chunk.concat(try collect(s), types: plan.types, threads: threads)
        return Table(fields: plan.fields, chunk: chunk)
    }

    typealias Operator = @Sendable (Chunk) throws -> Chunk

    /// Morsels waiting to be pushed through a chain of streaming operators.
    struct Stream {
        var morsels: [Chunk]
        var operators: [Operator]

        func then(_ op: @escaping Operator) -> Stream {
            var s = self
            s.operators.append(op)
            return s
        }
    }

    func morsels(_ chunk: Chunk) -> [Chunk] {
        if chunk.count <= morselRows { return [chunk] }
        return stride(from: 0, to: chunk.count, by: morselRows).map { chunk.slice($0..<min(chunk.count, $0 + morselRows)) }
    }

    func stream(_ plan: LogicalPlan) throws -> Stream {
        switch plan {
        case .scan(_, let table, let cols):
            return Stream(morsels: morsels(Chunk(columns: cols.map { table.columns[$0] }, count: table.rowCount)), operators: [])
        case .values(let t):
            return Stream(morsels: morsels(t.chunk), operators: [])
        case .filter(let input, let predicate):
            let filter = ConjunctionFilter(predicate)
            return try stream(input).then { chunk in
                guard let keep = try filter.select(chunk) else { return chunk }
                return chunk.gather(keep)
            }
        case .project(.filter(let input, let predicate), let exprs, _) where exprs.allSatisfy({ if case .column = $0 { return true }; return false }):
            // Filter then keep some columns: gather only the kept ones.
            let filter = ConjunctionFilter(predicate)
            let keep = exprs.map { e -> Int in if case .column(let i, _) = e { return i }; return 0 }
            return try stream(input).then { chunk in
                let kept = keep.map { chunk.columns[$0] }
                guard let sel = try filter.select(chunk) else { return Chunk(columns: kept, count: chunk.count) }
                return sel.withUnsafeBufferPointer { ix in Chunk(columns: kept.map { $0.gather(ix) }, count: ix.count) }
            }
        case .project(let input, let exprs, _):
            return try stream(input).then { chunk in
                let ev = Evaluator(chunk: chunk)
                return Chunk(columns: try exprs.map { try ev.evaluate($0) }, count: chunk.count)
            }
        case .join(let left, let right, let kind, let lk0, let rk0, let residual)
            where !lk0.isEmpty && kind != .antiNullAware && kind != .cross && buildExceedsLimit(right):
            let (lk, rk) = alignKeys(lk0, left.types, rk0, right.types)
            return Stream(morsels: morsels(try graceJoin(kind, left, right, lk, rk, residual)), operators: [])
        case .join(let left, let right, let kind, let lk0, let rk0, let residual) where kind == .semi || kind == .anti || kind == .left:
            let (lk, rk) = alignKeys(lk0, left.types, rk0, right.types)
            // Run the left side first: whichever input is smaller gets the hash table.
            let leftMorsels = try collect(try stream(left))
            let leftRows = leftMorsels.reduce(0) { $0 + $1.count }
            let rightMorsels = try collect(try stream(right))
            if rightMorsels.reduce(0, { $0 + $1.count }) > 2 * leftRows, !lk.isEmpty {
                let joined = try leftBuild(kind, Chunk.concat(leftMorsels, types: left.types), rightMorsels, right.types, lk, rk, residual)
                return Stream(morsels: morsels(joined), operators: [])
            }
            let build = Chunk.concat(rightMorsels, types: right.types)
            memory.reserve(build.workingBytes * 2 + leftMorsels.reduce(0) { $0 + $1.workingBytes })
            let join = try HashJoin(kind: kind, build: build, buildKeys: rk, probeKeys: lk, residual: residual, buildIsLeft: false, threads: threads)
            return Stream(morsels: leftMorsels, operators: []).then { try join.probe($0) }
        case .join(let left, let right, let kind, let lk0, let rk0, let residual):
            let (lk, rk) = alignKeys(lk0, left.types, rk0, right.types)
            let build = try materialize(right)
            // The build rows plus the table (about as large again) stay until the query ends.
            memory.reserve(build.workingBytes * 2)
            let join = try HashJoin(kind: kind, build: build, buildKeys: rk, probeKeys: lk, residual: residual, buildIsLeft: false, threads: threads)
            return try stream(left).then { try join.probe($0) }
        case .aggregate(let input, let groups, let aggs, _):
            let chunk: Chunk
            if let limit = memory.limit, !groups.isEmpty {
                // Partition to disk when the groups would not fit in a quarter of the limit.
                let keyTypes = groups.map { resultType($0, input.types) }
                let expected = Optimizer(statistics: statistics).estimate(plan) * Double(Executor.bytesPerGroup(keys: keyTypes, aggregates: aggs))
                let share = Double(limit) / 4
                if expected > share {
                    let partitions = min(256, max(2, Int((expected / share).rounded(.up)) * 2))
                    chunk = try partitionedAggregate(try stream(input), inputTypes: input.types, groups: groups, aggregates: aggs, partitions: partitions)
                } else {
                    chunk = try aggregate(try stream(input), inputTypes: input.types, groups: groups, aggregates: aggs)
                }
            } else {
                chunk = try aggregate(try stream(input), inputTypes: input.types, groups: groups, aggregates: aggs)
            }
            return Stream(morsels: morsels(chunk), operators: [])
        case .sort(let input, let keys) where sortExceedsLimit(input):
            return Stream(morsels: morsels(try externalSort(try stream(input), types: input.types, keys: keys)), operators: [])
        case .sort(let input, let keys):
            let rows = try materialize(input)
            memory.reserve(rows.workingBytes * 2)
            let chunk = try sortChunk(rows, keys)
            return Stream(morsels: [chunk], operators: [])
        case .limit(.sort(let input, let keys), let count?, let offset) where count + offset <= 10_000 && !sortExceedsLimit(input):
            let top = try topN(try stream(input), types: input.types, keys: keys, count: count + offset)
            return Stream(morsels: [top.slice(min(offset, top.count)..<top.count)], operators: [])
        case .limit(let input, let count, let offset):
            // Without a sort below, any rows will do: stop gathering once there are enough.
            let all = try materialize(input)
            let lo = min(offset, all.count)
            let hi = count.map { min(all.count, lo + $0) } ?? all.count
            return Stream(morsels: [all.slice(lo..<hi)], operators: [])
        case .distinct(let input):
            let types = input.types
            let chunk = try aggregate(try stream(input), inputTypes: types, groups: types.indices.map { Expr.col($0) }, aggregates: [])
            return Stream(morsels: morsels(chunk), operators: [])
        case .setOperation(let kind, let all, let l, let r):
            return Stream(morsels: morsels(try setOperation(kind, all: all, l, r)), operators: [])
        }
    }

    /// Join keys of different types (BIGINT = DECIMAL, DECIMAL(2) = DECIMAL(4)) cast to their
    /// common type, so equal values have equal representations in the hash table.
    func alignKeys(_ lk: [Expr], _ lt: [DataType], _ rk: [Expr], _ rt: [DataType]) -> ([Expr], [Expr]) {
        var l = lk, r = rk
        for i in lk.indices {
            let a = resultType(lk[i], lt), b = resultType(rk[i], rt)
            guard a != b else { continue }
            let t = unify(a, b)
            if a != t { l[i] = .cast(lk[i], t) }
            if b != t { r[i] = .cast(rk[i], t) }
        }
        return (l, r)
    }

    /// A semi, anti or left join with the hash table on the left input, probed by the right.
    func leftBuild(_ kind: JoinKind, _ left: Chunk, _ probes: [Chunk], _ rightTypes: [DataType], _ lk: [Expr], _ rk: [Expr],
                   _ residual: Expr?) throws -> Chunk {
        let join = try LeftBuildJoin(kind: kind, left: left, leftKeys: lk, rightKeys: rk, residual: residual, threads: threads)
        let marks = Shared((0..<threads).map { _ in MarkArray(left.count) })
        let results: [Result<Chunk?, any Error>] = Parallel.map(probes.count, threads: threads) { i, w in
            Result { try join.probe(probes[i], marks: &marks.value[w].marks) }
        }
        var outputs: [Chunk] = []
        for r in results { if let c = try r.get() { outputs.append(c) } }
        var merged = [Bool](repeating: false, count: left.count)
        for m in marks.value { for i in 0..<left.count where m.marks[i] { merged[i] = true } }
        outputs.append(join.finish(merged, rightShape: probes.first ?? Chunk(columns: rightTypes.map { Column.empty($0) }, count: 0)))
        let types = outputs.last!.columns.map(\.type)
        return Chunk.concat(outputs, types: types)
    }

    func materialize(_ plan: LogicalPlan) throws -> Chunk {
        Chunk.concat(try collect(try stream(plan)), types: plan.types, threads: threads)
    }

    /// Pushes every morsel through the stream's operators, in parallel, keeping morsel order.
    func collect(_ s: Stream) throws -> [Chunk] {
        if s.operators.isEmpty { return s.morsels }
        let ms = s.morsels, ops = s.operators
        let results: [Result<Chunk, any Error>] = Parallel.map(ms.count, threads: threads) { i, _ in
            Result { try ops.reduce(ms[i]) { try $1($0) } }
        }
        return try results.map { try $0.get() }
    }

    /// Hash aggregation: each thread keeps its own groups, merged at the end.
    func aggregate(_ s: Stream, inputTypes: [DataType], groups: [Expr], aggregates: [Aggregate], spill: Bool = true) throws -> Chunk {
        let keyTypes = groups.map { resultType($0, inputTypes) }
        let perGroup = Executor.bytesPerGroup(keys: keyTypes, aggregates: aggregates)
        let argTypes = aggregates.map { a in a.argument.map { resultType($0, inputTypes) } }
        let states = Shared((0..<threads).map { _ in AggregateState(keyTypes: keyTypes, aggregates: aggregates, argumentTypes: argTypes) })
        let used = Mutex<Set<Int>>([])
        let failure = Mutex<(any Error)?>(nil)
        let ms = s.morsels, ops = s.operators
        Parallel.forEach(ms.count, threads: threads) { i, w in
            do {
                let chunk = try ops.reduce(ms[i]) { try $1($0) }
                let ev = Evaluator(chunk: chunk)
                let keys = try groups.map { try ev.evaluate($0) }
                let args = try aggregates.map { a in try a.argument.map { try ev.evaluate($0) } }
                let before = states.value[w].groupCount
                states.value[w].update(keyColumns: keys, arguments: args, count: chunk.count)
                memory.reserve((states.value[w].groupCount - before) * perGroup + chunk.workingBytes)
                memory.release(chunk.workingBytes)
                used.withLock { _ = $0.insert(w) }
            } catch {
                failure.withLock { $0 = $0 ?? error }
            }
        }
        if let e = failure.withLock({ $0 }) { throw e }
        let order = used.withLock { $0.sorted() }
        guard let first = order.first else { return try states.value[0].finish() }
        let total = states.value.reduce(0) { $0 + $1.groupCount }
        defer { memory.release(total * perGroup) }
        if order.count > 1, total >= 1 << 15, !groups.isEmpty {
            return try partitionedMerge(order.map { states.value[$0] }, keyTypes: keyTypes, aggregates: aggregates, argumentTypes: argTypes)
        }
        let target = states.value[first]
        for w in order.dropFirst() { target.merge(states.value[w]) }
        return try target.finish()
    }

    /// Merges per-thread aggregation states in parallel: a group's hash picks its partition, each
    /// partition gathers its groups from every state into a fresh state, and the partitions'
    /// results are concatenated (DuckDB's radix-partitioned finalize).
    func partitionedMerge(_ states: [AggregateState], keyTypes: [DataType], aggregates: [Aggregate], argumentTypes: [DataType?]) throws -> Chunk {
        let parts = 64
        let shared = Shared(states)
        // Per state: its key columns, and its groups bucketed by partition (a counting sort on the
        // high hash bits; the tables index by the low ones).
        let prepared = Shared(Parallel.map(states.count, threads: threads) { i, _ in
            let state = shared.value[i]
            let buckets = state.groupHashes.withUnsafeBufferPointer { h in
                var counts = [Int](repeating: 0, count: parts + 1)
                for x in h { counts[Int(x >> 40) % parts + 1] += 1 }
                for p in 0..<parts { counts[p + 1] += counts[p] }
                var fill = counts
                var rows = [Int32](repeating: 0, count: h.count)
                rows.withUnsafeMutableBufferPointer { r in
                    for g in 0..<h.count {
                        let p = Int(h[g] >> 40) % parts
                        r[fill[p]] = Int32(g)
                        fill[p] += 1
                    }
                }
                return (rows: rows, starts: counts)
            }
            return (keys: state.keyColumns(), buckets: buckets)
        })
        let results: [Result<Chunk, any Error>] = Parallel.map(parts, threads: threads) { p, _ in
            Result {
                let target = AggregateState(keyTypes: keyTypes, aggregates: aggregates, argumentTypes: argumentTypes)
                for (i, state) in shared.value.enumerated() {
                    let (keys, buckets) = prepared.value[i]
                    target.merge(state, keys: keys, rows: buckets.rows[buckets.starts[p]..<buckets.starts[p + 1]])
                }
                return try target.finish()
            }
        }
        let types = try results.first!.get().columns.map(\.type)
        return Chunk.concat(try results.map { try $0.get() }, types: types)
    }

    func setOperation(_ kind: SetOpKind, all: Bool, _ l: LogicalPlan, _ r: LogicalPlan) throws -> Chunk {
        let types = l.types
        let left = try materialize(l)
        let right = try materialize(r)
        guard right.columns.count == left.columns.count else {
            throw DataError(.type, "\(kind.rawValue) needs inputs of the same width: \(left.columns.count) and \(right.columns.count) columns")
        }
        // Line the right side's types up with the left's.
        let rightCast = Chunk(columns: try types.indices.map { c in
            right.columns[c].type == types[c] ? right.columns[c] : try Evaluator(chunk: right).evaluate(.cast(.col(c), types[c]))
        }, count: right.count)
        if kind == .union && all { return Chunk.concat([left, rightCast], types: types) }
        // Count each distinct row on both sides: union keeps any, intersect both, except left only.
        let state = AggregateState(keyTypes: types, aggregates: [Aggregate(.count, .col(0)), Aggregate(.count, .col(0))],
                                   argumentTypes: [.int64, .int64])
        let one = Column(repeating: .int(1), type: .int64, count: max(left.count, right.count))
        let none = Column(repeating: .null, type: .int64, count: max(left.count, right.count))
        state.update(keyColumns: left.columns, arguments: [one.slice(0..<left.count), none.slice(0..<left.count)], count: left.count)
        state.update(keyColumns: rightCast.columns, arguments: [none.slice(0..<right.count), one.slice(0..<right.count)], count: right.count)
        let counted = try state.finish()
        let lc = counted.columns[types.count], rc = counted.columns[types.count + 1]
        var pick: [Int32] = []
        for g in 0..<counted.count {
            let a = Int(lc.value(at: g).integerRepresentation(as: .int64) ?? 0)
            let b = Int(rc.value(at: g).integerRepresentation(as: .int64) ?? 0)
            let copies: Int
            switch kind {
            case .union: copies = 1
            case .intersect: copies = all ? min(a, b) : (a > 0 && b > 0 ? 1 : 0)
            case .except: copies = all ? max(0, a - b) : (a > 0 && b == 0 ? 1 : 0)
            }
            for _ in 0..<copies { pick.append(Int32(g)) }
        }
        return Chunk(columns: Array(counted.gather(pick).columns.prefix(types.count)), count: pick.count)
    }
}

/// One worker's marks of matched left rows.
final class MarkArray: @unchecked Sendable {
    // Safe: each worker index writes only its own array; they are read after the loop.
    var marks: [Bool]
    init(_ n: Int) { marks = [Bool](repeating: false, count: n) }
}
