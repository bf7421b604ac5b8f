import Testing
import SkeinCore
import SkeinCollectives
import SkeinTestSupport

/// An algorithm as a test argument, named for the test report.
struct AlgorithmCase: Sendable, CustomTestStringConvertible {
    let algorithm: any CollectiveAlgorithm
    var testDescription: String { algorithm.description }
    static let all = AlgorithmRegistry.all.map(AlgorithmCase.init)
}

@Suite("Every algorithm against the naive reference", .serialized, .timeLimit(.minutes(10)))
struct CorrectnessTests {
    static let rankCounts = [1, 2, 3, 4, 5, 7, 8, 16]

    /// {0, 1, p−1, p+1, a few thousand, about 1 MiB of Float}.
    static func counts(ranks p: Int) -> [Int] { [0, 1, max(p - 1, 0), p + 1, 3_001, 262_147] }

    @Test("Float on in-process ranks, every p and size", arguments: AlgorithmCase.all)
    func inProcessMatrix(_ test: AlgorithmCase) async {
        var seed: UInt64 = 0x5EED_0000 &+ UInt64(test.algorithm.code) << 16
        for p in Self.rankCounts {
            for count in Self.counts(ranks: p) {
                seed &+= 1
                let op = ReduceOp.allCases[Int(seed % 4)]
                let failure = await checkCollective(
                    Float.self, algorithm: test.algorithm, kind: .inProcess, ranks: p, count: count, op: op, seed: seed)
                #expect(failure == nil, "\(failure ?? "")")
            }
        }
    }

    @Test("Float on the simulated transport with real bytes", arguments: AlgorithmCase.all)
    func simulatedMatrix(_ test: AlgorithmCase) async {
        var seed: UInt64 = 0x51A0_0000 &+ UInt64(test.algorithm.code) << 16
        for p in [1, 2, 3, 5, 8] {
            for count in [0, 1, p + 1, 3_001] {
                seed &+= 1
                let failure = await checkCollective(
                    Float.self, algorithm: test.algorithm, kind: .simulated, ranks: p, count: count, op: .sum, seed: seed)
                #expect(failure == nil, "\(failure ?? "")")
            }
        }
    }

    @Test("Every element type and reduction op", arguments: AlgorithmCase.all)
    func elementTypes(_ test: AlgorithmCase) async {
        var seed: UInt64 = 0x7E5_0000 &+ UInt64(test.algorithm.code) << 16
        for p in [3, 4] {
            for count in [p + 1, 1_001] {
                for op in ReduceOp.allCases {
                    seed &+= 1
                    let failures = await checkOtherElementTypes(algorithm: test.algorithm, ranks: p, count: count, op: op, seed: seed)
                    #expect(failures.isEmpty, "\(failures.joined(separator: "\n"))")
                }
            }
        }
    }

    @Test("Automatic selection gives correct results at every size")
    func automaticSelection() async throws {
        for p in [1, 2, 3, 4, 7] {
            for count in [0, 1, 5, 2_000, 300_000] {
                let seed = UInt64(p * 1_000_003 + count)
                var rng = SeededGenerator(seed: seed)
                let inputs = (0..<p).map { _ in (0..<count).map { _ in Int64.random(in: -1000...1000, using: &rng) } }
                let results = try await runGroupOrThrow(.inProcess, size: p) { comm in
                    try await comm.allreduce(inputs[comm.rank])
                }
                let want = Reference.reduce(inputs, .sum)
                for result in results { #expect(result == want, "p=\(p) n=\(count) seed \(seed)") }
            }
        }
    }

    @Test("On one rank every operation and form returns the input itself, and each call is counted and recorded")
    func oneRank() async throws {
        let seed: UInt64 = 0x0_1_0001
        var rng = SeededGenerator(seed: seed)
        for count in [0, 1, 7, 100_003] {
            let mine = (0..<count).map { _ in Int64.random(in: -1_000...1_000, using: &rng) }
            let outcome = try await runGroupOrThrow(.inProcess, size: 1) { comm -> ([String], [CollectiveRecord]) in
                var bad: [String] = []
                func check(_ name: String, _ got: [Int64]?) { if got != mine { bad.append(name) } }
                check("allreduce", try await comm.allreduce(mine, op: .product))
                check("allreduce ring", try await comm.allreduce(mine, algorithm: RingAllreduce()))
                check("reduce", try await comm.reduce(mine, op: .min, root: 0))
                check("allgather", try await comm.allgather(mine))
                check("reduceScatter", try await comm.reduceScatter(mine, op: .max))
                check("allToAll", try await comm.allToAll(mine))
                check("scatter", try await comm.scatter(mine, totalCount: count, root: 0))
                check("gather", try await comm.gather(mine, root: 0))
                check("broadcast", try await comm.broadcast(mine, root: 0))
                var output = [Int64](repeating: 7, count: 3)  // the wrong length: resized
                try await comm.allgather(mine, into: &output)
                check("allgather into", output)
                output = [Int64](repeating: 7, count: count)  // the right length: written over
                try await comm.allToAll(mine, into: &output)
                check("allToAll into", output)
                var inPlace = mine
                try await comm.allreduce(&inPlace, algorithm: RecursiveDoublingAllreduce())
                check("allreduce in place", inPlace)
                try await comm.broadcast(&inPlace, root: 0)
                check("broadcast in place", inPlace)
                try await comm.barrier()
                do {
                    _ = try await comm.broadcast(mine, root: 1)
                    bad.append("a root out of range was accepted")
                } catch let error as SkeinError {
                    if error.code != .invalidArgument { bad.append("root out of range: \(error)") }
                }
                return (bad, comm.flightRecord(last: 20))
            }[0]
            #expect(outcome.0.isEmpty, "p=1 n=\(count), seed \(seed): \(outcome.0)")
            // The 14 calls, then the refused one, each under its own number, the last with its error.
            let numbers = outcome.1.map { Int($0.sequence) }
            #expect(numbers == Array(1...15), "n=\(count): \(numbers)")
            #expect(outcome.1.last?.error?.code == .invalidArgument && outcome.1.dropLast().allSatisfy { $0.error == nil })
            #expect(outcome.1[1].algorithm == RingAllreduce().name)
        }
    }

    @Test("Results written into a caller's buffer equal the returned results", arguments: [1, 3, 5])
    func intoBuffers(_ p: Int) async throws {
        let seed = UInt64(9_000 + p)
        var rng = SeededGenerator(seed: seed)
        let count = 1_000 + p
        let inputs = (0..<p).map { _ in (0..<count).map { _ in Int64.random(in: -1_000...1_000, using: &rng) } }
        let root = p - 1
        let mismatches = try await runGroupOrThrow(.inProcess, size: p) { comm -> [String] in
            let mine = inputs[comm.rank]
            var bad: [String] = []
            var output = [Int64](repeating: 7, count: 3)  // wrong length on purpose: must be resized
            var inPlace = mine
            try await comm.allreduce(&inPlace)
            if try await inPlace != comm.allreduce(mine) { bad.append("allreduce") }
            try await comm.allgather(mine, into: &output)
            if try await output != comm.allgather(mine) { bad.append("allgather") }
            try await comm.reduceScatter(mine, into: &output, op: .max)
            if try await output != comm.reduceScatter(mine, op: .max) { bad.append("reduceScatter") }
            try await comm.allToAll(mine, into: &output)
            if try await output != comm.allToAll(mine) { bad.append("allToAll") }
            try await comm.scatter(comm.rank == root ? mine : [], totalCount: count, into: &output, root: root)
            if try await output != comm.scatter(comm.rank == root ? mine : [], totalCount: count, root: root) { bad.append("scatter") }
            var gathered: [Int64] = []
            try await comm.gather(mine, into: &gathered, root: root)
            let gatheredReturned = try await comm.gather(mine, root: root)
            if comm.rank == root && gathered != gatheredReturned { bad.append("gather") }
            var reduced: [Int64] = []
            try await comm.reduce(mine, into: &reduced, op: .min, root: root)
            let reducedReturned = try await comm.reduce(mine, op: .min, root: root)
            if comm.rank == root && reduced != reducedReturned { bad.append("reduce") }
            var broadcast = comm.rank == root ? mine : [Int64](repeating: 0, count: count)
            try await comm.broadcast(&broadcast, root: root)
            if broadcast != inputs[root] { bad.append("broadcast") }
            return bad
        }
        for (rank, bad) in mismatches.enumerated() { #expect(bad.isEmpty, "rank \(rank), p=\(p), seed \(seed): \(bad)") }
    }

    @Test("Repeated runs give bit-identical results", arguments: AlgorithmRegistry.algorithms(for: .allreduce).map(AlgorithmCase.init))
    func deterministic(_ test: AlgorithmCase) async throws {
        let p = 5, seed: UInt64 = 42
        var rng = SeededGenerator(seed: seed)
        let inputs = (0..<p).map { _ in (0..<10_007).map { _ in Float.random(in: -1...1, using: &rng) } }
        let algorithm = test.algorithm as! any AllreduceAlgorithm
        let first = try await runGroupOrThrow(.inProcess, size: p) { try await $0.allreduce(inputs[$0.rank], algorithm: algorithm) }
        let second = try await runGroupOrThrow(.inProcess, size: p) { try await $0.allreduce(inputs[$0.rank], algorithm: algorithm) }
        for rank in 0..<p {
            #expect(bitIdentical(first[rank], second[rank]), "rank \(rank), seed \(seed)")
            #expect(bitIdentical(first[rank], first[0]), "rank \(rank) vs rank 0, seed \(seed)")
        }
    }
}
