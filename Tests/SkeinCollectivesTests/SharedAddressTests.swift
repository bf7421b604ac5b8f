import Testing
import SkeinCore
import SkeinTransports
import SkeinCollectives
import SkeinTestSupport

/// The collectives that read other ranks' inputs in place (`SharedAddressAlgorithm`), against the
/// naive references, for every p (primes too) and sizes that do not divide evenly.
@Suite("Shared-address collectives", .timeLimit(.minutes(5)))
struct SharedAddressTests {
    @Test("Reduce, reduce-scatter, allreduce, gather and all-to-all against the reference, every p and awkward sizes", arguments: SharedAddressAlgorithm.operations)
    func matrix(_ operation: CollectiveOperation) async {
        let algorithm = SharedAddressAlgorithm(operation)
        var seed: UInt64 = 0x5AD0_0000 &+ UInt64(operation.rawValue) << 16
        for p in CorrectnessTests.rankCounts {
            // Up to three tiles per block and more: counts that split unevenly and leave ranks empty.
            for count in [0, 1, max(p - 1, 0), p + 1, 3_001, 40_000 + p] {
                seed &+= 1
                let op = ReduceOp.allCases[Int(seed % 4)]
                let failure = await checkCollective(Float.self, algorithm: algorithm, kind: .inProcess, ranks: p, count: count, op: op, seed: seed)
                #expect(failure == nil, "\(failure ?? "")")
            }
        }
    }

    @Test("The into: and in-place forms, whose result is written straight into the caller's array, against the reference", arguments: SharedAddressAlgorithm.operations)
    func intoForms(_ operation: CollectiveOperation) async throws {
        let algorithm = SharedAddressAlgorithm(operation)
        var seed: UInt64 = 0x5AD0_4000 &+ UInt64(operation.rawValue) << 16
        for p in [1, 2, 3, 5] {
            for count in [0, 1, p + 1, 3_001, 40_000 + p] {
                seed &+= 1
                let op = ReduceOp.allCases[Int(seed % 4)]
                let (inputs, root) = randomCase(Float.self, ranks: p, count: count, op: op, seed: seed)
                let pristine = inputs.map { $0.map { $0 } }  // storage of its own, to compare with
                let results = try await runGroupOrThrow(.inProcess, size: p) { comm -> [Float]? in
                    // The wrong length, and shared with a copy that must not change.
                    var output = [Float](repeating: -1, count: 5)
                    let copy = output
                    switch operation {
                    case .reduce: try await comm.reduce(inputs[comm.rank], into: &output, op: op, root: root, algorithm: algorithm)
                    case .reduceScatter: try await comm.reduceScatter(inputs[comm.rank], into: &output, op: op, algorithm: algorithm)
                    case .gather: try await comm.gather(inputs[comm.rank], into: &output, root: root, algorithm: algorithm)
                    case .allToAll: try await comm.allToAll(inputs[comm.rank], into: &output, algorithm: algorithm)
                    default:
                        // In place, over an array that shares its storage with `inputs`, which must not change.
                        output = inputs[comm.rank]
                        try await comm.allreduce(&output, op: op, algorithm: algorithm)
                        guard bitIdentical(inputs[comm.rank], pristine[comm.rank]) else {
                            throw SkeinError(.internalError, rank: comm.rank, "the in-place allreduce wrote into a copy of its input held elsewhere")
                        }
                    }
                    guard copy == [Float](repeating: -1, count: 5) else { throw SkeinError(.internalError, rank: comm.rank, "a copy of the output changed") }
                    return [.reduce, .gather].contains(operation) && comm.rank != root ? nil : output
                }
                for rank in 0..<p {
                    let failure = checkRank(rank, result: results[rank], operation: operation, inputs: inputs, op: op, root: root)
                    #expect(failure == nil, "\(operation) into: p=\(p) n=\(count) \(op), seed \(seed): \(failure ?? "")")
                }
            }
        }
    }

    @Test("Every element type and reduction op", arguments: SharedAddressAlgorithm.operations)
    func elementTypes(_ operation: CollectiveOperation) async {
        let failures = await checkOtherElementTypesEveryOp(
            algorithm: SharedAddressAlgorithm(operation), count: 10_001, seed: 0x5AD0_7000 &+ UInt64(operation.rawValue) << 16)
        #expect(failures.isEmpty, "\(failures.joined(separator: "\n"))")
    }

    @Test("Calls in a row, mixed with message-passing ones, pinned and selected: right every time")
    func callsInARow() async throws {
        for p in [2, 3, 4] {
            let seed = UInt64(0x5AD0_9000 + p)
            var rng = SeededGenerator(seed: seed)
            let count = 50_000 + Int(rng.next() % 1000)
            let rounds = 8
            let inputs = (0..<rounds).map { _ in (0..<p).map { _ in (0..<count).map { _ in Int64.random(in: -999...999, using: &rng) } } }
            let results = try await runGroupOrThrow(.inProcess, size: p) { comm -> [[Int64]] in
                var out: [[Int64]] = []
                for round in 0..<rounds {
                    let values = inputs[round][comm.rank]
                    if (round + comm.rank) % 3 == 0 { await Task.yield() }
                    switch round % 4 {
                    case 0:
                        // Into the caller's array, which the algorithm writes directly: one that holds another's copy stays as it was.
                        var output = [Int64](repeating: 7, count: 3)
                        let kept = output
                        try await comm.reduce(values, into: &output, root: round % p, algorithm: SharedAddressAlgorithm(.reduce))
                        if kept != [7, 7, 7] { throw SkeinError(.internalError, rank: comm.rank, "the caller's other copy of the output changed") }
                        out.append(comm.rank == round % p ? output : [])
                    case 1: out.append(try await comm.reduce(values, root: round % p, algorithm: SharedAddressAlgorithm(.reduce)) ?? [])
                    case 2: out.append(try await comm.allreduce(values, algorithm: RingAllreduce()))
                    default:
                        var inPlace = values
                        try await comm.allreduce(&inPlace, algorithm: SharedAddressAlgorithm(.allreduce))
                        out.append(inPlace)
                    }
                    var selected = [Int64]()
                    try await comm.reduce(values, into: &selected, root: 0)  // the selector's pick (this size: shared-address or a ring)
                    out.append(comm.rank == 0 ? selected : [])
                }
                return out
            }
            for round in 0..<rounds {
                let sum = (0..<count).map { i in inputs[round].reduce(Int64(0)) { $0 + $1[i] } }
                for rank in 0..<p {
                    let first = round % 4 < 2 && rank != round % p ? [] : sum
                    #expect(results[rank][2 * round] == first, "p \(p) round \(round) rank \(rank), seed \(seed)")
                    #expect(results[rank][2 * round + 1] == (rank == 0 ? sum : []), "p \(p) round \(round) rank \(rank) (selected), seed \(seed)")
                }
            }
        }
    }

    @Test("The selector weighs shared-address allreduce, gather and all-to-all only where the result goes straight into the caller's array")
    func formsSelected() async throws {
        let (p, count, seed) = (4, (1 << 20) + 3, UInt64(0x5AD0_A000))
        let (inputs, _) = randomCase(Int32.self, ranks: p, count: count, op: .sum, seed: seed)
        // Per operation: the returning form's result and algorithm, then the in-place or into: form's.
        let runs = try await runGroupOrThrow(.inProcess, size: p) { comm -> [[([Int32], String)]] in
            func ran() -> String { comm.flightRecord(last: 1)[0].algorithm }
            let mine = inputs[comm.rank]
            let returned = try await comm.allreduce(mine)
            let returnedBy = ran()
            var inPlace = mine
            try await comm.allreduce(&inPlace)
            let allreduce = [(returned, returnedBy), (inPlace, ran())]
            let gathered = try await comm.gather(mine) ?? []
            let gatheredBy = ran()
            var into: [Int32] = []
            try await comm.gather(mine, into: &into)
            let gather = [(gathered, gatheredBy), (into, ran())]
            let exchanged = try await comm.allToAll(mine)
            let exchangedBy = ran()
            try await comm.allToAll(mine, into: &into)
            return [allreduce, gather, [(exchanged, exchangedBy), (into, ran())]]
        }
        let shared = SharedAddressAlgorithm(.allreduce).name
        for (rank, operations) in runs.enumerated() {
            for (index, operation) in [CollectiveOperation.allreduce, .gather, .allToAll].enumerated() {
                let forms = operations[index]
                let want = checkRank(rank, result: forms[0].0, operation: operation, inputs: inputs, op: .sum, root: 0)
                    ?? checkRank(rank, result: forms[1].0, operation: operation, inputs: inputs, op: .sum, root: 0)
                if operation != .gather || rank == 0 { #expect(want == nil, "\(operation) rank \(rank), seed \(seed): \(want ?? "")") }
                #expect(forms[0].1 != shared, "the returning \(operation) ran \(forms[0].1)")
                // In place or into:, with the default costs, the formulas favour it at this size.
                #expect(forms[1].1 == shared, "the \(operation) into the caller's array ran \(forms[1].1)")
            }
        }
    }

    @Test("Not over MPI processes or the simulator: a typed error, and the selector leaves it out")
    func unavailable() async throws {
        let outcomes = await runGroup(.simulated, size: 2) { comm -> [Float] in
            try await comm.reduceScatter([Float](repeating: 1, count: 4), algorithm: SharedAddressAlgorithm(.reduceScatter))
        }
        for outcome in outcomes {
            guard case .failure(let error) = outcome else { Issue.record("ran without an address space to share"); continue }
            #expect((error as? SkeinError)?.code == .unavailable, "\(error)")
        }
        // A communicator weighs it where its ranks share an address space, and only there.
        for (kind, weighs) in [(TransportKind.simulated, false), (.inProcess, true)] {
            let seen = try await runGroupOrThrow(kind, size: 2) { comm in
                [CollectiveOperation.reduce, .reduceScatter, .allreduce].map { comm.candidates(for: $0).contains { $0 is SharedAddressAlgorithm } }
            }
            for row in seen { #expect(row == [weighs, weighs, weighs], "\(kind): candidates for reduce, reduce-scatter, allreduce") }
        }
        let cost = CostParameters.inProcessDefault
        #expect(SharedAddressAlgorithm(.reduce).predictedSeconds(ranks: 4, bytes: SharedAddressAlgorithm.minimumBytes - 4, cost: cost) == .infinity)
        #expect(SharedAddressAlgorithm(.reduce).predictedSeconds(ranks: 4, bytes: 16 << 20, cost: cost) < .infinity)
    }
}
