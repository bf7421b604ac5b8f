// Checks Skein over MPI: run under `mpirun -n P skein-mpi-check [check|dead-rank SEED]`.
// `check`: every operation × algorithm (Skein's and MPI's native) × sizes against the naive
// reference, more element types and ops, and out-of-order tags. `dead-rank SEED`: one rank kills
// itself with SIGKILL at a random point inside a collective; every survivor must report Skein's
// error naming it, then shrink and run a correct allreduce. Exit status 0 only when all agree.
import SkeinCore
import SkeinCollectives
import SkeinMPI
import SkeinTestSupport
import SkeinRuntime
import SkeinData
import Foundation
import Synchronization

#if MPI
let arguments = Array(CommandLine.arguments.dropFirst())
let transport: MPITransport
do {
    transport = try MPITransport.start()
} catch {
    print("skein-mpi-check: \(error)")
    exit(2)
}
let comm = Communicator(transport: transport, timeout: .seconds(30))
let (rank, p) = (comm.rank, comm.size)

func say(_ text: String) {
    FileHandle.standardOutput.write(Data((text + "\n").utf8))
}

/// Checks one case on this rank; returns a failure description or nil.
func check<T: ReferenceElement>(
    _: T.Type, _ algorithm: (any CollectiveAlgorithm)?, operation: CollectiveOperation, count: Int, op: ReduceOp, seed: UInt64,
    intoCaller: Bool = false
) async -> String? {
    let (inputs, root) = randomCase(T.self, ranks: p, count: count, op: op, seed: seed)
    let form = intoCaller ? " (into the caller's arrays)" : ""
    let context = "\(operation)/\(algorithm?.name ?? "auto")\(form) \(T.self) \(op) p=\(p) n=\(count) root=\(root) over MPI, seed \(seed)"
    do {
        let result = intoCaller
            ? try await runCollectiveIntoCaller(operation, algorithm: algorithm, on: comm, input: inputs[rank], count: count, op: op, root: root)
            : try await runCollective(operation, algorithm: algorithm, on: comm, input: inputs[rank], count: count, op: op, root: root)
        if let difference = checkRank(rank, result: result, operation: operation, inputs: inputs, op: op, root: root) {
            return "\(context): \(difference)"
        }
        if operation == .allreduce, let result {
            // Bit-identical on every rank: compare a hash of the bytes.
            var hash: Int64 = -3_750_763_034_362_895_579
            result.withUnsafeBytes { for byte in $0 { hash = (hash ^ Int64(byte)) &* 1_099_511_628_211 } }
            let hashes = try await comm.allgather([hash], algorithm: RingAllgather())
            if Set(hashes).count != 1 { return "\(context): results differ between ranks (hashes \(hashes))" }
        }
        return nil
    } catch {
        return "\(context): threw \(error)"
    }
}

func runChecks() async -> Int {
    var failures: [String] = []
    var cases = 0
    let counts = [0, 1, p + 1, 3001, 70_001]
    for operation in CollectiveOperation.allCases where operation != .pointToPoint {
        // The shared-memory board too, when the ranks share this host (up to what its slots hold).
        let shared: [any CollectiveAlgorithm] = comm.hasSharedMemory ? [SharedMemoryAlgorithm(operation)] : []
        let algorithms = AlgorithmRegistry.algorithms(for: operation) + shared + [NativeAlgorithm(operation), NativeAlgorithm(operation, blocking: true)]
        for algorithm in algorithms {
            let sizes = algorithm is SharedMemoryAlgorithm ? counts.filter { $0 * 4 <= SharedMemoryLimits.slotBytes } : counts
            for (index, count) in (operation == .barrier ? [0] : sizes).enumerated() {
                cases += 1
                let op = ReduceOp.allCases[index % ReduceOp.allCases.count]
                let seed = UInt64(cases) &* 7919 &+ UInt64(p)
                if let failure = await check(Float.self, algorithm, operation: operation, count: count, op: op, seed: seed) {
                    failures.append(failure)
                }
                // The forms that write into the caller's arrays, where large receives land in place:
                // twice, so that the second call reuses memory the first one's sends read.
                if count >= 3001 {
                    for round in 0..<2 {
                        cases += 1
                        if let failure = await check(
                            Float.self, algorithm, operation: operation, count: count, op: op, seed: seed &+ UInt64(round) &* 31, intoCaller: true)
                        {
                            failures.append(failure)
                        }
                    }
                }
            }
        }
    }
    // Every element type and reduction, Skein's choice and MPI's own.
    for op in ReduceOp.allCases {
        for native in [false, true] {
            let algorithm: (any CollectiveAlgorithm)? = native ? NativeAlgorithm(.allreduce) : nil
            cases += 4
            let seed = UInt64(cases) &* 104_729
            if let f = await check(Double.self, algorithm, operation: .allreduce, count: 5000, op: op, seed: seed) { failures.append(f) }
            if let f = await check(Int32.self, algorithm, operation: .allreduce, count: 5000, op: op, seed: seed + 1) { failures.append(f) }
            if let f = await check(Int64.self, native ? NativeAlgorithm(.reduce) : nil, operation: .reduce, count: 5000, op: op, seed: seed + 2) { failures.append(f) }
            if algorithm == nil, let f = await check(Float16.self, nil, operation: .allreduce, count: 5000, op: op, seed: seed + 3) {
                failures.append(f)
            }
        }
    }
    // MPI has no Float16: the native algorithm must say so on every rank, not misbehave.
    cases += 1
    do {
        _ = try await comm.allreduce([Float16](repeating: 1, count: 8), algorithm: NativeAlgorithm(.allreduce))
        failures.append("native Float16 allreduce succeeded; expected .unavailable")
    } catch {
        if error.code != .unavailable { failures.append("native Float16 allreduce threw \(error); expected .unavailable") }
    }
    // The failed call broke `comm` (as any failed call does); go on with a fresh one below.
    let fresh = Communicator(transport: transport, context: 7, timeout: .seconds(30))
    cases += 1
    if let failure = await outOfOrderTags(fresh) { failures.append(failure) }
    if p > 1 && comm.hasSharedMemory {
        cases += 1
        if let failure = await boardAgainstMessages() { failures.append(failure) }
    }
    // Calibrated automatic selection, with MPI's own collectives among the candidates.
    do {
        let cost = try await fresh.calibrate()
        let profiles = try await fresh.calibrateNative()
        if rank == 0 { say("calibrated over MPI: \(cost); native profiles for \(profiles.count) operations") }
        for (index, bytes) in [8, 4096, 1 << 20].enumerated() {
            cases += 1
            let (inputs, _) = randomCase(Float.self, ranks: p, count: bytes / 4, op: .sum, seed: UInt64(900 + index))
            let got = try await fresh.allreduce(inputs[rank])
            if let difference = checkRank(rank, result: got, operation: .allreduce, inputs: inputs, op: .sum, root: 0) {
                failures.append("calibrated auto allreduce of \(bytes) B: \(difference)")
            }
        }
        if rank == 0 {
            for record in fresh.flightRecord(last: 3) { say("  auto pick: \(record.algorithm) for \(record.bytes) B") }
        }
        // Tuned selection: every candidate (Skein's, the board's, MPI's own) timed on these processes.
        cases += 1
        let tuned = try await fresh.tune(operations: [.allreduce, .barrier], sizes: [8, 4096], repetitions: 3)
        let expected = [CollectiveOperation.allreduce, .barrier].reduce(0) { $0 + fresh.candidates(for: $1).count }
        if tuned.count != expected { failures.append("tune kept \(tuned.count) profiles, expected one per candidate (\(expected))") }
        let times = tuned.flatMap(\.seconds)
        let (most, least) = (try await fresh.allreduce(times, op: .max), try await fresh.allreduce(times, op: .min))
        if most != least { failures.append("ranks kept different tuned profiles") }
        for (index, bytes) in [8, 4096].enumerated() {
            let (inputs, _) = randomCase(Float.self, ranks: p, count: bytes / 4, op: .sum, seed: UInt64(950 + index))
            let got = try await fresh.allreduce(inputs[rank])
            if let difference = checkRank(rank, result: got, operation: .allreduce, inputs: inputs, op: .sum, root: 0) {
                failures.append("tuned auto allreduce of \(bytes) B (\(fresh.flightRecord(last: 1)[0].algorithm)): \(difference)")
            }
        }
        if rank == 0 {
            let picks = fresh.flightRecord(last: 2).map { "\($0.algorithm) for \($0.bytes) B" }
            say("  tuned: \(tuned.count) profiles; picks \(picks.joined(separator: ", "))")
        }
    } catch {
        failures.append("calibration over MPI threw \(error)")
    }
    for failure in failures { say("FAIL rank \(rank): \(failure)") }
    let worst = (try? await fresh.allreduce([Int64(failures.count)], op: .max, algorithm: RecursiveDoublingAllreduce())[0]) ?? 1
    if rank == 0 {
        say("skein-mpi-check p=\(p): \(cases) cases on each rank, \(worst == 0 ? "all passed" : "FAILURES (see above)")")
    }
    return Int(worst)
}

/// Rank 0 runs an allreduce on the shared-memory board while the others run it by messages: every
/// rank must fail with the disagreement well before the deadline, not hang until it.
func boardAgainstMessages() async -> String? {
    let mixed = Communicator(transport: transport, context: 11, timeout: .seconds(20))
    let algorithm: any AllreduceAlgorithm = rank == 0 ? SharedMemoryAlgorithm(.allreduce) : RecursiveDoublingAllreduce()
    let t0 = transport.now()
    do {
        _ = try await mixed.allreduce([Float](repeating: 1, count: 16), algorithm: algorithm)
        return "board against messages: the allreduce succeeded; expected a desync error"
    } catch {
        let seconds = Double(transport.now() - t0) / 1e9
        // Either this rank saw the disagreement, or it was told by one that did.
        let named = error.code == .desync || (error.code == .aborted && error.message.contains("shared memory"))
        guard named, seconds < 5 else {
            return "board against messages: \(error.code) after \(String(format: "%.2f", seconds)) s (\(error.message)); expected the desync within 5 s"
        }
        return nil
    }
}

/// Rank 0 sends two streams (one small, one large) and rank 1 reads them in the opposite order.
func outOfOrderTags(_ comm: Communicator) async -> String? {
    guard p >= 2, rank < 2 else { return nil }
    let signature = CallSignature(operation: .pointToPoint, algorithm: 0, dataType: .float32, reduceOp: .sum, root: 0, count: 0, sequence: 0)
    let first = Tag(context: 99, sequence: 1), second = Tag(context: 99, sequence: 2)
    let small = [Float](repeating: 1.5, count: 10), large = (0..<100_000).map(Float.init)
    do {
        if rank == 0 {
            let skew = ArrivalSkew(rank: 0, entry: 0)
            try transport.send(Message(signature: signature, skew: skew, chunks: Chunk.partition(large, into: 3)), to: 1, tag: first)
            try transport.send(Message(signature: signature, skew: skew, chunks: Chunk.partition(small, into: 1)), to: 1, tag: second)
            try transport.send(Message(signature: signature, skew: skew, chunks: Chunk.partition(small, into: 2)), to: 1, tag: first)
            return nil
        }
        let deadline = transport.now() + 10_000_000_000
        let b = try await transport.receive(from: 0, tag: second, deadline: deadline)
        let a1 = try await transport.receive(from: 0, tag: first, deadline: deadline)
        let a2 = try await transport.receive(from: 0, tag: first, deadline: deadline)
        func floats(_ m: Message) -> [Float] {
            m.chunks.flatMap { chunk in chunk.withUnsafeBytes { Array($0.bindMemory(to: Float.self)) } }
        }
        guard floats(b) == small, floats(a1) == large, floats(a2) == small, a1.chunks.count == 3 else {
            return "out-of-order tags: messages arrived wrong (\(floats(b).count), \(floats(a1).count), \(floats(a2).count) floats)"
        }
        return nil
    } catch {
        return "out-of-order tags threw \(error)"
    }
}

/// One rank dies with SIGKILL inside a collective; the survivors must name it and recover.
func deadRank(seed: UInt64) async -> Int32 {
    var rng = SeededGenerator(seed: seed)
    let victim = 1 + Int(rng.next() % UInt64(max(p - 1, 1)))
    let operations = CollectiveOperation.allCases.filter { $0 != .pointToPoint }
    let operation = operations[Int(rng.next() % UInt64(operations.count))]
    let bytes = [8, 65_536, 4 << 20][Int(rng.next() % 3)]
    let delayMicros = Int(rng.next() % 20_000)
    let count = CollectiveSimulator.perRankCount(operation, ranks: p, bytes: bytes, elementWidth: 4)
    let timeout = Duration.seconds(3)
    let deadlineSlack = 1.0
    if rank == 0 { say("dead-rank seed \(seed): rank \(victim) dies \(delayMicros) µs into a loop of \(operation) of \(bytes) B") }
    _ = try? await comm.barrier()
    if rank == victim {
        // A thread of its own: a rank that only sends never suspends, which could starve a queued timer.
        Thread {
            usleep(UInt32(delayMicros))
            kill(getpid(), SIGKILL)
        }.start()
    }
    var input = [Float](repeating: 1, count: count), output: [Float] = []
    var calls = 0
    let started = transport.now()
    while true {
        let t0 = transport.now()
        do {
            try await comm.exercise(operation, input: &input, output: &output, count: count, timeout: timeout)
            calls += 1
        } catch {
            let seconds = Double(transport.now() - t0) / 1e9
            let named = error.peer == victim
            let inTime = seconds <= 3 + deadlineSlack
            say("DEADRANK \(named && inTime ? "OK" : "BAD") rank \(rank) after \(calls) calls: \(error.code) naming rank \(error.peer.map(String.init) ?? "none") in \(String(format: "%.3f", seconds)) s: \(error.message)")
            guard named && inTime else { return 1 }
            // Recover: the survivors go on without the dead rank.
            do {
                let survivors = try comm.shrink(excluding: [victim])
                let (inputs, _) = randomCase(Float.self, ranks: survivors.size, count: 1000, op: .sum, seed: seed)
                let sum = try await survivors.allreduce(inputs[survivors.rank])
                if let difference = checkRank(survivors.rank, result: sum, operation: .allreduce, inputs: inputs, op: .sum, root: 0) {
                    say("DEADRANK BAD rank \(rank): allreduce after shrink: \(difference)")
                    return 1
                }
                try await survivors.barrier()  // nobody leaves while another survivor still needs its messages
            } catch {
                say("DEADRANK BAD rank \(rank): after shrink: \(error)")
                return 1
            }
            return 0
        }
        // A rank that only sends may run far ahead of the others before it hears of the death.
        if rank != victim && Double(transport.now() - started) / 1e9 > 3 + 3 + deadlineSlack {
            say("DEADRANK BAD rank \(rank): \(calls) calls and no failure within the deadline")
            return 1
        }
    }
}

/// One-way latency of an 8-byte message between ranks 0 and 1: Skein's transport against MPI's own
/// blocking send and receive, measured in the same run.
func pingPong() async -> Int32 {
    guard p >= 2 else { return 0 }
    let rounds = 20_000
    let signature = CallSignature(operation: .pointToPoint, algorithm: 0, dataType: .float32, reduceOp: .sum, root: 0, count: 0, sequence: 0)
    let message = Message(signature: signature, skew: ArrivalSkew(rank: rank, entry: 0), chunks: Chunk.partition([Double(1)], into: 1))
    var skein = 0.0
    do {
        for repetition in 0..<2 {
            let t0 = transport.now()
            for round in 0..<rounds where rank < 2 {
                let tag = Tag(context: 50 + UInt32(repetition), sequence: UInt64(round))
                if rank == 0 {
                    try transport.send(message, to: 1, tag: tag)
                    _ = try await transport.receive(from: 1, tag: tag, deadline: .max)
                } else {
                    _ = try await transport.receive(from: 0, tag: tag, deadline: .max)
                    try transport.send(message, to: 0, tag: tag)
                }
            }
            skein = Double(transport.now() - t0) / 1e9 / Double(rounds) / 2
        }
    } catch {
        say("ping-pong failed: \(error)")
        return 1
    }
    let native = rank < 2 ? transport.rawPingPong(rounds: rounds) : 0
    if rank == 0 {
        say(String(format: "one-way 8 B: Skein over MPI %.2f µs, MPI_Send/MPI_Recv %.2f µs, ratio %.2f", skein * 1e6, native * 1e6, skein / native))
    }
    return 0
}

/// The task runtime across the MPI processes: random DAGs against the sequential result, arrays
/// and errors crossing processes, and the store's accounting afterwards.
func runtimeCheck() async -> Int32 {
    let runtime = Runtime(cluster: transport, workersPerRank: 1)
    let node = runtime.register("node") { (i: Int, a: Int, b: Int) -> Int in (i &* 1_000_003 &+ a &* 31 &+ b) & 0x7FFF_FFFF }
    let scale = runtime.register("scale") { (values: [Double], factor: Double) -> [Double] in values.map { $0 * factor } }
    let total = runtime.register("total") { (values: [Double]) -> Double in values.reduce(0, +) }
    let where_ = runtime.register("where") { () -> Int in rank }
    let fail = runtime.register("fail") { (x: Int) -> Int in
        struct Boom: Error, CustomStringConvertible { let x: Int; var description: String { "boom \(x)" } }
        throw Boom(x: x)
    }
    final class Tally { var items: [Int] = []; let home = rank }
    let tally = runtime.registerActor("Tally") { Tally() }
    let add = runtime.method(tally, "add") { (t: Tally, x: Int) -> Int in
        t.items.append(x)
        return t.items.count
    }
    let items = runtime.method(tally, "items") { (t: Tally) -> [Int] in t.items }
    let home = runtime.method(tally, "home") { (t: Tally) -> Int in t.home }
    let big = runtime.method(tally, "big") { (t: Tally, n: Int) -> [Double] in (0..<n).map { Double($0 + t.items.count) } }
    // Views a task keeps past its end, in another process than the arena they read.
    let keptViews = Mutex<[Int: SharedArray<Double>]>([:])
    let keepView = runtime.register("keepView") { (view: SharedArray<Double>, key: Int) -> Double in
        keptViews.withLock { $0[key] = view }
        return view.reduce(0, +)
    }
    let keptViewSum = runtime.register("keptViewSum") { (key: Int) -> Double in keptViews.withLock { $0.removeValue(forKey: key)?.reduce(0, +) ?? -1 } }
    guard runtime.isDriver else {
        do { try await runtime.serve() } catch { say("rank \(rank) serve failed: \(error)"); return 1 }
        return 0
    }
    var failures: [String] = []
    do {
        do {
            for seed in UInt64(1)...4 {
                var rng = SeededGenerator(seed: seed)
                var refs: [ObjectRef<Int>] = [], expected: [Int] = []
                for i in 0..<200 {
                    let a = i == 0 ? -1 : Int(rng.next() % UInt64(i)), b = i == 0 ? -1 : Int(rng.next() % UInt64(i))
                    expected.append((i &* 1_000_003 &+ (a < 0 ? 0 : expected[a]) &* 31 &+ (b < 0 ? 0 : expected[b])) & 0x7FFF_FFFF)
                    refs.append(try runtime.submit(node, .value(i), a < 0 ? .value(0) : .ref(refs[a]), b < 0 ? .value(0) : .ref(refs[b])))
                }
                let got = try await runtime.get(refs)
                if got != expected { failures.append("random DAG seed \(seed): results differ from the sequential ones") }
            }
            let ranks = Set(try await runtime.get(try (0..<40).map { _ throws(RuntimeError) in try runtime.submit(where_) }))
            if p > 1 && ranks.count < 2 { failures.append("40 tasks all ran on rank(s) \(ranks)") }
            // 1.6 MB: over the 1 MiB threshold, so arguments and fetched results between ranks of
            // this host are read where they lie.
            let values = (0..<200_000).map(Double.init)
            let scaled = try runtime.submit(scale, .value(values), .value(2.0))
            let sums = try (0..<8).map { _ throws(RuntimeError) in try runtime.submit(total, .ref(scaled)) }
            for sum in try await runtime.get(sums) where sum != values.reduce(0, +) * 2 {
                failures.append("an array crossing processes came back wrong: \(sum)")
            }
            if p > 1 {
                // A chain kept on rank 1: the arrays stay there; only the final sum comes back.
                let r = p - 1
                let doubled = try runtime.submit(scale, .value(values), .value(2.0), options: TaskOptions(rank: r))
                let halved = try runtime.submit(scale, .ref(doubled), .value(0.5), options: TaskOptions(rank: r))
                let sum = try await runtime.get(try runtime.submit(total, .ref(halved), options: TaskOptions(rank: r)))
                if sum != values.reduce(0, +) { failures.append("a chain kept on rank \(r) came back as \(sum)") }
                if try await runtime.get(halved) != values { failures.append("an array kept on rank \(r) was fetched wrong") }
                if !runtime.timelineJSON().contains("rank \(r) → rank 0") { failures.append("the timeline shows no transfer of the fetched array") }
                if p > 2 {
                    // Made on rank r, read on rank 1: on one host, rank 1 reads it where it lies on
                    // rank r; as messages (as between hosts), rank r sends it to rank 1. Either way no
                    // byte of it passes through rank 0.
                    let sum = try await runtime.get(try runtime.submit(total, .ref(halved), options: TaskOptions(rank: 1)))
                    if sum != values.reduce(0, +) { failures.append("an array kept on rank \(r) and read on rank 1 came back as \(sum)") }
                    let way = runtime.sameHostTransfer == .messages ? "sent directly" : "read in place"
                    if !runtime.timelineJSON().contains("rank \(r) → rank 1, \(values.count * 8) B, \(way)") {
                        failures.append("an array kept on rank \(r) and read on rank 1 was not \(way) with \(runtime.sameHostTransfer)")
                    }
                }
                // A put array read on rank r: the first read copies it out of rank 0's memory
                // (cross-memory attach) or its shared arena; either way the arena holds one copy
                // after the second.
                let environment = ProcessInfo.processInfo.environment
                let mode: SameHostTransfer =
                    environment["SKEIN_SHARED_ARENA"] == "0" ? .messages : environment["SKEIN_CROSS_MEMORY"] == "0" ? .sharedArena : .crossMemory
                if runtime.sameHostTransfer != mode { failures.append("large objects move by \(runtime.sameHostTransfer), not \(mode)") }
                let put = runtime.put(values)
                let before = runtime.sharedBytes
                for read in 0..<2 {
                    if try await runtime.get(try runtime.submit(total, .ref(put), options: TaskOptions(rank: r))) != values.reduce(0, +) {
                        failures.append("a put array read on rank \(r) came back wrong")
                    }
                    let held = runtime.sharedBytes - before
                    let expected = mode == .messages || (mode == .crossMemory && read == 0) ? 0 : values.count * 8
                    if held < expected || held >= expected + 4096 {
                        failures.append("after \(read + 1) read(s) on rank \(r) by \(mode), rank 0 holds \(held) bytes in its arena, not \(expected)")
                    }
                }
                // A SharedArray read on rank r is read in place in rank 0's arena (in it from the
                // first read). Rank r keeps its view after the object is dropped: the block stays
                // pinned, so the next object cannot take its place.
                do {
                    let before = runtime.sharedBytes
                    do {
                        let view = runtime.put(SharedArray(values))
                        if try await runtime.get(try runtime.submit(keepView, .ref(view), .value(1), options: TaskOptions(rank: r))) != values.reduce(0, +) {
                            failures.append("a shared array read on rank \(r) came back wrong")
                        }
                        let held = runtime.sharedBytes - before
                        if mode != .messages && held < values.count * 8 { failures.append("a shared array read on rank \(r) left \(held) bytes in rank 0's arena") }
                    }
                    try await Task.sleep(for: .milliseconds(5))
                    let negated = values.map { -$0 }
                    let other = runtime.put(SharedArray(negated))
                    if try await runtime.get(try runtime.submit(keepView, .ref(other), .value(2), options: TaskOptions(rank: r))) != negated.reduce(0, +) {
                        failures.append("a second shared array read on rank \(r) came back wrong")
                    }
                    for (key, want) in [(1, values.reduce(0, +)), (2, negated.reduce(0, +))] {
                        let got = try await runtime.get(try runtime.submit(keptViewSum, .value(key), options: TaskOptions(rank: r)))
                        if got != want { failures.append("the view rank \(r) kept of shared array \(key) sums to \(got), not \(want): its block was reused") }
                    }
                }
            }
            // Actors on every rank: calls run there, in order, with refs of tasks as arguments.
            do {
                var rng = SeededGenerator(seed: 99)
                let actors = try (0..<p).map { r throws(RuntimeError) in try runtime.makeActor(tally, on: r) }
                var expected = [[Int]](repeating: [], count: p)
                var counts: [(Int, ObjectRef<Int>)] = []
                for i in 0..<120 {
                    let k = Int(rng.next() % UInt64(p))
                    let value = try runtime.submit(node, .value(i), .value(0), .value(0))
                    expected[k].append((i &* 1_000_003) & 0x7FFF_FFFF)
                    counts.append((expected[k].count, try actors[k].call(add, .ref(value))))
                }
                for (want, ref) in counts where try await runtime.get(ref) != want { failures.append("an actor call returned out of order") }
                for k in 0..<p {
                    if try await runtime.get(try actors[k].call(home)) != k { failures.append("actor \(k) does not live on rank \(k)") }
                    if try await runtime.get(try actors[k].call(items)) != expected[k] { failures.append("actor on rank \(k) saw its calls out of order") }
                    // A large result stays on the actor's rank until fetched.
                    let array = try await runtime.get(try actors[k].call(big, .value(10_000)))
                    if array.count != 10_000 || array[0] != Double(expected[k].count) { failures.append("actor on rank \(k) returned a wrong array") }
                }
            }
            let failing = try runtime.submit(fail, 7, options: TaskOptions(name: "failing-task"))
            let dependent = try runtime.submit(node, Arg.value(1), Arg.ref(failing), Arg.value(0))
            for ref in [failing, dependent] {
                do {
                    _ = try await runtime.get(ref)
                    failures.append("a failing task's result came back")
                } catch {
                    if error.code != .taskFailed || error.task != "failing-task" || !"\(error)".contains("boom 7") {
                        failures.append("a remote failure came back as \(error)")
                    }
                }
            }
        }
    } catch {
        failures.append("runtime over MPI threw \(error)")
    }
    // Dropped handles free their actors' states (the drop runs after each actor's last call).
    for _ in 0..<1000 where runtime.store.objects > 0 { try? await Task.sleep(for: .milliseconds(1)) }
    try? await Task.sleep(for: .milliseconds(10))
    let store = runtime.store
    if store.objects != 0 { failures.append("the store still holds \(store.objects) objects, \(store.bytes) bytes") }
    if runtime.sharedBytes != 0 { failures.append("rank 0 still holds \(runtime.sharedBytes) bytes in shared memory") }
    if runtime.actorStatesHeld != 0 { failures.append("rank 0 still holds \(runtime.actorStatesHeld) actor states") }
    runtime.shutdown()
    for failure in failures { say("FAIL runtime: \(failure)") }
    do { say("runtime over MPI, \(p) processes: \(failures.isEmpty ? "random DAGs, arrays, actors on every rank, remote errors and accounting all correct" : "FAILURES")") }
    return failures.isEmpty ? 0 : 1
}

/// 100 MiB from rank 0 to rank 1 over Skein's transport, and a small reply: its bandwidth.
func bigSend() async -> Int32 {
    guard p >= 2, rank < 2 else { return 0 }
    let signature = CallSignature(operation: .pointToPoint, algorithm: 0, dataType: .float32, reduceOp: .sum, root: 0, count: 0, sequence: 0)
    let big = [UInt8](repeating: 1, count: 100 << 20)
    var best = Double.infinity
    do {
        for round in 0..<5 {
            let tag = Tag(context: 77, sequence: UInt64(round))
            let t0 = transport.now()
            if rank == 0 {
                try transport.send(Message(signature: signature, skew: ArrivalSkew(rank: 0, entry: 0), chunks: Chunk.partition(big, into: 1)), to: 1, tag: tag)
                _ = try await transport.receive(from: 1, tag: tag, deadline: .max)
            } else {
                let message = try await transport.receive(from: 0, tag: tag, deadline: .max)
                try transport.send(Message(signature: signature, skew: ArrivalSkew(rank: 1, entry: 0), chunks: Chunk.partition([UInt8(message.chunks.count)], into: 1)), to: 0, tag: tag)
            }
            best = min(best, Double(transport.now() - t0) / 1e9)
        }
    } catch {
        say("bigsend failed: \(error)")
        return 1
    }
    if rank == 0 { say(String(format: "100 MiB over Skein's MPI transport: %.2f GB/s", Double(100 << 20) / best / 1e9)) }
    return 0
}

/// A worker rank dies (SIGKILL) while it runs tasks: its tasks are retried on the other ranks, a
/// task without retries fails with `.workerLost`, and later work avoids the dead rank.
func runtimeDeadRank() async -> Int32 {
    let runtime = Runtime(cluster: transport, workersPerRank: 1)
    let inc = runtime.register("inc") { (x: Int) -> Int in
        try await Task.sleep(for: .milliseconds(2))
        return x + 1
    }
    let die = runtime.register("die") { () -> Int in
        kill(getpid(), SIGKILL)
        return 0
    }
    final class Steps { var n = 0 }
    let steps = runtime.registerActor("Steps") { Steps() }
    let step = runtime.method(steps, "step") { (s: Steps) -> Int in
        try await Task.sleep(for: .microseconds(300))
        s.n += 1
        return s.n
    }
    guard runtime.isDriver else {
        try? await runtime.serve()
        return 0
    }
    var failures: [String] = []
    do {
        let victim = p - 1
        // An actor on the rank that dies, its calls pipelined (sent without waiting for replies).
        let doomed = try runtime.makeActor(steps, on: victim)
        let before = try (0..<40).map { _ throws(RuntimeError) in try doomed.call(step) }
        let first = try (0..<30).map { i throws(RuntimeError) in try runtime.submit(inc, .value(i), options: TaskOptions(retries: 2)) }
        let fatal = try runtime.submit(die, options: TaskOptions(name: "die", rank: victim))
        // Calls run in order there: the first lost call is followed by lost calls only.
        var lost = false
        for (index, ref) in before.enumerated() {
            do {
                let count = try await runtime.get(ref)
                if lost || count != index + 1 { failures.append("actor call \(index) on the dying rank returned \(count)") }
            } catch {
                lost = true
                if error.code != .workerLost { failures.append("actor call \(index) on the dead rank failed as \(error), not .workerLost") }
            }
        }
        if try await runtime.get(first) != Array(1...30) { failures.append("tasks retried after the rank died came back wrong") }
        do {
            _ = try await runtime.get(fatal)
            failures.append("the task that killed its rank returned")
        } catch {
            if error.code != .workerLost || error.task != "die" { failures.append("the killed task failed as \(error), not .workerLost") }
        }
        do {
            let count = try await runtime.get(try doomed.call(step))
            failures.append("a call to an actor on the dead rank returned \(count)")
        } catch {
            if error.code != .workerLost { failures.append("a call to an actor on the dead rank failed as \(error), not .workerLost") }
        }
        let later = try (0..<10).map { i throws(RuntimeError) in try runtime.submit(inc, .value(i)) }
        if try await runtime.get(later) != Array(1...10) { failures.append("work after the death came back wrong") }
        do {
            _ = try runtime.submit(inc, 1, options: TaskOptions(rank: victim))
            failures.append("a task pinned to the dead rank was accepted")
        } catch {
            if error.code != .workerLost { failures.append("a task pinned to the dead rank failed as \(error)") }
        }
    } catch {
        failures.append("threw \(error)")
    }
    runtime.shutdown()
    for failure in failures { say("FAIL runtime dead rank: \(failure)") }
    say("runtime over MPI, \(p) processes, one killed: \(failures.isEmpty ? "retried elsewhere, .workerLost without retries and for its actor's calls, dead rank avoided" : "FAILURES")")
    return failures.isEmpty ? 0 : 1
}

/// SQL over tables spread across the processes: random tables against one process's answers,
/// then (given a directory of TPC-H .tbl files) all 22 TPC-H queries against DuckDB's answers.
func sqlCheck(tpch: String?) async -> Int32 {
    var failures: [String] = []
    func part(_ t: Table) -> Table {
        Table(fields: t.fields, chunk: t.chunk.gather(Array(stride(from: Int32(rank), to: Int32(t.rowCount), by: p))))
    }
    do {
        for seed in UInt64(1)...3 {
            var rng = SeededGenerator(seed: seed)
            func table(_ rows: Int) -> Table {
                let k = (0..<rows).map { _ in Int64(rng.next() % 40) }
                let v = (0..<rows).map { _ in Int64(rng.next() % 20_000) - 10_000 }
                let s = (0..<rows).map { _ in ["red", "green", "blue", "gray"][Int(rng.next() % 4)] }
                return Table(fields: [Field("k", .int64), Field("v", .decimal(scale: 2)), Field("s", .string)],
                             columns: [Column(ints: k), Column(ints: v, type: .decimal(scale: 2)), Column(strings: s)])
            }
            let a = table(500), b = table(400)
            let single = Database(threads: 1)
            single.register(a, as: "a")
            single.register(b, as: "b")
            let db = DistributedDatabase(communicator: comm)
            try await db.register(part(a), as: "a")
            try await db.register(part(b), as: "b")
            for q in ["SELECT a.k, count(*), sum(b.v), max(a.s) FROM a JOIN b ON a.k = b.k GROUP BY a.k",
                      "SELECT s, count(DISTINCT k), min(v) FROM a GROUP BY s",
                      "SELECT k, v FROM a WHERE NOT EXISTS (SELECT * FROM b WHERE b.k = a.k AND b.s = a.s)",
                      "SELECT k, s FROM a EXCEPT SELECT k, s FROM b",
                      "SELECT k, v FROM a ORDER BY v DESC, k LIMIT 5"] {
                let got = try await db.sql(q)
                if rank == 0 {
                    let render: (Table) -> [String] = { t in t.rows.map { $0.map(\.description).joined(separator: "|") } }
                    let want = render(try single.sql(q)), have = render(got!)
                    let same = q.contains("ORDER BY") ? want == have : want.sorted() == have.sorted()
                    if !same { failures.append("seed \(seed): \(q): \(have.count) rows, expected \(want.count)") }
                }
            }
        }
        if let dir = tpch {
            let db = DistributedDatabase(communicator: comm)
            // Each process parses only its own line-aligned share of each file.
            for name in TPCH.tableNames {
                _ = try await db.loadCSV(path: "\(dir)/\(name).tbl", as: name, options: TPCH.options(name, threads: 1))
            }
            for (i, q) in TPCH.queries.enumerated() {
                let got = try await db.sql(q)
                if rank == 0 {
                    let answer = try String(contentsOfFile: String(format: "Tests/SkeinDataTests/TPCH/sf0.1/q%02d.csv", i + 1), encoding: .utf8)
                    if let problem = AnswerCheck.mismatch(got!, expected: answer) { failures.append("TPC-H Q\(i + 1): \(problem)") }
                }
            }
        }
    } catch {
        failures.append("rank \(rank): \(error)")
    }
    for f in failures { say("FAIL sql: \(f)") }
    if rank == 0 || !failures.isEmpty {
        say("sql over MPI, \(p) processes: \(failures.isEmpty ? "random joins, group-bys, anti joins, set operations, top-k\(tpch == nil ? "" : " and all 22 TPC-H queries") agree" : "FAILURES")")
    }
    return failures.isEmpty ? 0 : 1
}

switch arguments.first ?? "check" {
case "sql":
    let status = await sqlCheck(tpch: arguments.dropFirst().first)
    transport.shutdown()
    exit(status)
case "runtime-dead":
    let status = await runtimeDeadRank()
    transport.shutdown(finalize: false, grace: .seconds(1))
    exit(status)
case "bigsend":
    let status = await bigSend()
    transport.shutdown()
    exit(status)
case "runtime":
    let status = await runtimeCheck()
    transport.shutdown()
    exit(status)
case "pingpong":
    let status = await pingPong()
    transport.shutdown()
    exit(status)
case "check":
    if rank == 0 {
        say("\(MPITransport.libraryVersion), \(p) processes, thread level \(transport.threadLevelName), hosts \(Set(transport.hosts).sorted())")
    }
    let failures = await runChecks()
    transport.shutdown()
    exit(failures == 0 ? 0 : 1)
case "dead-rank":
    let seed = arguments.dropFirst().first.flatMap { UInt64($0) } ?? 1
    let status = await deadRank(seed: seed)
    transport.shutdown(finalize: false, grace: .seconds(2))
    exit(status)
default:
    say("usage: mpirun -n P skein-mpi-check [check | dead-rank SEED | pingpong | runtime | runtime-dead | bigsend | sql [TPCH-DIR]]")
    exit(2)
}
#else
print("skein-mpi-check: \(MPIBackend.buildHint)")
exit(2)
#endif
