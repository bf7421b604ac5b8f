import SkeinCore
import SkeinCollectives

/// One randomized collective case: runs `algorithm` on `ranks` ranks with `count` elements and
/// compares every rank's result with the naive reference. Returns a description of the first
/// disagreement (with the seed to replay it), or nil.
public func checkCollective<T: ReferenceElement>(
    _: T.Type, algorithm: any CollectiveAlgorithm, kind: TransportKind, ranks p: Int, count: Int, op: ReduceOp, seed: UInt64
) async -> String? {
    var rng = SeededGenerator(seed: seed)
    let operation = algorithm.operation
    let root = p > 1 ? Int(seed % UInt64(p)) : 0
    let inputs: [[T]] = (0..<p).map { _ in (0..<count).map { _ in T.random(using: &rng, for: op) } }
    let context = "\(operation)/\(algorithm.name) \(T.self) \(op) p=\(p) n=\(count) root=\(root) on \(kind), seed \(seed)"

    let outcomes = await runGroup(kind, size: p) { comm -> [T]? in
        let mine = inputs[comm.rank]
        switch operation {
        case .broadcast: return try await comm.broadcast(mine, root: root, algorithm: algorithm as? any BroadcastAlgorithm)
        case .reduce: return try await comm.reduce(mine, op: op, root: root, algorithm: algorithm as? any ReduceAlgorithm)
        case .allreduce: return try await comm.allreduce(mine, op: op, algorithm: algorithm as? any AllreduceAlgorithm)
        case .allgather: return try await comm.allgather(mine, algorithm: algorithm as? any AllgatherAlgorithm)
        case .reduceScatter: return try await comm.reduceScatter(mine, op: op, algorithm: algorithm as? any ReduceScatterAlgorithm)
        case .scatter:
            return try await comm.scatter(
                comm.rank == root ? mine : [], totalCount: count, root: root, algorithm: algorithm as? any ScatterAlgorithm)
        case .gather: return try await comm.gather(mine, root: root, algorithm: algorithm as? any GatherAlgorithm)
        case .allToAll: return try await comm.allToAll(mine, algorithm: algorithm as? any AllToAllAlgorithm)
        case .barrier:
            try await comm.barrier(algorithm: algorithm as? any BarrierAlgorithm)
            return []
        case .pointToPoint: return nil
        }
    }
    var results: [[T]?] = []
    for (rank, outcome) in outcomes.enumerated() {
        switch outcome {
        case .success(let value): results.append(value)
        case .failure(let error): return "\(context): rank \(rank) threw \(error)"
        }
    }

    let tolerance = T.tolerance(ranks: p)
    for rank in 0..<p {
        let want: [T]?
        var tol = 0.0
        switch operation {
        case .broadcast: want = inputs[root]
        case .reduce: want = rank == root ? Reference.reduce(inputs, op) : nil; tol = tolerance
        case .allreduce: want = Reference.reduce(inputs, op); tol = tolerance
        case .allgather: want = inputs.flatMap { $0 }
        case .reduceScatter: want = Reference.block(Reference.reduce(inputs, op), index: rank, parts: p); tol = tolerance
        case .scatter: want = Reference.block(inputs[root], index: rank, parts: p)
        case .gather: want = rank == root ? inputs.flatMap { $0 } : nil
        case .allToAll: want = (0..<p).flatMap { Reference.block(inputs[$0], index: rank, parts: p) }
        case .barrier, .pointToPoint: want = []
        }
        switch (results[rank], want) {
        case (nil, nil): continue
        case (let got?, let want?):
            if let difference = Reference.firstDifference(got, want, tolerance: tol) {
                return "\(context): rank \(rank) \(difference)"
            }
        default: return "\(context): rank \(rank) returned \(results[rank].map { "\($0.count) elements" } ?? "nil"), expected \(want.map { "\($0.count) elements" } ?? "nil")"
        }
    }
    if operation == .allreduce, let first = results[0] {
        for rank in 1..<p where !bitIdentical(results[rank]!, first) {
            return "\(context): rank \(rank)'s result is not bit-identical to rank 0's"
        }
    }
    return nil
}

/// True when the two arrays hold the same bytes.
public func bitIdentical<T: BitwiseCopyable>(_ a: [T], _ b: [T]) -> Bool {
    a.count == b.count && a.withUnsafeBytes { x in b.withUnsafeBytes { y in x.elementsEqual(y) } }
}
