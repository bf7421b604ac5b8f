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

    @Option(help: "inprocess, mpi, or auto (mpi when started by mpirun or srun: one rank per process).")
    var transport = TransportChoice.auto

    func run() async throws {
        let (elements, repetitions) = (self.elements, self.repetitions)
        if let session = try MPISession.start(transport) {
            try await runOverMPI(session)
            return
        }
        let ranks = self.ranks
        print("Skein demo: gradient synchronisation of data-parallel SGD on \(ranks) in-process ranks")
        print("each rank holds a gradient of \(elements) Float (\(formatBytes(elements * 4))); allreduce sums them\n")
        let outcomes = await InProcessGroup.run(size: ranks) { transport -> ([Float], [Double], String?) in
            try await Self.synchronise(comm: Communicator(transport: transport), elements: elements, repetitions: repetitions)
        }
        var results: [([Float], [Double], String?)] = []
        for (rank, outcome) in outcomes.enumerated() {
            do { results.append(try outcome.get()) } catch {
                throw CleanExit.message("rank \(rank) failed: \(error)")
            }
        }
        if let summary = results[0].2 { print(summary) }
        let sum = results[0].0
        let identical = results.allSatisfy { $0.0.withUnsafeBytes { a in sum.withUnsafeBytes { b in a.elementsEqual(b) } } }
        let perRep = (0..<repetitions).map { i in results.map { $0.1[i] }.max()! }
        try Self.report(sum: sum, slowestPerRun: perRep, identical: identical, ranks: ranks, elements: elements)
    }

    /// One rank's part: calibrate, time each algorithm at this size (`tune`), sum the gradients
    /// `repetitions` times; returns the sum, this rank's time per run, and (on rank 0) the model's
    /// predictions beside the measured times.
    static func synchronise(comm: Communicator, elements: Int, repetitions: Int) async throws(SkeinError) -> ([Float], [Double], String?) {
        let ranks = comm.size
        let cost = try await comm.calibrate()
        let gradient = Self.gradient(rank: comm.rank, count: elements)
        let bytes = elements * 4
        // At 4 MiB on 4 in-process ranks the formulas price shared-address 1.2–1.8× below ring: it folds
        // all p inputs into a tile kept in the first-level cache (`tileGamma`), where the message
        // algorithms reduce pairwise, writing each partial sum to memory for the next step to read
        // back. Measured, it ran 1.7–4.9× faster, and the formulas price ring, Rabenseifner and the
        // 2-D grid within 2% of one another, so calibration noise would pick among those. Timing
        // them here, as MPI's tuned rules and NCCL's tuner stand in for a model, makes the pick
        // this machine's.
        try await comm.tune(operations: [.allreduce], sizes: [bytes])
        var summary: String?
        if comm.rank == 0 {
            let choice = comm.selection(for: .allreduce, bytes: bytes)
            var lines = [
                "calibrated on this machine: \(cost)",
                "each allreduce algorithm: the model's prediction, then its time measured here (`tune`), which the selector goes by:",
            ]
            for algorithm in comm.candidates(for: .allreduce) {
                let seconds = algorithm.modelSeconds(ranks: ranks, bytes: bytes, cost: comm.cost)
                let measured = comm.cost.measuredSeconds(of: algorithm, ranks: ranks, bytes: bytes)
                let mark = algorithm.name == choice.algorithm.name ? "  ← chosen" : ""
                let label = algorithm.name == "native" ? "native (MPI's own)" : algorithm.name
                lines.append(
                    "  \(label.padding(toLength: 28, withPad: " ", startingAt: 0)) \(formatSeconds(seconds).leftPad(11))"
                        + "\((measured.map(formatSeconds) ?? "-").leftPad(11))\(mark)")
            }
            summary = lines.joined(separator: "\n")
        }
        // As DDP does, each step sums the gradients in place, in the buffer that holds them (the
        // form `selection(for:)` speaks of; the form that returns a new array may not pick the
        // shared-address algorithm, which writes into the callers' arrays).
        var sum = gradient
        try await comm.allreduce(&sum)
        var times: [Double] = []
        for _ in 0..<repetitions {
            sum.withUnsafeMutableBufferPointer { _ = $0.update(fromContentsOf: gradient) }
            try await comm.barrier()
            let t0 = MonotonicClock.now()
            try await comm.allreduce(&sum)
            times.append(Double(MonotonicClock.now() - t0) / 1e9)
        }
        if let last = comm.flightRecord(last: 1).first, comm.rank == 0 {
            summary! += "\nthe communicator ran allreduce/\(last.algorithm); its last call: \(last)"
        }
        return (sum, times, summary)
    }

    /// One rank per MPI process; rank 0 prints and checks.
    func runOverMPI(_ session: MPISession) async throws {
        let comm = Communicator(transport: session.transport)
        let lead = comm.rank == 0
        if lead {
            print("Skein demo: gradient synchronisation of data-parallel SGD on \(session.banner)")
            print("each rank holds a gradient of \(elements) Float (\(formatBytes(elements * 4))); allreduce sums them\n")
        }
        let (sum, times, summary) = try await Self.synchronise(comm: comm, elements: elements, repetitions: repetitions)
        let slowest = try await comm.allreduce(times, op: .max)
        var hash: Int64 = -3_750_763_034_362_895_579
        sum.withUnsafeBytes { for byte in $0 { hash = (hash ^ Int64(byte)) &* 1_099_511_628_211 } }
        let hashes = try await comm.allgather([hash])
        session.finish()
        guard lead else { return }
        if let summary { print(summary) }
        try Self.report(sum: sum, slowestPerRun: slowest, identical: Set(hashes).count == 1, ranks: comm.size, elements: elements)
    }

    /// Prints the timing and the two checks (same sum everywhere; equal to a naive sum); fails if either fails.
    static func report(sum: [Float], slowestPerRun: [Double], identical: Bool, ranks: Int, elements: Int) throws {
        // Reference: the same gradients summed by a plain loop in rank order, in Double.
        var reference = [Double](repeating: 0, count: elements)
        for rank in 0..<ranks {
            for (i, g) in Self.gradient(rank: rank, count: elements).enumerated() { reference[i] += Double(g) }
        }
        let maxError = zip(sum, reference).reduce(0.0) { max($0, abs(Double($1.0) - $1.1)) }
        let perRep = slowestPerRun.sorted()
        let median = perRep[perRep.count / 2]
        print("\nmeasured allreduce: median \(formatSeconds(median)) over \(perRep.count) runs (slowest rank each run)")
        let tolerance = Double(ranks) * 1.2e-7 * Double(ranks)
        print("check: every rank holds the same sum — \(identical ? "yes, bit-identical on all \(ranks) ranks" : "NO")")
        print(String(format: "check: max |sum − naive Double sum| = %.2e (tolerance %.1e) — %@", maxError, tolerance,
                     maxError <= tolerance ? "correct" : "WRONG"))
        if !identical || maxError > tolerance { throw ExitCode.failure }
    }
}
