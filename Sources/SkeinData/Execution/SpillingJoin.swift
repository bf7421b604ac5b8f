import Foundation

extension Executor {
    /// Whether a join's build side would not fit in half the memory limit (rows × width, twice
    /// for the hash table), by the optimizer's estimate.
    func buildExceedsLimit(_ right: LogicalPlan) -> Bool {
        guard let limit = memory.limit else { return false }
        let width = right.types.reduce(0) { $0 + ($1 == .string ? 13 : 9) }
        return Optimizer(statistics: statistics).estimate(right) * Double(width) * 2 > Double(limit) / 2
    }

    /// A grace hash join: both inputs are split by key hash into partitions on disk, then each
    /// partition's build side gets its own hash table and its probe side is joined against it.
    /// Equal keys share a partition, so inner, left, semi and anti joins stay exact (a null key
    /// hashes to one fixed partition and matches nothing, as before).
    func graceJoin(_ kind: JoinKind, _ left: LogicalPlan, _ right: LogicalPlan, _ lk: [Expr], _ rk: [Expr], _ residual: Expr?) throws -> Chunk {
        let width = right.types.reduce(0) { $0 + ($1 == .string ? 13 : 9) }
        let expected = Optimizer(statistics: statistics).estimate(right) * Double(width) * 2
        let partitions = min(256, max(2, Int((expected / Double(memory.limit ?? 1 << 30) * 4).rounded(.up))))
        let rightSpill = try SpillFiles(directory: spillDirectory, partitions: partitions)
        let leftSpill = try SpillFiles(directory: spillDirectory, partitions: partitions)
        defer { rightSpill.removeAll(); leftSpill.removeAll() }
        try spillByHash(try stream(right), keys: rk, into: rightSpill)
        try spillByHash(try stream(left), keys: lk, into: leftSpill)
        var outputs: [Chunk] = []
        for p in 0..<partitions {
            let probes = try leftSpill.read(partition: p)
            guard !probes.isEmpty else { continue }
            let build = Chunk.concat(try rightSpill.read(partition: p), types: right.types)
            memory.reserve(build.workingBytes * 2)
            defer { memory.release(build.workingBytes * 2) }
            let join = try HashJoin(kind: kind, build: build, buildKeys: rk, probeKeys: lk, residual: residual, buildIsLeft: false, threads: threads)
            let joined: [Result<Chunk, any Error>] = Parallel.map(probes.count, threads: threads) { i, _ in Result { try join.probe(probes[i]) } }
            for r in joined { outputs.append(try r.get()) }
        }
        let types: [DataType] = kind == .semi || kind == .anti ? left.types : left.types + right.types
        return Chunk.concat(outputs, types: types)
    }

    /// Writes every row of a stream to the partition its key hash picks (the same hash on both
    /// sides of a join, and for every morsel of an aggregation).
    func spillByHash(_ s: Stream, keys: [Expr], values: [Expr]? = nil, into spill: SpillFiles) throws {
        let ms = s.morsels, ops = s.operators
        let partitions = spill.partitions
        let results: [Result<Void, any Error>] = Parallel.map(ms.count, threads: threads) { i, _ in
            Result {
                let chunk = try ops.reduce(ms[i]) { try $1($0) }
                let ev = Evaluator(chunk: chunk)
                let keyColumns = try keys.map { try ev.evaluate($0) }
                let rows = try values.map { v in Chunk(columns: keyColumns + (try v.map { try ev.evaluate($0) }), count: chunk.count) } ?? chunk
                let hashes = KeyColumns(columns: keyColumns).hashes()
                var parts = [[Int32]](repeating: [], count: partitions)
                for (r, h) in hashes.enumerated() { parts[Int((h >> 40) % UInt64(partitions))].append(Int32(r)) }
                for (p, sel) in parts.enumerated() where !sel.isEmpty {
                    try spill.write(rows.gather(sel), partition: p)
                }
            }
        }
        for r in results { try r.get() }
    }
}
