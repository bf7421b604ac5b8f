import Testing
import SkeinCore
import SkeinTransports
import SkeinCollectives
import SkeinTestSupport

/// Autotuning: `Communicator.tune` times the algorithms on the live ranks and the selector prefers
/// those measurements to the formulas.
@Suite("Tuning: measured profiles feed the selector", .timeLimit(.minutes(5)))
struct TuningTests {
    @Test("tune times every candidate, every rank keeps the same profiles, and calls run the fastest measured")
    func tuneFeedsSelector() async throws {
        let sizes = [8, 4096]
        let outcomes = await InProcessGroup.run(size: 3) { transport -> ([MeasuredProfile], [String]) in
            let comm = Communicator(transport: transport)
            comm.pin(RingAllgather(), for: .allgather)
            let profiles = try await comm.tune(operations: [.allreduce, .allgather, .barrier], sizes: sizes, repetitions: 2)
            #expect(comm.cost.measured == profiles)
            // The caller's pin survives the pinning that timing does.
            _ = try await comm.allgather([Float(1)])
            var picks = [comm.flightRecord(last: 1)[0].algorithm]
            for bytes in sizes {
                var values = [Float](repeating: Float(comm.rank), count: bytes / 4)
                try await comm.allreduce(&values)
                picks.append(comm.flightRecord(last: 1)[0].algorithm)
            }
            return (profiles, picks)
        }
        let (profiles, picks) = try outcomes[0].get()
        for outcome in outcomes.dropFirst() { #expect(try outcome.get().0 == profiles) }
        #expect(picks[0] == "ring")
        for operation in [CollectiveOperation.allreduce, .allgather, .barrier] {
            let candidates = CostModel.candidates(operation, native: false, sharedMemory: true)
            for algorithm in candidates {
                let profile = profiles.first { $0.describes(algorithm, ranks: 3) }
                #expect(profile != nil, "no profile for \(algorithm)")
                #expect(profile?.bytes == (operation == .barrier ? [0] : sizes.map(Double.init)), "\(algorithm)")
                #expect(profile?.seconds.allSatisfy { $0 > 0 && $0.isFinite } == true, "\(algorithm)")
            }
        }
        // The reference pick: the least measured time, the first listed on a tie.
        for (index, bytes) in sizes.enumerated() {
            let candidates = CostModel.candidates(.allreduce, native: false, sharedMemory: true)
            let times = candidates.map { a in profiles.first { $0.describes(a, ranks: 3) }!.seconds[index] }
            let fastest = candidates[times.firstIndex(of: times.min()!)!].name
            #expect(picks[index + 1] == fastest, "allreduce of \(bytes) B ran \(picks[index + 1]), measured fastest \(fastest) (\(times))")
        }
    }

    @Test("A measured profile outranks the formulas, never an algorithm's inability to run a size")
    func profilesOverrideFormulas() {
        var cost = CostParameters(alpha: 1e-6, beta: 1e-10, gamma: 1e-10)
        #expect(CostModel.select(.allreduce, ranks: 4, bytes: 8, cost: cost).algorithm.name == "recursive-doubling")
        cost.keep([MeasuredProfile(RingAllreduce(), ranks: 4, points: [(8, 0.1e-6), (1 << 20, 1e-3)])])
        #expect(CostModel.select(.allreduce, ranks: 4, bytes: 8, cost: cost).algorithm.name == "ring")
        // Another rank count keeps the formulas.
        #expect(CostModel.select(.allreduce, ranks: 8, bytes: 8, cost: cost).algorithm.name == "recursive-doubling")
        // Kept again, a profile replaces the earlier one of its algorithm and rank count.
        cost.keep([MeasuredProfile(RingAllreduce(), ranks: 4, points: [(8, 1.0)])])
        #expect(cost.measured.count == 1)
        #expect(CostModel.select(.allreduce, ranks: 4, bytes: 8, cost: cost).algorithm.name == "recursive-doubling")

        // The board cannot carry what its slots do not hold, however fast it was measured.
        let shared = SharedMemoryAlgorithm(.allreduce)
        let tooLarge = SharedMemoryLimits.slotBytes * 8
        cost.keep([MeasuredProfile(shared, ranks: 4, points: [(8, 1e-9), (tooLarge, 1e-9)])])
        #expect(CostModel.select(.allreduce, ranks: 4, bytes: 8, cost: cost, sharedMemory: true).algorithm.name == "shared-memory")
        #expect(CostModel.select(.allreduce, ranks: 4, bytes: tooLarge, cost: cost, sharedMemory: true).algorithm.name != "shared-memory")

        // A rooted operation's measured board serves as any other's.
        let rootedShared = SharedMemoryAlgorithm(.broadcast)
        cost.keep([MeasuredProfile(rootedShared, ranks: 4, points: [(8, 1e-9)])])
        #expect(CostModel.select(.broadcast, ranks: 4, bytes: 8, cost: cost, sharedMemory: true).algorithm.name == "shared-memory")
    }

    @Test("tune times again the fastest there and next door wherever the fastest changes from one size to the next, nowhere else")
    func secondLook() {
        // The fastest algorithm (index among the candidates) at six sizes: one stall-like flip at
        // the third, and a crossover from the fifth; nil where no candidate could run.
        // Where the fastest is one algorithm at a size and both its neighbours, none is timed again.
        let fastest: [Int?] = [0, 0, 2, 0, 1, 1, nil]
        let want: [[Int]] = [[], [0, 2], [0, 2], [0, 1, 2], [0, 1], [], []]
        for position in fastest.indices {
            let got = Communicator.contenders(fastest, at: position)
            #expect(got == want[position], "size \(position): \(got)")
        }
    }
}
