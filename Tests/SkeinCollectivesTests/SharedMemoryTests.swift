import Testing
import SkeinCore
import SkeinTransports
import SkeinCollectives
import SkeinTestSupport

/// The shared-memory algorithms of in-process ranks, against the naive references, and the ways a
/// call on the board can go wrong: each ends in an error on every rank, never in a hang.
@Suite("Shared-memory collectives", .serialized, .timeLimit(.minutes(5)))
struct SharedMemoryTests {
    static let operations = CollectiveOperation.allCases.filter { $0 != .pointToPoint && $0 != .barrier }

    @Test("Every operation, every p and size up to the slot, against the reference", arguments: operations)
    func matrix(_ operation: CollectiveOperation) async {
        let algorithm = SharedMemoryAlgorithm(operation)
        var seed: UInt64 = 0x5A4E_0000 &+ UInt64(operation.rawValue) << 16
        for p in CorrectnessTests.rankCounts {
            // Up to 16 Ki floats: the most a rank may publish (an all-to-all or allreduce of 64 KiB).
            for count in [0, 1, max(p - 1, 0), p + 1, 3_001, SharedMemoryLimits.slotBytes / 4] {
                seed &+= 1
                let op = ReduceOp.allCases[Int(seed % 4)]
                let failure = await checkCollective(Float.self, algorithm: algorithm, kind: .inProcess, ranks: p, count: count, op: op, seed: seed)
                #expect(failure == nil, "\(failure ?? "")")
            }
        }
    }

    @Test("Every element type and reduction op", arguments: operations)
    func elementTypes(_ operation: CollectiveOperation) async {
        let failures = await checkOtherElementTypesEveryOp(
            algorithm: SharedMemoryAlgorithm(operation), count: 1_001, seed: 0x5A4E_7000 &+ UInt64(operation.rawValue) << 16)
        #expect(failures.isEmpty, "\(failures.joined(separator: "\n"))")
    }

    /// Runs `rounds` rounds on `p` in-process ranks, each round with fresh random inputs (one array
    /// per rank) given to `body`, and checks every rank's result of every round against `want`.
    /// Ranks yield now and then, at different rounds, so the fastest runs calls ahead of the slowest.
    func checkRounds(
        ranks p: Int, rounds: Int, seed: UInt64, _ body: @escaping @Sendable (Communicator, [[Int64]]) async throws -> [Int64],
        want: ([[Int64]]) -> [Int64]
    ) async throws {
        var rng = SeededGenerator(seed: seed)
        let inputs = (0..<rounds).map { _ in (0..<p).map { _ in (0..<7).map { _ in Int64.random(in: -99...99, using: &rng) } } }
        let results = try await runGroupOrThrow(.inProcess, size: p) { comm -> [[Int64]] in
            var out: [[Int64]] = []
            for round in 0..<rounds {
                if (round + comm.rank) % 7 == 0 { await Task.yield() }
                out.append(try await body(comm, inputs[round]))
            }
            return out
        }
        for round in 0..<rounds {
            let expected = want(inputs[round])
            for rank in 0..<p { #expect(results[rank][round] == expected, "round \(round) rank \(rank), seed \(seed)") }
        }
    }

    @Test("Many calls in a row reuse the slots of each rank correctly (ranks drift apart and catch up)")
    func slotsAlternate() async throws {
        try await checkRounds(ranks: 5, rounds: 400, seed: 0x5107) { comm, inputs in
            try await comm.allreduce(inputs[comm.rank], algorithm: SharedMemoryAlgorithm(.allreduce))
        } want: { Reference.reduce($0, .sum) }
    }

    /// The calls a rank may make before any other rank has made one (MPI's eager pattern), with
    /// parts of `count` Int64: one per slot, or per big slot for parts that need one, since no slot
    /// yet holds a part anyone reads.
    static let callsAhead = [(calls: SharedSlotMemory.slotsPerRank, count: 5), (calls: SharedSlotMemory.bigSlotsPerRank, count: 1000)]

    @Test(
        "A broadcast's root and a reduce's other ranks publish and go on, up to the slots they have, and the results stay right",
        arguments: callsAhead.indices)
    func eagerRootedCalls(_ which: Int) async throws {
        let p = 3, (calls, count) = Self.callsAhead[which], seed: UInt64 = 0xEA6E
        var rng = SeededGenerator(seed: seed)
        let inputs = (0..<calls).map { _ in (0..<p).map { _ in (0..<count).map { _ in Int64.random(in: -99...99, using: &rng) } } }
        // The others wait at a gate that the root opens only after its broadcasts returned: if the
        // root's calls waited for them, the calls would end at the deadline instead.
        let gate = Gate(opensAfter: 1)
        let broadcasts = try await runGroupOrThrow(.inProcess, size: p, timeout: .seconds(20)) { comm -> [[Int64]] in
            if comm.rank != 0 { await gate.wait() }
            var got: [[Int64]] = []
            for call in 0..<calls {
                got.append(try await comm.broadcast(inputs[call][comm.rank], root: 0, algorithm: SharedMemoryAlgorithm(.broadcast)))
            }
            if comm.rank == 0 { gate.arrive() }
            return got
        }
        for rank in 0..<p {
            for call in 0..<calls { #expect(broadcasts[rank][call] == inputs[call][0], "broadcast \(call) rank \(rank), seed \(seed)") }
        }
        // The reverse: the other ranks reduce and go on; the root, let in last, finds every part.
        let others = Gate(opensAfter: p - 1)
        let reductions = try await runGroupOrThrow(.inProcess, size: p, timeout: .seconds(20)) { comm -> [[Int64]?] in
            if comm.rank == 0 { await others.wait() }
            var got: [[Int64]?] = []
            for call in 0..<calls {
                got.append(try await comm.reduce(inputs[call][comm.rank], op: .sum, root: 0, algorithm: SharedMemoryAlgorithm(.reduce)))
            }
            if comm.rank != 0 { others.arrive() }
            return got
        }
        for call in 0..<calls { #expect(reductions[0][call] == Reference.reduce(inputs[call], .sum), "reduce \(call), seed \(seed)") }
        for rank in 1..<p { #expect(reductions[rank].allSatisfy { $0 == nil }) }
    }

    @Test("Parts just under, at and over what follows a slot's header, mixed, with roots and others running ahead, match the reference")
    func smallAndBigPartsMixed() async throws {
        // 26 Int64 fill what follows a header exactly; 27 go to a big slot. Big slots are fewer, so
        // a rank that runs ahead with big parts waits sooner: the mix exercises both rules of reuse.
        let p = 3, rounds = 300, seed: UInt64 = 0xB16
        let fits = SharedSlotMemory.inlineBytes / MemoryLayout<Int64>.stride
        var rng = SeededGenerator(seed: seed)
        let counts = (0..<rounds).map { _ in [1, fits - 1, fits, fits + 1, 4000].randomElement(using: &rng)! }
        let inputs = counts.map { count in (0..<p).map { _ in (0..<count).map { _ in Int64.random(in: -999...999, using: &rng) } } }
        let results = try await runGroupOrThrow(.inProcess, size: p, timeout: .seconds(60)) { comm -> [[Int64]?] in
            var got: [[Int64]?] = []
            for round in 0..<rounds {
                // Rank 2 falls behind now and then, so the others run ahead of it.
                if comm.rank == 2 && round % 50 == 0 { try await Task.sleep(for: .milliseconds(2)) }
                let mine = inputs[round][comm.rank]
                if round % 2 == 0 {
                    got.append(try await comm.broadcast(mine, root: round % p, algorithm: SharedMemoryAlgorithm(.broadcast)))
                } else {
                    got.append(try await comm.reduce(mine, op: .sum, root: round % p, algorithm: SharedMemoryAlgorithm(.reduce)))
                }
            }
            return got
        }
        for round in 0..<rounds {
            let root = round % p
            for rank in 0..<p {
                let want: [Int64]? =
                    round % 2 == 0 ? inputs[round][root] : (rank == root ? Reference.reduce(inputs[round], .sum) : nil)
                #expect(results[rank][round] == want, "round \(round) (\(counts[round]) values), rank \(rank), seed \(seed)")
            }
        }
    }

    @Test("Ranks that receive nothing of a scatter or broadcast go on without the root, and every result stays right")
    func emptySharesGoOn() async throws {
        // Scatters of 2 elements on 4 ranks: ranks 2 and 3 get none. They make all their calls
        // before the root makes any (a gate they open): had they waited for the root, their calls
        // would end at the deadline instead.
        let p = 4, calls = SharedSlotMemory.slotsPerRank, seed: UInt64 = 0xE3B7
        var rng = SeededGenerator(seed: seed)
        let parts = (0..<calls).map { _ in (0..<2).map { _ in Int64.random(in: -999...999, using: &rng) } }
        let idle = Gate(opensAfter: 2)
        let early = try await runGroupOrThrow(.inProcess, size: p, timeout: .seconds(20)) { comm -> [[Int64]] in
            if comm.rank < 2 { await idle.wait() }
            defer { if comm.rank >= 2 { idle.arrive() } }  // also when they fail, so that nobody waits on
            var got: [[Int64]] = []
            for call in 0..<calls {
                let mine = comm.rank == 0 ? parts[call] : []
                got.append(
                    try await comm.scatter(mine, totalCount: 2, root: 0, algorithm: SharedMemoryAlgorithm(.scatter), timeout: .seconds(2)))
            }
            return got
        }
        for call in 0..<calls {
            for rank in 0..<p {
                let want = rank < 2 ? [parts[call][rank]] : []
                #expect(early[rank][call] == want, "scatter \(call), rank \(rank), seed \(seed)")
            }
        }
        // Then counts of 0 to p + 1 and every root, mixed with broadcasts of 0 or 3 elements,
        // while ranks drift apart: the ranks that receive nothing run ahead of the rest.
        let rounds = 300
        let shapes = (0..<rounds).map { _ in (count: Int.random(in: 0...(p + 1), using: &rng), root: Int.random(in: 0..<p, using: &rng)) }
        let inputs = shapes.map { shape in (0..<shape.count).map { _ in Int64.random(in: -999...999, using: &rng) } }
        let mixed = try await runGroupOrThrow(.inProcess, size: p, timeout: .seconds(60)) { comm -> [[Int64]] in
            var got: [[Int64]] = []
            for (round, shape) in shapes.enumerated() {
                if (round + comm.rank) % 37 == 0 { try await Task.sleep(for: .milliseconds(1)) }
                let mine = comm.rank == shape.root ? inputs[round] : []
                if round % 3 == 2 {
                    let values = comm.rank == shape.root ? Array(inputs[round].prefix(3)) : [Int64](repeating: 0, count: min(shape.count, 3))
                    got.append(try await comm.broadcast(values, root: shape.root, algorithm: SharedMemoryAlgorithm(.broadcast)))
                } else {
                    got.append(
                        try await comm.scatter(mine, totalCount: shape.count, root: shape.root, algorithm: SharedMemoryAlgorithm(.scatter)))
                }
            }
            return got
        }
        for (round, shape) in shapes.enumerated() {
            for rank in 0..<p {
                let want =
                    round % 3 == 2
                    ? Array(inputs[round].prefix(3))
                    : Array(inputs[round][BlockPartition(count: shape.count, parts: p).range(rank)])
                #expect(mixed[rank][round] == want, "round \(round) (\(shape.count) values, root \(shape.root)), rank \(rank), seed \(seed)")
            }
        }
    }

    @Test("A root that runs ahead with big parts never overwrites one a slow rank has yet to read")
    func bigPartsWaitForSlowReaders() async throws {
        // 30 big broadcasts, more than the big slots: the root must wait for room, not reuse a big
        // slot whose part the others, which start late and read slowly, have not read yet.
        let p = 3, calls = 3 * SharedSlotMemory.bigSlotsPerRank + 6, seed: UInt64 = 0xB165
        var rng = SeededGenerator(seed: seed)
        let parts = (0..<calls).map { _ in (0..<1000).map { _ in Int64.random(in: -999...999, using: &rng) } }
        let results = try await runGroupOrThrow(.inProcess, size: p, timeout: .seconds(30)) { comm -> [[Int64]] in
            if comm.rank != 0 { try await Task.sleep(for: .milliseconds(20)) }
            var got: [[Int64]] = []
            for call in 0..<calls {
                let mine = comm.rank == 0 ? parts[call] : [Int64](repeating: 0, count: 1000)
                got.append(try await comm.broadcast(mine, root: 0, algorithm: SharedMemoryAlgorithm(.broadcast)))
                if comm.rank != 0 { try await Task.sleep(for: .milliseconds(1)) }
            }
            return got
        }
        for rank in 0..<p {
            for call in 0..<calls { #expect(results[rank][call] == parts[call], "call \(call), rank \(rank), seed \(seed)") }
        }
    }

    @Test("A root that runs ahead waits for room, and names a rank that left instead of waiting for it")
    func eagerRootNamesExitedRank() async {
        let outcomes = await runGroup(.inProcess, size: 3, timeout: .seconds(20)) { comm -> Int in
            if comm.rank == 2 { return 0 }  // leaves without a call
            var calls = 0
            while calls < 100 {
                _ = try await comm.broadcast([Float](repeating: 1, count: 3), root: 0, algorithm: SharedMemoryAlgorithm(.broadcast))
                calls += 1
            }
            return calls
        }
        let errs = errors(outcomes)
        // The root may publish as many calls as it has slots, then must wait for rank 2's part of the first.
        #expect(errs[0]?.peer == 2 && errs[0]?.code == .peerExited, "\(errs)")
        #expect(errs[1] != nil, "rank 1 must not go on alone: \(outcomes)")
        #expect(!errs.contains { $0?.code == .timeout }, "found by the deadline instead of the exit: \(errs)")
    }

    @Test("Message calls in between, where a root only sends, never let a rank overwrite a slot still being read")
    func boardCallsBetweenMessageCalls() async throws {
        // Rank 0 finishes each binomial broadcast as soon as it has sent, so it can reach the next
        // board call while the others still read the previous one: board calls are counted apart.
        let p = 3
        try await checkRounds(ranks: p, rounds: 300, seed: 0xB0A2D) { comm, inputs in
            let sum = try await comm.allreduce(inputs[comm.rank], algorithm: SharedMemoryAlgorithm(.allreduce))
            let copy = try await comm.broadcast(inputs[0], root: 0, algorithm: BinomialBroadcast())
            let again = try await comm.allreduce(copy, algorithm: SharedMemoryAlgorithm(.allreduce))
            return sum + again  // both results, one after the other
        } want: { inputs in
            Reference.reduce(inputs, .sum) + inputs[0].map { $0 * Int64(p) }
        }
    }

    @Test("Small calls pick shared memory on in-process ranks, never on other transports")
    func selection() async throws {
        let picked = try await runGroupOrThrow(.inProcess, size: 3) { comm -> [String] in
            _ = try await comm.allreduce([Float](repeating: 1, count: 2))
            try await comm.barrier()
            _ = try await comm.allgather([Int32(comm.rank)])
            return comm.flightRecord().map(\.algorithm)
        }
        for names in picked { #expect(names == ["shared-memory", "shared-memory", "shared-memory"], "\(names)") }
        let simulated = try await runGroupOrThrow(.simulated, size: 3) { comm -> [String] in
            _ = try await comm.allreduce([Float](repeating: 1, count: 2))
            return comm.flightRecord().map(\.algorithm)
        }
        for names in simulated { #expect(names != ["shared-memory"], "\(names)") }
        let cost = CostParameters.inProcessDefault
        #expect(SharedMemoryAlgorithm(.allreduce).predictedSeconds(ranks: 4, bytes: SharedMemoryLimits.slotBytes + 4, cost: cost) == .infinity)
        #expect(SharedMemoryAlgorithm(.allgather).predictedSeconds(ranks: 4, bytes: 4 * SharedMemoryLimits.slotBytes, cost: cost) < .infinity)
    }

    @Test("The model's formula, by hand")
    func formula() {
        var cost = CostParameters(alpha: 1e-6, beta: 1e-9, gamma: 0.5e-9)
        cost.sharedAlpha = 2e-7
        let n = 4_000.0
        // ⌈log2 5⌉ = 3 levels; copy in n, then read and reduce 4 peers' n.
        let allreduce = SharedMemoryAlgorithm(.allreduce).predictedSeconds(ranks: 5, bytes: 4_000, cost: cost)
        #expect(abs(allreduce - (3 * 2e-7 + n * 1e-9 + 4 * n * 1.5e-9)) < 1e-15)
        let allgather = SharedMemoryAlgorithm(.allgather).predictedSeconds(ranks: 5, bytes: 4_000, cost: cost)
        #expect(abs(allgather - (3 * 2e-7 + n / 5 * 1e-9 + n * 1e-9)) < 1e-15)
        #expect(SharedMemoryAlgorithm(.barrier).predictedSeconds(ranks: 2, bytes: 0, cost: cost) == 2e-7)
        // Rooted calls wait one way: one level, whatever p.
        let gather = SharedMemoryAlgorithm(.gather).predictedSeconds(ranks: 5, bytes: 4_000, cost: cost)
        #expect(abs(gather - (2e-7 + n / 5 * 1e-9 + n * 1e-9)) < 1e-15)
        let reduce = SharedMemoryAlgorithm(.reduce).predictedSeconds(ranks: 5, bytes: 4_000, cost: cost)
        #expect(abs(reduce - (2e-7 + n * 1e-9 + 4 * n * 1.5e-9)) < 1e-15)
    }

    @Test("Every operation may be selected for the board, rooted ones too (their root or other ranks do not wait)")
    func rootedWithSharedCores() {
        var cost = CostParameters.inProcessDefault
        cost.sharedAlpha = 1e-9  // the board far cheaper than any message
        for operation in CollectiveOperation.allCases where operation != .pointToPoint {
            for ranks in [3, 4, 8] {
                let pick = CostModel.select(operation, ranks: ranks, bytes: 64, cost: cost, sharedMemory: true)
                #expect(pick.algorithm.name == "shared-memory", "\(operation) p=\(ranks): \(pick.algorithm.name)")
            }
        }
    }

    @Test("More than a slot holds is refused on the rank that passed it, and the others stop")
    func tooLarge() async {
        let outcomes = await runGroup(.inProcess, size: 3, timeout: .seconds(20)) { comm in
            try await comm.allreduce([Float](repeating: 1, count: SharedMemoryLimits.slotBytes / 4 + 1), algorithm: SharedMemoryAlgorithm(.allreduce))
        }
        let errs = errors(outcomes)
        #expect(errs.allSatisfy { $0 != nil }, "\(outcomes)")
        #expect(errs.allSatisfy { $0?.code == .invalidArgument || $0?.code == .aborted }, "\(errs)")
        #expect(errs.contains { $0?.message.contains("at most \(SharedMemoryLimits.slotBytes)") == true }, "\(errs)")
    }

    @Test("A rank that runs the call by messages while the others use shared memory is a desync on every rank")
    func pathDesync() async {
        for messagesRank in [0, 2] {
            let outcomes = await runGroup(.inProcess, size: 3, timeout: .seconds(20)) { comm -> [Float] in
                let algorithm: any AllreduceAlgorithm = comm.rank == messagesRank ? RecursiveDoublingAllreduce() : SharedMemoryAlgorithm(.allreduce)
                return try await comm.allreduce([Float](repeating: 1, count: 4), algorithm: algorithm)
            }
            let errs = errors(outcomes)
            #expect(errs.allSatisfy { $0 != nil }, "\(outcomes)")
            #expect(!errs.contains { $0?.code == .timeout }, "found by the deadline instead: \(errs)")
            #expect(errs.contains { $0?.code == .desync && $0!.message.contains("shared memory") }, "\(errs)")
        }
    }

    @Test("Concurrent groups of oversubscribed ranks on shared memory lose no wake-up")
    func concurrentGroups() async throws {
        try await withThrowingTaskGroup(of: Void.self) { groups in
            for index in 0..<8 {
                groups.addTask {
                    let p = 2 + index % 4, calls = 5_000
                    let sums = try await runGroupOrThrow(.inProcess, size: p, timeout: .seconds(20)) { comm -> [Int32] in
                        var sum: [Int32] = []
                        for call in 0..<calls {
                            let values = [Int32](repeating: Int32(comm.rank + call % 7), count: 5)
                            if call % 3 == 0 { try await comm.barrier(algorithm: SharedMemoryAlgorithm(.barrier)) }
                            sum = try await comm.allreduce(values, algorithm: SharedMemoryAlgorithm(.allreduce))
                        }
                        return sum
                    }
                    let want = Int32((0..<p).reduce(0, +) + p * ((calls - 1) % 7))
                    for (rank, sum) in sums.enumerated() { #expect(sum == [Int32](repeating: want, count: 5), "group \(index) rank \(rank)") }
                }
            }
            try await groups.waitForAll()
        }
    }

    @Test("Different collectives or sizes at one call are named")
    func signatureMismatch() async {
        let outcomes = await runGroup(.inProcess, size: 4, timeout: .seconds(20)) { comm -> Int in
            if comm.rank == 1 { return try await comm.allgather([Float](repeating: 1, count: 4), algorithm: SharedMemoryAlgorithm(.allgather)).count }
            return try await comm.allreduce([Float](repeating: 1, count: 4), algorithm: SharedMemoryAlgorithm(.allreduce)).count
        }
        let errs = errors(outcomes)
        #expect(errs.allSatisfy { $0?.code == .desync }, "\(errs)")
        #expect(errs.contains { $0!.message.contains("rank 1 called allgather #1") }, "\(errs)")
        let sizes = await runGroup(.inProcess, size: 3, timeout: .seconds(20)) { comm in
            try await comm.allreduce([Int32](repeating: 1, count: comm.rank == 2 ? 11 : 10), algorithm: SharedMemoryAlgorithm(.allreduce))
        }
        let sizeErrors = errors(sizes)
        #expect(sizeErrors.allSatisfy { $0?.code == .mismatch }, "\(sizeErrors)")
        #expect(sizeErrors.contains { $0!.message.contains("11 elements") }, "\(sizeErrors)")
    }

    @Test("A rank that already moved on to a later call is named by the ranks waiting for it")
    func rankAhead() async {
        // Rank 1, the root, runs call #1 as a binomial broadcast: it only sends, so it finishes at
        // once and publishes call #2 while the others wait for its part of #1 on the board.
        let outcomes = await runGroup(.inProcess, size: 3, timeout: .seconds(20)) { comm in
            let first: any BroadcastAlgorithm = comm.rank == 1 ? BinomialBroadcast() : SharedMemoryAlgorithm(.broadcast)
            _ = try await comm.broadcast([Float](repeating: 1, count: 2), root: 1, algorithm: first)
            return try await comm.allreduce([Float](repeating: 1, count: 2), algorithm: SharedMemoryAlgorithm(.allreduce))
        }
        let errs = errors(outcomes)
        #expect(errs.allSatisfy { $0 != nil }, "\(outcomes)")
        #expect(!errs.contains { $0?.code == .timeout }, "\(errs)")
        #expect(errs.contains { $0?.code == .desync && $0?.peer == 1 }, "\(errs)")
    }

    @Test("A rank that exits or stops answering is named; nobody hangs")
    func exitAndTimeout() async {
        let exited = await runGroup(.inProcess, size: 4, timeout: .seconds(20)) { comm -> [Float] in
            if comm.rank == 3 { return [] }
            return try await comm.allreduce([Float](repeating: 1, count: 2), algorithm: SharedMemoryAlgorithm(.allreduce))
        }
        for rank in 0..<3 {
            // The first to notice says the peer exited; it aborts the others, naming the same peer.
            let error = errors(exited)[rank]
            #expect((error?.code == .peerExited || error?.code == .aborted) && error?.peer == 3, "rank \(rank): \(String(describing: error))")
        }
        let gate = Gate(opensAfter: 2), started = Gate(opensAfter: 2)
        let silent = await runGroup(.inProcess, size: 3, timeout: .seconds(1)) { comm -> [Float] in
            if comm.rank == 1 {
                await gate.wait()  // until both others gave up
                return []
            }
            defer { gate.arrive() }
            // Both enter together, so neither's deadline passes before the other has published.
            started.arrive()
            await started.wait()
            return try await comm.allreduce([Float](repeating: 1, count: 2), algorithm: SharedMemoryAlgorithm(.allreduce))
        }
        for rank in [0, 2] {
            let error = errors(silent)[rank]
            #expect((error?.code == .timeout || error?.code == .aborted) && error?.peer == 1, "rank \(rank): \(String(describing: error))")
        }
    }
}
