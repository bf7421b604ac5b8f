import Testing
import Foundation
import SkeinCore
import SkeinTransports
import SkeinCollectives
import SkeinTestSupport

/// Every rank's error from a group run (a success counts as a failure of the test).
func errors<R>(_ outcomes: [Result<R, any Error>]) -> [SkeinError?] {
    outcomes.map { outcome in
        if case .failure(let error) = outcome { return error as? SkeinError }
        return nil
    }
}

@Suite("Bad input, dead peers and desync end in errors, never hangs", .timeLimit(.minutes(5)))
struct FailureTests {
    @Test("A root out of range is reported on the rank that passed it; the group then stops", arguments: TransportKind.allCases)
    func rootOutOfRange(_ kind: TransportKind) async {
        let outcomes = await runGroup(kind, size: 3, timeout: .seconds(20)) { comm -> SkeinError? in
            do throws(SkeinError) {
                _ = try await comm.broadcast([Float](repeating: 1, count: 8), root: comm.rank == 1 ? 9 : 0)
            } catch {
                return error
            }
            // Ranks the bad rank never talked to may finish that call; the next one must fail.
            do throws(SkeinError) {
                _ = try await comm.allreduce([Float](repeating: 1, count: 8), algorithm: RingAllreduce())
                return nil
            } catch {
                return error
            }
        }
        let errs: [SkeinError?] = outcomes.map { (try? $0.get()) ?? nil }
        #expect(errs[1]?.code == .invalidArgument)
        #expect(errs[1]?.message.contains("root 9") == true, "\(String(describing: errs[1]))")
        #expect(errs.allSatisfy { $0 != nil }, "every rank must end in an error: \(outcomes)")
    }

    @Test("Mismatched counts are named on every rank", arguments: TransportKind.allCases)
    func mismatchedCounts(_ kind: TransportKind) async {
        let outcomes = await runGroup(kind, size: 4, timeout: .seconds(20)) { comm in
            try await comm.allreduce([Int32](repeating: 1, count: comm.rank == 2 ? 101 : 100), algorithm: RingAllreduce())
        }
        let errs = errors(outcomes)
        #expect(errs.allSatisfy { $0 != nil }, "\(outcomes)")
        #expect(errs.contains { $0?.code == .mismatch && $0!.message.contains("101 elements") }, "\(errs)")
    }

    @Test("Mismatched element types are named", arguments: TransportKind.allCases)
    func mismatchedTypes(_ kind: TransportKind) async {
        let outcomes = await runGroup(kind, size: 3, timeout: .seconds(20)) { comm -> Int in
            if comm.rank == 0 { return try await comm.allreduce([Double](repeating: 1, count: 10)).count }
            return try await comm.allreduce([Float](repeating: 1, count: 10)).count
        }
        let errs = errors(outcomes)
        #expect(errs.allSatisfy { $0 != nil }, "\(outcomes)")
        #expect(errs.contains { $0?.code == .mismatch && $0!.message.contains("element type") }, "\(errs)")
    }

    @Test("Different collectives at one sequence number are a desync on every rank", arguments: TransportKind.allCases)
    func desync(_ kind: TransportKind) async {
        let outcomes = await runGroup(kind, size: 4, timeout: .seconds(20)) { comm -> Int in
            _ = try await comm.allreduce([Float](repeating: 1, count: 16))
            if comm.rank == 2 { return try await comm.allgather([Float](repeating: 1, count: 4)).count }
            return try await comm.allreduce([Float](repeating: 1, count: 16)).count
        }
        let errs = errors(outcomes)
        #expect(errs.allSatisfy { $0 != nil }, "\(outcomes)")
        // Whichever rank notices first reports it ("rank 2 called allgather #2 while rank 3 called
        // allreduce #2", or the same from rank 2's side) and the others are aborted with that text.
        #expect(errs.contains { $0?.code == .desync && $0!.message.contains("allgather #2") && $0!.message.contains("allreduce #2") }, "\(errs)")
    }

    @Test("A buffer size that cannot exist is rejected before any message")
    func countThatDoesNotFit() async {
        let outcomes = await runGroup(.inProcess, size: 2) { comm in
            try await comm.scatter([Float](), totalCount: Int.max / 2, root: 0)
        }
        for error in errors(outcomes) { #expect(error?.code == .invalidArgument, "\(String(describing: error))") }
    }

    @Test("A rank that stops answering is named; the survivors shrink and go on")
    func deadRankThenShrink() async throws {
        let p = 4, silent = 3
        let survivorsDone = Gate(opensAfter: p - 1)
        let outcomes = await InProcessGroup.run(size: p) { transport -> [Float] in
            // Long enough that a live but starved peer (parallel suites on 2 cores) never times out.
            let comm = Communicator(transport: transport, timeout: .seconds(1))
            let first = [Float](repeating: Float(comm.rank + 1), count: 1000)
            if comm.rank == silent {
                // Silent until the others have given up on it and gone on without it.
                await survivorsDone.wait()
                do throws(SkeinError) {
                    _ = try await comm.allreduce(first)
                    Issue.record("the silent rank's late call should fail")
                } catch { #expect(error.code == .aborted || error.code == .timeout) }
                return []
            }
            do throws(SkeinError) {
                _ = try await comm.allreduce(first)
                Issue.record("rank \(comm.rank): allreduce with a silent peer returned")
                return []
            } catch {
                #expect(error.peer == silent, "rank \(comm.rank) should name rank \(silent): \(error)")
                #expect(error.code == .timeout || error.code == .aborted, "\(error)")
                let survivors = try comm.shrink(excluding: [error.peer!])
                #expect(survivors.size == p - 1)
                let sum = try await survivors.allreduce([Float](repeating: Float(comm.rank + 1), count: 1000))
                survivorsDone.arrive()
                return sum
            }
        }
        for rank in 0..<p where rank != silent {
            let sum = try outcomes[rank].get()
            #expect(sum == [Float](repeating: 1 + 2 + 3, count: 1000), "rank \(rank)")
        }
    }

    @Test("A simulated rank that fails mid-run is named without real waiting")
    func simulatedFailure() async throws {
        let model = NetworkModel(alpha: 1e-6, beta: 1e-10, gamma: 1e-10, failures: [2: 0])
        // The suite's time limit catches a virtual hour-long timeout that costs real time.
        let (outcomes, _) = await SimulatedGroup.run(size: 5, model: model) { transport -> [Int64] in
            let comm = Communicator(transport: transport, timeout: .seconds(3600))
            do throws(SkeinError) {
                return try await comm.allreduce([Int64](repeating: Int64(comm.rank), count: 64), algorithm: RingAllreduce())
            } catch {
                if error.code == .rankFailed { throw error }
                #expect(error.peer == 2, "rank \(comm.rank): \(error)")
                let survivors = try comm.shrink(excluding: [2])
                return try await survivors.allreduce([Int64](repeating: Int64(comm.rank), count: 64))
            }
        }
        #expect(errors(outcomes)[2]?.code == .rankFailed)
        for rank in [0, 1, 3, 4] { #expect(try outcomes[rank].get() == [Int64](repeating: 0 + 1 + 3 + 4, count: 64)) }
    }

    @Test("The flight recorder names the rank that came last")
    func flightRecorder() async throws {
        // Rank 2 starts its 100 ms delay only once the others are about to enter, so it comes last by
        // that much even when a busy machine is slow to run the others after the barrier.
        let othersEntering = Gate(opensAfter: 2)
        let records = try await runGroupOrThrow(.inProcess, size: 3) { comm -> [CollectiveRecord] in
            try await comm.barrier()
            if comm.rank == 2 {
                await othersEntering.wait()
                try await Task.sleep(for: .milliseconds(100))  // deliberately late
            } else {
                othersEntering.arrive()
            }
            _ = try await comm.allreduce([Float](repeating: 1, count: 256))
            _ = try await comm.allgather([Int32(comm.rank)])
            return comm.flightRecord(last: 10)
        }
        for (rank, history) in records.enumerated() {
            #expect(history.map(\.operation) == [.barrier, .allreduce, .allgather], "rank \(rank)")
            let slow = history[1]
            #expect(slow.skew.latestRank == 2, "rank \(rank): \(slow)")
            #expect(slow.skew.spread >= 80_000_000, "rank \(rank): \(slow)")
            #expect(slow.error == nil && slow.seconds >= 0)
        }
    }

    @Test("The flight recorder keeps the last calls in order past its capacity, and a failed call's error")
    func flightRecorderWraps() async throws {
        let calls = 300
        let records = try await runGroupOrThrow(.inProcess, size: 2) { comm -> [CollectiveRecord] in
            for index in 0..<calls { _ = try await comm.allreduce([Float(index)]) }
            do throws(SkeinError) {
                _ = try await comm.broadcast([Float](repeating: 1, count: 5), root: 7)
                Issue.record("a root out of range was accepted")
            } catch {}
            return comm.flightRecord(last: 1000)
        }
        for (rank, history) in records.enumerated() {
            #expect(history.count == 256, "rank \(rank)")
            #expect(history.map(\.sequence) == Array(UInt64(calls + 2 - 256)...UInt64(calls + 1)), "rank \(rank)")
            #expect(history.dropLast().allSatisfy { $0.operation == .allreduce && $0.bytes == 4 && $0.error == nil && $0.end >= $0.start })
            let failed = history.last!
            #expect(failed.operation == .broadcast && failed.bytes == 20, "rank \(rank): \(failed)")
            #expect(failed.error?.code == .invalidArgument && failed.error!.message.contains("root 7"), "rank \(rank): \(failed)")
        }
    }
}

@Suite("Cost model and calibration")
struct CostModelTests {
    @Test("Selection follows hand-computed predictions")
    func handComputed() {
        let cost = CostParameters(alpha: 1e-6, beta: 1e-9, gamma: 0.5e-9)
        let small = CostModel.select(.allreduce, ranks: 8, bytes: 8, cost: cost)
        #expect(small.algorithm.name == "recursive-doubling")
        #expect(abs(small.seconds - 3 * (1e-6 + 8e-9 + 4e-9)) < 1e-15)
        let large = CostModel.select(.allreduce, ranks: 8, bytes: 64 << 20, cost: cost)
        #expect(large.algorithm.name == "rabenseifner")
        let ring = RingAllreduce().predictedSeconds(ranks: 8, bytes: 64 << 20, cost: cost)
        #expect(abs(ring - (14e-6 + 7.0 / 8 * Double(64 << 20) * 2.5e-9)) < 1e-12)
        #expect(CostModel.select(.broadcast, ranks: 8, bytes: 8, cost: cost).algorithm.name == "mst")
        #expect(CostModel.select(.broadcast, ranks: 8, bytes: 64 << 20, cost: cost).algorithm.name == "scatter-allgather")
    }

    @Test("Calibration on the simulated network recovers its α, β and γ")
    func calibrationRecoversModel() async throws {
        let model = NetworkModel(alpha: 3e-6, beta: 2e-10, gamma: 4e-10)
        let (outcomes, _) = await SimulatedGroup.run(size: 3, model: model) { transport in
            try await Communicator(transport: transport).calibrate()
        }
        for outcome in outcomes {
            let cost = try outcome.get()
            #expect(abs(cost.alpha - 3e-6) < 3e-8, "\(cost)")
            #expect(abs(cost.beta - 2e-10) < 2e-12, "\(cost)")
            #expect(abs(cost.gamma - 4e-10) < 4e-12, "\(cost)")
            #expect(cost.memory == nil, "simulated ranks share no host memory: \(cost)")
        }
    }

    @Test("A call whose working set passes the memory regime's limit is priced at memory's β and γ; one below it, at the cache's")
    func memoryRegime() {
        var cost = CostParameters.byReference(alpha: 1e-6, beta: 1e-10, gamma: 2e-10)
        cost.memory = .init(beta: 4e-10, gamma: 8e-10, workingSetLimit: 1 << 20)
        // Ring allgather on 4 ranks touches the result on every rank and the inputs: 5n bytes.
        // By reference, a kept block costs nothing and each rank reads 3/4 of the result once.
        let ring = RingAllgather()
        let small = 128 << 10, large = 1 << 20
        #expect(CostParameters.workingSet(.allgather, ranks: 4, bytes: small) == 5 * small)
        #expect(abs(ring.modelSeconds(ranks: 4, bytes: small, cost: cost) - (3e-6 + 0.75 * Double(small) * 1e-10)) < 1e-15)
        #expect(abs(ring.modelSeconds(ranks: 4, bytes: large, cost: cost) - (3e-6 + 0.75 * Double(large) * 4e-10)) < 1e-15)
        let priced = cost.regime(.allgather, ranks: 4, bytes: large)
        #expect(priced.beta == 4e-10 && priced.gamma == 8e-10 && priced.keepBeta == 0 && priced.deliveryBeta == 4e-10)
        // Ring allreduce on 2 ranks, 1 MiB: 2·2·n touched; one step of a block of n/2 read (β) and reduced (γ), then delivered (β).
        let allreduce = RingAllreduce().modelSeconds(ranks: 2, bytes: large, cost: cost)
        #expect(abs(allreduce - (2e-6 + Double(large) / 2 * (4e-10 + 8e-10) + Double(large) / 2 * 4e-10)) < 1e-15)
        // The selector weighs the same figure; without a memory regime the cache's prices hold at every size.
        #expect(CostModel.expectedSeconds(ring, ranks: 4, bytes: large, cost: cost) == ring.modelSeconds(ranks: 4, bytes: large, cost: cost))
        // The shared-address fold keeps its tile in the first-level cache: the cache's γ past it too,
        // while its reads of the inputs and writes of the outputs pay memory's β.
        let sync = 2 * cost.sharedAlpha * 2
        let (share, others) = (Double(large) / 4, 3 * Double(large) / 4)
        let fold = SharedAddressAlgorithm(.allreduce).modelSeconds(ranks: 4, bytes: large, cost: cost)
        #expect(abs(fold - (sync + others * (4e-10 + 2e-10) + share * 4e-10 + others * 4e-10)) < 1e-15)
        #expect(priced.tileGamma == 2e-10 && cost.tileGamma == 2e-10 && priced.pastCache && !cost.pastCache)
        cost.memory = nil
        #expect(abs(ring.modelSeconds(ranks: 4, bytes: large, cost: cost) - (3e-6 + 0.75 * Double(large) * 1e-10)) < 1e-15)
    }

    @Test("Calibration on in-process ranks measures β and γ past the cache, no lower than in it, the board's round beside α, and every rank keeps the same figures")
    func calibrationPastTheCache() async throws {
        let outcomes = await InProcessGroup.run(size: 3) { transport in
            try await Communicator(transport: transport, timeout: .seconds(30)).calibrate()
        }
        let costs = try outcomes.map { try $0.get() }
        let memory = try #require(costs[0].memory, "\(costs[0])")
        #expect(memory.beta >= costs[0].beta && memory.beta.isFinite, "\(costs[0])")
        #expect(memory.gamma >= costs[0].gamma && memory.gamma.isFinite, "\(costs[0])")
        #expect(memory.workingSetLimit == MemoryCopy.cacheBytes / 2)
        // α and the board's round come from alternating batches, each batch of messages a call of
        // its own between board calls: they ran, with no desync between the ranks' calls.
        #expect(costs[0].alpha > 0 && costs[0].sharedAlpha > 0 && costs[0].sharedAlpha.isFinite, "\(costs[0])")
        #expect(costs.allSatisfy { $0 == costs[0] })
    }

    @Test("A pinned algorithm is used and recorded, also after a repeated call and a change of pin")
    func pinning() async throws {
        // Repeated calls reuse the last call's plan: a new pin must end that, and a passed algorithm
        // must not be taken for the pinned one.
        let names = try await runGroupOrThrow(.inProcess, size: 4) { comm -> [String] in
            let sum = [Float](repeating: 4, count: 4)
            comm.pin(SharedMemoryAlgorithm(.allreduce), for: .allreduce)
            for _ in 0..<2 {
                let result = try await comm.allreduce([Float](repeating: 1, count: 4))
                #expect(result == sum)
            }
            comm.pin(RingAllreduce(), for: .allreduce)
            for _ in 0..<2 {
                let result = try await comm.allreduce([Float](repeating: 1, count: 4))
                #expect(result == sum)
            }
            let passed = try await comm.allreduce([Float](repeating: 1, count: 4), algorithm: BinomialAllreduce())
            let pinned = try await comm.allreduce([Float](repeating: 1, count: 4))
            #expect(passed == sum && pinned == sum)
            return comm.flightRecord().map(\.algorithm)
        }
        for list in names { #expect(list == ["shared-memory", "shared-memory", "ring", "ring", "mst", "ring"]) }
    }

    @Test("A call made while the rank's previous call still runs is refused; the first call completes")
    func overlappingCalls() async {
        let refused = Gate(opensAfter: 1)
        let outcomes = await runGroup(.inProcess, size: 2, timeout: .seconds(20)) { comm -> [Float] in
            let input = [Float](repeating: Float(comm.rank + 1), count: 3)
            guard comm.rank == 0 else {
                // Rank 1 calls only once rank 0's second call was refused: rank 0's first waits for it meanwhile.
                await refused.wait()
                return try await comm.allreduce(input)
            }
            async let first = comm.allreduce(input)
            while comm.flightRecord(last: 1).isEmpty { try await Task.sleep(for: .milliseconds(1)) }
            do throws(SkeinError) {
                _ = try await comm.allreduce(input)
                Issue.record("a call made while the first still waits returned")
            } catch {
                #expect(error.code == .invalidArgument && error.message.contains("one at a time"), "\(error)")
            }
            refused.arrive()
            return try await first
        }
        for (rank, outcome) in outcomes.enumerated() {
            #expect((try? outcome.get()) == [3, 3, 3], "rank \(rank): \(outcome)")
        }
    }
}
