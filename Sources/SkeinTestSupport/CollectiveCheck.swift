import SkeinCore
import SkeinCollectives

/// One randomized collective case: runs `algorithm` on `ranks` ranks with `count` elements and
/// compares every rank's result with the naive reference. Returns a description of the first
/// disagreement (with the seed to replay it), or nil.
public func checkCollective<T: ReferenceElement>(
    _: T.Type, algorithm: any CollectiveAlgorithm, kind: TransportKind, ranks p: Int, count: Int, op: ReduceOp, seed: UInt64
) async -> String? {
    let operation = algorithm.operation
    let (inputs, root) = randomCase(T.self, ranks: p, count: count, op: op, seed: seed)
    let context = "\(operation)/\(algorithm.name) \(T.self) \(op) p=\(p) n=\(count) root=\(root) on \(kind), seed \(seed)"

    let outcomes = await runGroup(kind, size: p) { comm -> [T]? in
        try await runCollective(operation, algorithm: algorithm, on: comm, input: inputs[comm.rank], count: count, op: op, root: root)
    }
    var results: [[T]?] = []
    for (rank, outcome) in outcomes.enumerated() {
        switch outcome {
        case .success(let value): results.append(value)
        case .failure(let error): return "\(context): rank \(rank) threw \(error)"
        }
    }

    // Collectives read the callers' arrays in place: none may have written into them (else the
    // reference below, made from those arrays, could agree with a corrupted result).
    let (pristine, _) = randomCase(T.self, ranks: p, count: count, op: op, seed: seed)
    for rank in 0..<p where !bitIdentical(inputs[rank], pristine[rank]) {
        return "\(context): rank \(rank)'s input array changed during the call"
    }
    for rank in 0..<p {
        if let difference = checkRank(rank, result: results[rank], operation: operation, inputs: inputs, op: op, root: root) {
            return "\(context): \(difference)"
        }
    }
    if operation == .allreduce, let first = results[0] {
        for rank in 1..<p where !bitIdentical(results[rank]!, first) {
            return "\(context): rank \(rank)'s result is not bit-identical to rank 0's"
        }
    }
    return nil
}

/// `checkCollective` for each element type besides Float (Double, Int32, Int64, Float16) on
/// in-process ranks: the descriptions of the cases that failed.
public func checkOtherElementTypes(algorithm: any CollectiveAlgorithm, ranks p: Int, count: Int, op: ReduceOp, seed: UInt64) async -> [String] {
    [
        await checkCollective(Double.self, algorithm: algorithm, kind: .inProcess, ranks: p, count: count, op: op, seed: seed),
        await checkCollective(Int32.self, algorithm: algorithm, kind: .inProcess, ranks: p, count: count, op: op, seed: seed),
        await checkCollective(Int64.self, algorithm: algorithm, kind: .inProcess, ranks: p, count: count, op: op, seed: seed),
        await checkCollective(Float16.self, algorithm: algorithm, kind: .inProcess, ranks: p, count: count, op: op, seed: seed),
    ].compactMap { $0 }
}

/// `checkOtherElementTypes` on 3 and 4 ranks for every reduction op, with seeds `seed + 1`, `seed + 2`, …
public func checkOtherElementTypesEveryOp(algorithm: any CollectiveAlgorithm, count: Int, seed: UInt64) async -> [String] {
    var failures: [String] = []
    var seed = seed
    for p in [3, 4] {
        for op in ReduceOp.allCases {
            seed &+= 1
            failures += await checkOtherElementTypes(algorithm: algorithm, ranks: p, count: count, op: op, seed: seed)
        }
    }
    return failures
}

/// Every rank's random input and the root for one case, the same on every process that asks.
public func randomCase<T: ReferenceElement>(_: T.Type, ranks p: Int, count: Int, op: ReduceOp, seed: UInt64) -> (inputs: [[T]], root: Int) {
    var rng = SeededGenerator(seed: seed)
    let inputs: [[T]] = (0..<p).map { _ in (0..<count).map { _ in T.random(using: &rng, for: op) } }
    return (inputs, p > 1 ? Int(seed % UInt64(p)) : 0)
}

/// Runs one call of `algorithm`'s operation with this rank's `input` (the root's buffer for scatter).
/// With `algorithm` nil the communicator chooses.
public func runCollective<T: ReferenceElement>(
    _ operation: CollectiveOperation, algorithm: (any CollectiveAlgorithm)?, on comm: Communicator, input mine: [T], count: Int,
    op: ReduceOp, root: Int
) async throws(SkeinError) -> [T]? {
    switch operation {
    case .broadcast: return try await comm.broadcast(mine, root: root, algorithm: algorithm as? any BroadcastAlgorithm)
    case .reduce: return try await comm.reduce(mine, op: op, root: root, algorithm: algorithm as? any ReduceAlgorithm)
    case .allreduce: return try await comm.allreduce(mine, op: op, algorithm: algorithm as? any AllreduceAlgorithm)
    case .allgather: return try await comm.allgather(mine, algorithm: algorithm as? any AllgatherAlgorithm)
    case .reduceScatter: return try await comm.reduceScatter(mine, op: op, algorithm: algorithm as? any ReduceScatterAlgorithm)
    case .scatter:
        return try await comm.scatter(comm.rank == root ? mine : [], totalCount: count, root: root, algorithm: algorithm as? any ScatterAlgorithm)
    case .gather: return try await comm.gather(mine, root: root, algorithm: algorithm as? any GatherAlgorithm)
    case .allToAll: return try await comm.allToAll(mine, algorithm: algorithm as? any AllToAllAlgorithm)
    case .barrier:
        try await comm.barrier(algorithm: algorithm as? any BarrierAlgorithm)
        return []
    case .pointToPoint: return nil
    }
}

/// Runs one collective on `comm` through the forms that write into the caller's arrays (`into:`, in
/// place), each output array starting as garbage of the wrong length; returns this rank's result
/// as `runCollective` does.
public func runCollectiveIntoCaller<T: ReferenceElement>(
    _ operation: CollectiveOperation, algorithm: (any CollectiveAlgorithm)?, on comm: Communicator, input mine: [T], count: Int,
    op: ReduceOp, root: Int
) async throws(SkeinError) -> [T]? {
    var generator = SeededGenerator(seed: UInt64(truncatingIfNeeded: count) &+ 17)
    let garbage = T.random(using: &generator, for: op)
    var output = [T](repeating: garbage, count: count / 2 + 3)
    switch operation {
    case .broadcast:
        var values = comm.rank == root ? mine : [T](repeating: garbage, count: mine.count)
        try await comm.broadcast(&values, root: root, algorithm: algorithm as? any BroadcastAlgorithm)
        return values
    case .reduce:
        try await comm.reduce(mine, into: &output, op: op, root: root, algorithm: algorithm as? any ReduceAlgorithm)
        return comm.rank == root ? output : nil
    case .allreduce:
        var values = mine
        try await comm.allreduce(&values, op: op, algorithm: algorithm as? any AllreduceAlgorithm)
        return values
    case .allgather: try await comm.allgather(mine, into: &output, algorithm: algorithm as? any AllgatherAlgorithm)
    case .reduceScatter: try await comm.reduceScatter(mine, into: &output, op: op, algorithm: algorithm as? any ReduceScatterAlgorithm)
    case .scatter:
        try await comm.scatter(
            comm.rank == root ? mine : [], totalCount: count, into: &output, root: root, algorithm: algorithm as? any ScatterAlgorithm)
    case .gather:
        try await comm.gather(mine, into: &output, root: root, algorithm: algorithm as? any GatherAlgorithm)
        return comm.rank == root ? output : nil
    case .allToAll: try await comm.allToAll(mine, into: &output, algorithm: algorithm as? any AllToAllAlgorithm)
    case .barrier:
        try await comm.barrier(algorithm: algorithm as? any BarrierAlgorithm)
        return []
    case .pointToPoint: return nil
    }
    return output
}

/// Compares rank `rank`'s result of `operation` with the naive reference over every rank's `inputs`;
/// returns the first disagreement, or nil.
public func checkRank<T: ReferenceElement>(
    _ rank: Int, result: [T]?, operation: CollectiveOperation, inputs: [[T]], op: ReduceOp, root: Int
) -> String? {
    let p = inputs.count
    let tolerance = T.tolerance(ranks: p)
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
    switch (result, want) {
    case (nil, nil): return nil
    case (let got?, let want?):
        return Reference.firstDifference(got, want, tolerance: tol).map { "rank \(rank) \($0)" }
    default:
        return "rank \(rank) returned \(result.map { "\($0.count) elements" } ?? "nil"), expected \(want.map { "\($0.count) elements" } ?? "nil")"
    }
}

/// True when the two arrays hold the same bytes.
public func bitIdentical<T: BitwiseCopyable>(_ a: [T], _ b: [T]) -> Bool {
    a.count == b.count && a.withUnsafeBytes { x in b.withUnsafeBytes { y in x.elementsEqual(y) } }
}
