import ArgumentParser
import Foundation
import SkeinCore
import SkeinTransports
import SkeinCollectives

/// The gradient-synchronisation step of data-parallel SGD on in-process ranks.
struct Demo: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Sum each rank's gradient with allreduce, as data-parallel SGD does, and check the result.")

    @Option(help: "Number of in-process ranks.") var ranks = 4
    @Option(help: "Gradient length (Float elements) per rank.") var elements = 1_048_576
    @Option(help: "Timed repetitions.") var repetitions = 20

    func validate() throws {
        guard ranks >= 1 else { throw ValidationError("--ranks must be at least 1") }
        guard elements >= 0 else { throw ValidationError("--elements must not be negative") }
        guard repetitions >= 1 else { throw ValidationError("--repetitions must be at least 1") }
    }

    /// Rank r's gradient: reproducible from r alone, so the check can rebuild every rank's input.
    static func gradient(rank: Int, count: Int) -> [Float] {
        var state = UInt64(rank + 1) &* 0x9E37_79B9_7F4A_7C15
        return (0..<count).map { _ in
            state = state &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407
            return Float(Int64(bitPattern: state >> 11) % 2_000_001 - 1_000_000) / 1_000_000
        }
    }

    func run() async throws {
        let (ranks, elements, repetitions) = (self.ranks, self.elements, self.repetitions)
        print("Skein demo: gradient synchronisation of data-parallel SGD on \(ranks) in-process ranks")
        print("each rank holds a gradient of \(elements) Float (\(formatBytes(elements * 4))); allreduce sums them\n")
        let outcomes = await InProcessGroup.run(size: ranks) { transport -> ([Float], [Double], String?) in
            let comm = Communicator(transport: transport)
            let cost = try await comm.calibrate()
            let gradient = Self.gradient(rank: comm.rank, count: elements)
            var summary: String?
            if comm.rank == 0 {
                let bytes = elements * 4
                let choice = CostModel.select(.allreduce, ranks: ranks, bytes: bytes, cost: cost)
                var lines = ["calibrated on this machine: \(cost)", "predicted time of each allreduce algorithm:"]
                for (algorithm, seconds) in CostModel.predictions(.allreduce, ranks: ranks, bytes: bytes, cost: cost) {
                    let mark = algorithm.name == choice.algorithm.name ? "  ← chosen" : ""
                    lines.append("  \(algorithm.name.padding(toLength: 20, withPad: " ", startingAt: 0)) \(formatSeconds(seconds))\(mark)")
                }
                summary = lines.joined(separator: "\n")
            }
            var sum = try await comm.allreduce(gradient)
            var times: [Double] = []
            for _ in 0..<repetitions {
                try await comm.barrier()
                let t0 = MonotonicClock.now()
                sum = try await comm.allreduce(gradient)
                times.append(Double(MonotonicClock.now() - t0) / 1e9)
            }
            if let last = comm.flightRecord(last: 1).first, comm.rank == 0 {
                summary! += "\nthe communicator ran allreduce/\(last.algorithm); its last call: \(last)"
            }
            return (sum, times, summary)
        }
        var results: [([Float], [Double], String?)] = []
        for (rank, outcome) in outcomes.enumerated() {
            do { results.append(try outcome.get()) } catch {
                throw CleanExit.message("rank \(rank) failed: \(error)")
            }
        }
        if let summary = results[0].2 { print(summary) }

        // Reference: the same gradients summed by a plain loop in rank order, in Double.
        var reference = [Double](repeating: 0, count: elements)
        for rank in 0..<ranks {
            for (i, g) in Self.gradient(rank: rank, count: elements).enumerated() { reference[i] += Double(g) }
        }
        let sum = results[0].0
        let maxError = zip(sum, reference).reduce(0.0) { max($0, abs(Double($1.0) - $1.1)) }
        let identical = results.allSatisfy { $0.0.withUnsafeBytes { a in sum.withUnsafeBytes { b in a.elementsEqual(b) } } }
        let perRep = (0..<repetitions).map { i in results.map { $0.1[i] }.max()! }.sorted()
        let median = perRep[perRep.count / 2]
        print("\nmeasured allreduce: median \(formatSeconds(median)) over \(repetitions) runs (slowest rank each run)")
        let tolerance = Double(ranks) * 1.2e-7 * Double(ranks)
        print("check: every rank holds the same sum — \(identical ? "yes, bit-identical on all \(ranks) ranks" : "NO")")
        print(String(format: "check: max |sum − naive Double sum| = %.2e (tolerance %.1e) — %@", maxError, tolerance,
                     maxError <= tolerance ? "correct" : "WRONG"))
        if !identical || maxError > tolerance { throw ExitCode.failure }
    }
}
