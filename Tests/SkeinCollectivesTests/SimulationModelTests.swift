import Testing
import SkeinCore
import SkeinTransports
import SkeinCollectives
import SkeinTestSupport

@Suite("The simulated network reproduces every cost formula", .timeLimit(.minutes(10)))
struct SimulationModelTests {
    static let model = NetworkModel(alpha: 2e-6, beta: 1e-10, gamma: 5e-11)
    static let cost = CostParameters(alpha: 2e-6, beta: 1e-10, gamma: 5e-11)
    /// Powers of two and not, primes among them, up to 4096.
    static let rankCounts = [2, 3, 4, 5, 6, 7, 8, 12, 16, 31, 32, 33, 64, 100, 127, 128, 255, 256, 1000, 1024, 2047, 2048, 4095, 4096]

    @Test("Simulated completion time equals the formula", arguments: AlgorithmCase.all)
    func simulatedEqualsFormula(_ test: AlgorithmCase) throws {
        for p in Self.rankCounts {
            // p · 4096 float elements split evenly into p blocks and into any power of two ≤ 4096.
            let bytes = test.algorithm.operation == .barrier ? 0 : p * 4096 * 4
            let simulated = try CollectiveSimulator.run(test.algorithm, ranks: p, bytes: bytes, model: Self.model, root: p / 3)
            let predicted = test.algorithm.predictedSeconds(ranks: p, bytes: bytes, cost: Self.cost)
            #expect(
                abs(simulated.seconds - predicted) <= 1e-9 * predicted,
                "\(test.algorithm) p=\(p) bytes=\(bytes): simulated \(simulated.seconds) s, formula \(predicted) s")
        }
    }

    @Test("Message counts match the textbook for powers of two")
    func messageCounts() throws {
        let p = 64, bytes = 64 * 4096 * 4
        let sent = { (algorithm: any CollectiveAlgorithm) in try CollectiveSimulator.run(algorithm, ranks: p, bytes: bytes, model: Self.model).messages }
        #expect(try sent(RingAllreduce()) == 2 * (p - 1) * p)
        #expect(try sent(RecursiveDoublingAllreduce()) == 6 * p)
        #expect(try sent(RabenseifnerAllreduce()) == 12 * p)
        #expect(try sent(BinomialBroadcast()) == p - 1)
        #expect(try sent(PairwiseAllToAll()) == (p - 1) * p)
        #expect(try sent(DisseminationBarrier()) == 6 * p)
        // Ring allreduce moves 2(p−1)/p of the vector out of each rank.
        let ring = try CollectiveSimulator.run(RingAllreduce(), ranks: p, bytes: bytes, model: Self.model)
        #expect(ring.bytesSent == 2 * (p - 1) * bytes)
    }
}
