import ArgumentParser
import Foundation
import SkeinCore
import SkeinTransports
import SkeinCollectives

struct Bench: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Benchmarks that print measured figures beside the model and the physical limit.",
        subcommands: [BenchCollectives.self, BenchTransport.self, BenchTasks.self, BenchTPCH.self, BenchOperators.self])
}

/// One measured (operation, algorithm, ranks, size) point.
struct BenchRow {
    var operation: CollectiveOperation
    var algorithm: String
    var ranks: Int
    var bytes: Int
    var median: Double
    var predicted: Double
    /// Whether the selector picks it (from measured profiles where tuned).
    var selected: Bool
    /// Whether the formulas alone would pick it (the calibrated α-β-γ model, and MPI's measured calls).
    var modelSelected: Bool
    var lowerBound: Double
    /// At a point where the selected algorithm measured over 10% slower than the fastest: this
    /// row's median when those two were timed once more, interleaved (nil elsewhere).
    var secondLook: Double? = nil

    var algorithmBandwidth: Double { median > 0 ? Double(bytes) / median : 0 }
    /// nccl-tests' bus bandwidth: algorithm bandwidth scaled to what each link must carry.
    var busBandwidth: Double {
        let p = Double(ranks)
        switch operation {
        case .allreduce: return algorithmBandwidth * 2 * (p - 1) / p
        case .allgather, .reduceScatter, .allToAll, .gather, .scatter: return algorithmBandwidth * (p - 1) / p
        default: return algorithmBandwidth
        }
    }

    /// One JSON object; a prediction the model cannot make (MPI's blocking call) is null.
    var json: String {
        #"{"operation":"\#(operation)","algorithm":"\#(algorithm)","ranks":\#(ranks),"bytes":\#(bytes),"#
            + #""measured_seconds":\#(median),"predicted_seconds":\#(predicted.isFinite ? "\(predicted)" : "null"),"selected":\#(selected),"model_selected":\#(modelSelected),"#
            + #""lower_bound_seconds":\#(lowerBound),"algbw_bytes_per_second":\#(algorithmBandwidth),"#
            + #""busbw_bytes_per_second":\#(busBandwidth),"second_look_seconds":\#(secondLook.map { "\($0)" } ?? "null")}"#
    }

    var csv: String {
        "\(operation),\(algorithm),\(ranks),\(bytes),\(median),\(predicted),\(selected),\(modelSelected),\(lowerBound),\(algorithmBandwidth),\(busBandwidth),\(secondLook.map { "\($0)" } ?? "")"
    }
}

/// Memory-system rates measured in the same run: the roofline every collective is compared to.
/// Rates are measured on buffers of the message's own size (a 256 KiB message lives in cache, a
/// 64 MiB one in DRAM), on one core alone and on every core at once (cores share the memory bus).
final class Roofline {
    struct Rates {
        var copy: Double, reduce: Double, allCoresCopy: Double, allCoresReduce: Double
    }

    let cores = ProcessInfo.processInfo.activeProcessorCount
    private var measured: [Int: Rates] = [:]

    /// Best seconds per pass to copy and to sum-reduce (in place) `bytes` on one thread (repeated for ≥ 2 ms).
    static func kernelSeconds(bytes: Int) -> (copy: Double, reduce: Double) {
        let source = UnsafeMutableRawPointer.allocate(byteCount: bytes, alignment: 64)
        let target = UnsafeMutableRawPointer.allocate(byteCount: bytes, alignment: 64)
        defer { source.deallocate(); target.deallocate() }
        memset(source, 1, bytes)
        memset(target, 2, bytes)
        var copy = Double.infinity, reduce = Double.infinity
        let started = MonotonicClock.now()
        var passes = 0
        while passes < 5 || MonotonicClock.now() - started < 2_000_000 {
            // Both copies Skein makes: plain, and streaming past the cache (`MemoryCopy`), which
            // is the faster one when the buffers outgrow the cache.
            for streaming in [false, true] {
                let t0 = MonotonicClock.now()
                MemoryCopy.copy(to: target, from: source, byteCount: bytes, streaming: streaming)
                copy = min(copy, Double(MonotonicClock.now() - t0) / 1e9)
            }
            let t0 = MonotonicClock.now()
            Float.combine(
                .sum, into: target.assumingMemoryBound(to: Float.self), target.assumingMemoryBound(to: Float.self),
                source.assumingMemoryBound(to: Float.self), count: bytes / 4)
            reduce = min(reduce, Double(MonotonicClock.now() - t0) / 1e9)
            passes += 1
        }
        return (copy, reduce)
    }

    /// Rates for buffers of `bytes` (at least 64 KiB, so timer resolution does not dominate).
    func rates(bytes requested: Int) -> Rates {
        let bytes = max(requested, 64 << 10)
        if let known = measured[bytes] { return known }
        let single = Self.kernelSeconds(bytes: bytes)
        final class Results: @unchecked Sendable {  // @unchecked: each thread writes only its own index before `group.wait()`.
            var values: [(copy: Double, reduce: Double)]
            init(_ n: Int) { values = Array(repeating: (0, 0), count: n) }
        }
        let results = Results(cores)
        let group = DispatchGroup()
        for core in 0..<cores {
            group.enter()
            Thread { results.values[core] = Self.kernelSeconds(bytes: bytes); group.leave() }.start()
        }
        group.wait()
        let n = Double(bytes)
        let rates = Rates(
            copy: n / single.copy, reduce: n / single.reduce,
            allCoresCopy: Double(cores) * n / results.values.map(\.copy).max()!,
            allCoresReduce: Double(cores) * n / results.values.map(\.reduce).max()!)
        measured[bytes] = rates
        return rates
    }

    /// Seconds for the bytes each rank must at least reduce and copy into its result: one rank at
    /// one core's rates, or all p ranks' bytes at the all-cores rates, whichever is longer.
    func lowerBound(_ operation: CollectiveOperation, ranks p: Int, bytes n: Int) -> Double {
        let share = Double(p - 1) / Double(p) * Double(n)
        let (reduce, copy): (Double, Double)
        switch operation {
        case .allreduce: (reduce, copy) = (share, Double(n))
        case .reduceScatter: (reduce, copy) = (share, Double(n) / Double(p))
        case .reduce: (reduce, copy) = (share, Double(n))
        case .broadcast, .allgather, .allToAll, .gather: (reduce, copy) = (0, Double(n))
        case .scatter: (reduce, copy) = (0, Double(n) / Double(p))
        case .barrier, .pointToPoint: (reduce, copy) = (0, 0)
        }
        let r = rates(bytes: n)
        let oneRank = reduce / r.reduce + copy / r.copy
        let allRanks = Double(p) * (reduce / r.allCoresReduce + copy / r.allCoresCopy)
        return max(oneRank, allRanks)
    }
}

struct BenchCollectives: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "collectives",
        abstract: "Time every collective and algorithm on in-process ranks; print measured, predicted, bandwidth and the memory-bandwidth bound.",
        discussion: """
            Sizes are the vector for broadcast/reduce/allreduce/reduce-scatter, the whole result for
            allgather/gather, the root's buffer for scatter, each rank's send buffer for all-to-all.
            Times are the median over repetitions of the slowest rank's time per call.
            """)

    @Option(help: "Comma-separated rank counts.") var ranks = "2,4,8"
    @Option(help: "Comma-separated operations, or all.") var ops = "all"
    @Option(help: "Smallest message.") var minBytes = ByteSize(bytes: 8)
    @Option(help: "Largest message.") var maxBytes = ByteSize(bytes: 64 << 20)
    @Option(help: "Size step factor.") var step = 8
    @Option(help: "Folder for the CSV and SVG plots.") var output = "bench-out"
    @Flag(help: "Print one JSON object per row instead of the table.") var json = false
    @Flag(help: "Keep every core busy with a spinning thread while measuring.") var busy = false
    @Flag(help: "Fewer repetitions.") var quick = false
    @Flag(inversion: .prefixedNo, help: "Time the algorithms at Communicator.tuningSizes first and select from those profiles (else from the formulas alone).")
    var tune = true
    @Option(help: "inprocess, mpi, or auto (mpi when started by mpirun or srun).") var transport = TransportChoice.auto
    @Flag(help: "Under MPI: also time Skein's embedded default (in-process ranks) on rank 0 and compare it with MPI's own calls.")
    var compareEmbedded = false
    @Option(help: "With --compare-embedded: alternate MPI's calls and the embedded ranks this many times, keeping each side's fastest median, so that a slow spell of a shared machine lands on neither side's figure alone.")
    var rounds = 3

    func run() async throws {
        let rankCounts = ranks.split(separator: ",").compactMap { Int($0.trimmingCharacters(in: .whitespaces)) }
        guard !rankCounts.isEmpty, rankCounts.allSatisfy({ $0 >= 1 }) else { throw ValidationError("--ranks: comma-separated counts ≥ 1") }
        let operations = try CollectiveOperation.list(ops)
        var sizes: [Int] = []
        var size = max(minBytes.bytes, 1)
        while size <= maxBytes.bytes { sizes.append(size); size *= max(step, 2) }
        if let last = sizes.last, last < maxBytes.bytes { sizes.append(maxBytes.bytes) }

        if let session = try MPISession.start(transport) {
            try await runOverMPI(session, operations: operations, sizes: sizes)
            return
        }
        let roofline = Roofline()
        if !json {
            let big = roofline.rates(bytes: 64 << 20)
            print(String(format: "roofline at 64 MiB: copy %.2f GB/s on one core, %.2f GB/s on all %d; float sum %.2f GB/s of output on one core, %.2f GB/s on all",
                         big.copy / 1e9, big.allCoresCopy / 1e9, roofline.cores, big.reduce / 1e9, big.allCoresReduce / 1e9))
            print("(each row's bound uses rates measured on buffers of its own size)" + (busy ? "; every core kept busy by a spinning thread" : ""))
        }
        for bytes in sizes { _ = roofline.rates(bytes: bytes) }  // measured before any busy threads start
        let stopBusy = busy ? BusyCores.start(count: roofline.cores) : nil
        defer { stopBusy?() }
        var rows: [BenchRow] = []
        for p in rankCounts {
            let measured = try await CollectiveBenchmark(ranks: p, operations: operations, sizes: sizes, quick: quick, tune: tune).run()
            for var row in measured {
                row.lowerBound = roofline.lowerBound(row.operation, ranks: p, bytes: row.bytes)
                rows.append(row)
                if json { print(row.json) }
            }
            if !json { BenchReport.printTable(rows.filter { $0.ranks == p }) }
        }
        try BenchReport.write(rows, to: output)
        if !json {
            BenchReport.printSelectionQuality(rows)
            print("\nwrote \(output)/collectives.csv and one SVG per operation and rank count in \(output)/")
        }
    }
}

extension BenchCollectives {
    /// One rank per MPI process: Skein's algorithms and MPI's own, side by side; rank 0 prints.
    func runOverMPI(_ session: MPISession, operations: [CollectiveOperation], sizes: [Int]) async throws {
        let comm = Communicator(transport: session.transport, timeout: .seconds(600))
        let lead = comm.rank == 0
        if lead && !json { print(session.banner) }
        let rows = try await CollectiveBenchmark.measureAll(
            comm: comm, operations: operations, sizes: sizes, quick: quick, tune: tune, progress: lead && !json ? { print($0) } : nil)
        if lead {
            if json { rows.forEach { print($0.json) } } else {
                BenchReport.printTable(rows, ranksLabel: "MPI processes")
                BenchReport.printNativeComparison(rows)
                BenchReport.printSelectionQuality(rows)
            }
            try BenchReport.write(rows, to: output, ranksLabel: "MPI processes")
        }
        if compareEmbedded {
            if lead && CoreBinding.isBound {
                print("warning: this process is bound to a core (mpirun's default), so in-process ranks share it; run mpirun with --bind-to none")
            }
            let rounds = max(self.rounds, 1)
            var (native, embedded) = (rows, [BenchRow]())
            var embeddedCost: CostParameters?
            for round in 1...rounds {
                if round > 1 {
                    native = BenchRow.fastest(native, try await CollectiveBenchmark.measureNative(comm: comm, operations: operations, sizes: sizes, quick: quick))
                }
                if lead {
                    if !json { print("comparison round \(round) of \(rounds): embedded ranks…") }
                    // The other processes sleep meanwhile, so the embedded ranks have the cores to themselves.
                    session.setResting(true)
                    defer { session.setResting(false) }
                    // Let the other processes reach their sleep first: one still polling MPI at the start
                    // took a core from the first point timed (broadcast 8 B at 0.63–0.73× in two runs).
                    try await Task.sleep(for: .milliseconds(50))
                    // The first round calibrates, tunes and times every algorithm; later ones time the picks alone, under the same costs.
                    let (measured, cost) = try await CollectiveBenchmark(
                        ranks: comm.size, operations: operations, sizes: sizes, quick: quick, tune: tune, cost: embeddedCost
                    ).runReturningCost()
                    (embedded, embeddedCost) = (BenchRow.fastest(embedded, measured), cost)
                }
                await session.sleepUntilAll()
            }
            if lead { BenchReport.printEmbeddedComparison(mpi: native, embedded: embedded, rounds: rounds) }
        }
        session.finish()
    }
}

extension BenchRow {
    /// `earlier` with each row's median lowered to the same row's in `later` where that is faster
    /// (rows of `later` that `earlier` lacks are added).
    static func fastest(_ earlier: [BenchRow], _ later: [BenchRow]) -> [BenchRow] {
        func key(_ row: BenchRow) -> String { "\(row.operation.rawValue)|\(row.algorithm)|\(row.ranks)|\(row.bytes)" }
        var byKey = Dictionary(earlier.map { (key($0), $0) }, uniquingKeysWith: { first, _ in first })
        var order = earlier.map(key)
        for row in later {
            let k = key(row)
            if let known = byKey[k] {
                if row.median < known.median { byKey[k]?.median = row.median }
            } else {
                byKey[k] = row
                order.append(k)
            }
        }
        return order.compactMap { byKey[$0] }
    }
}

/// Runs the measurements inside one group of in-process ranks.
struct CollectiveBenchmark {
    let ranks: Int
    let operations: [CollectiveOperation]
    let sizes: [Int]
    let quick: Bool
    let tune: Bool
    /// Costs a earlier run measured: given, the ranks take them and time only the algorithm each
    /// point's selection picks (no calibration, tuning or other algorithms).
    var cost: CostParameters? = nil

    func run() async throws -> [BenchRow] { try await runReturningCost().rows }

    /// The rows, and the costs the ranks selected under (to pass to a later run).
    func runReturningCost() async throws -> (rows: [BenchRow], cost: CostParameters) {
        let (p, operations, sizes, quick, tune, given) = (ranks, operations, sizes, quick, tune, cost)
        let outcomes = await InProcessGroup.run(size: p) { transport -> ([BenchRow], CostParameters) in
            let comm = Communicator(transport: transport, cost: given ?? .inProcessDefault, timeout: .seconds(600))
            let rows =
                given == nil
                ? try await Self.measureAll(comm: comm, operations: operations, sizes: sizes, quick: quick, tune: tune)
                : try await Self.measurePicks(comm: comm, operations: operations, sizes: sizes, quick: quick)
            return (rows, comm.cost)
        }
        return try outcomes[0].get()
    }

    /// Each point's selected algorithm alone, timed as `measureAll` times it.
    static func measurePicks(comm: Communicator, operations: [CollectiveOperation], sizes: [Int], quick: Bool) async throws(SkeinError) -> [BenchRow] {
        try await measurePoints(comm: comm, operations: operations, sizes: sizes) { operation, bytes, _, run throws(SkeinError) in
            let pick = comm.selection(for: operation, bytes: bytes).algorithm
            let median = try await comm.timeAlgorithms([pick], operation: operation, repetitions: quick ? 5 : nil, run)[0]
            return [BenchRow(
                operation: operation, algorithm: pick.name, ranks: comm.size, bytes: bytes, median: median,
                predicted: pick.modelSeconds(ranks: comm.size, bytes: bytes, cost: comm.cost), selected: true, modelSelected: false, lowerBound: 0)]
        }
    }

    /// MPI's own calls alone (through the communicator, blocking and not, and in a bare loop), timed as `measureAll` times them.
    static func measureNative(comm: Communicator, operations: [CollectiveOperation], sizes: [Int], quick: Bool) async throws(SkeinError) -> [BenchRow] {
        try await measurePoints(comm: comm, operations: operations, sizes: sizes) { operation, bytes, count, run throws(SkeinError) in
            let natives: [any CollectiveAlgorithm] = [NativeAlgorithm(operation), NativeAlgorithm(operation, blocking: true)]
            let medians = try await comm.timeAlgorithms(natives, operation: operation, repetitions: quick ? 5 : nil, run)
            let rows = zip(natives, medians).map { algorithm, median in
                BenchRow(
                    operation: operation, algorithm: algorithm.name, ranks: comm.size, bytes: bytes, median: median, predicted: .infinity,
                    selected: false, modelSelected: false, lowerBound: 0)
            }
            return try await rows + bareNativeRow(comm: comm, operation: operation, bytes: bytes, count: count, quick: quick)
        }
    }

    /// Rows of `measure` at every operation and size, given the point, its per-rank element count,
    /// and a closure that makes n calls of it (one pair of buffers per point).
    private static func measurePoints(
        comm: Communicator, operations: [CollectiveOperation], sizes: [Int], progress: ((String) -> Void)? = nil,
        _ measure: (CollectiveOperation, _ bytes: Int, _ count: Int, _ run: (_ calls: Int) async throws(SkeinError) -> Void) async throws(SkeinError)
            -> [BenchRow]
    ) async throws(SkeinError) -> [BenchRow] {
        var rows: [BenchRow] = []
        for operation in operations {
            progress?("measuring \(operation) on \(comm.size) ranks…")
            for bytes in sizes {
                let count = CollectiveSimulator.perRankCount(operation, ranks: comm.size, bytes: bytes, elementWidth: 4)
                var input = [Float](repeating: Float(comm.rank + 1), count: count)
                var output: [Float] = []
                rows += try await measure(operation, bytes, count) { calls async throws(SkeinError) -> Void in
                    try await comm.exercise(operation, input: &input, output: &output, count: count, times: calls)
                }
            }
        }
        return rows
    }

    /// Every algorithm (and the transport's native one, if it has one) of every operation and size,
    /// on `comm`'s ranks after calibrating the model (and with `tune`, timing the algorithms at the
    /// tuning sizes that span `sizes`, of which the default rows share only 8 B); every rank returns
    /// the same rows.
    static func measureAll(
        comm: Communicator, operations: [CollectiveOperation], sizes: [Int], quick: Bool, tune: Bool, progress: ((String) -> Void)? = nil
    ) async throws(SkeinError) -> [BenchRow] {
        let p = comm.size
        try await comm.calibrate()
        if tune {
            let largest = sizes.max() ?? 0
            let tuning = Communicator.tuningSizes.filter { $0 <= largest } + Communicator.tuningSizes.filter { $0 > largest }.prefix(1)
            progress?("tuning: timing every algorithm at \(tuning.map(formatBytes).joined(separator: ", "))…")
            let t0 = MonotonicClock.now()
            try await comm.tune(operations: operations, sizes: tuning, repetitions: quick ? 3 : nil)
            progress?(String(format: "tuned in %.1f s", Double(MonotonicClock.now() - t0) / 1e9))
        } else {
            try await comm.calibrateNative()
        }
        // The formulas alone: what the model predicts, and picks without the profiles of Skein's own
        // algorithms (MPI's calls, which have no formula, keep theirs).
        var cost = comm.cost
        cost.measured.removeAll { $0.algorithm != NativeAlgorithm.code }
        return try await measurePoints(comm: comm, operations: operations, sizes: sizes, progress: progress) {
            operation, bytes, count, run throws(SkeinError) in
            let pick = comm.selection(for: operation, bytes: bytes).algorithm
            let modelPick = comm.selection(for: operation, bytes: bytes, cost: cost).algorithm
            // Those that can run this size (shared memory only up to what its slots hold), and MPI's
            // blocking call too, as a C program would make it (never selected: it holds a thread).
            let algorithms = comm.candidates(for: operation).filter { $0.predictedSeconds(ranks: p, bytes: bytes, cost: cost).isFinite }
                + (comm.hasNativeCollectives ? [NativeAlgorithm(operation, blocking: true)] : [])
            let medians = try await comm.timeAlgorithms(algorithms, operation: operation, repetitions: quick ? 5 : nil, run)
            var rows = zip(algorithms, medians).map { algorithm, median in
                BenchRow(
                    operation: operation, algorithm: algorithm.name, ranks: p, bytes: bytes, median: median,
                    predicted: algorithm.modelSeconds(ranks: p, bytes: bytes, cost: cost),
                    selected: algorithm.name == pick.name, modelSelected: algorithm.name == modelPick.name, lowerBound: 0)
            }
            // A miss is timed again, the two alone and interleaved: on a shared machine a passing
            // stall in one algorithm's repetitions can make a miss of a right choice, or hide a wrong one.
            if let chosen = rows.firstIndex(where: \.selected), let fastest = medians.indices.min(by: { medians[$0] < medians[$1] }),
                medians[chosen] > 1.1 * medians[fastest]
            {
                let again = try await comm.timeAlgorithms(
                    [algorithms[chosen], algorithms[fastest]], operation: operation, repetitions: quick ? 5 : nil, run)
                (rows[chosen].secondLook, rows[fastest].secondLook) = (again[0], again[1])
            }
            return try await rows + bareNativeRow(comm: comm, operation: operation, bytes: bytes, count: count, quick: quick)
        }
    }

    /// MPI's blocking call in a loop with nothing of Skein's around it, as OSU times it (none
    /// without MPI).
    private static func bareNativeRow(
        comm: Communicator, operation: CollectiveOperation, bytes: Int, count: Int, quick: Bool
    ) async throws(SkeinError) -> [BenchRow] {
        guard let bare = try await comm.timeNativeLoop(operation, count: count, repetitions: quick ? 5 : nil) else { return [] }
        return [BenchRow(
            operation: operation, algorithm: BenchReport.bareNativeName, ranks: comm.size, bytes: bytes, median: bare, predicted: .infinity,
            selected: false, modelSelected: false, lowerBound: 0)]
    }
}

/// Threads that spin on every core: the "busy machine" condition.
enum BusyCores {
    final class Flag: @unchecked Sendable {  // @unchecked: a single word read racily on purpose; a stale read only delays the stop.
        var stop = false
    }

    static func start(count: Int) -> () -> Void {
        let flag = Flag()
        for _ in 0..<count {
            let thread = Thread {
                var x = 0.0
                while !flag.stop { x += 1 }
                _ = x
            }
            thread.start()
        }
        return { flag.stop = true }
    }
}
