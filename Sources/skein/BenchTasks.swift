import ArgumentParser
import Foundation
import SkeinCore
import SkeinRuntime

/// The cases of Ray's `ray microbenchmark`, on Skein's embedded runtime, plus scaling runs.
struct BenchTasks: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "tasks",
        abstract: "Task-runtime microbenchmarks (the cases of `ray microbenchmark`), strong and weak scaling.",
        discussion: """
            Ray's own figures come from scripts/ray-microbenchmark.sh (Ray in a virtual environment).
            Targets on a 2-core machine: ≥ 100,000 no-op tasks/s, ≤ 50 µs per dependent task, a
            1 → 998 → 1 diamond ≤ 15 ms, ≥ 200,000 pipelined and ≥ 25,000 synchronous actor calls/s,
            start to first result ≤ 150 ms, get of a 100 MiB array O(1).
            """)

    @Option(help: "Worker slots (default: one per core).") var workers = ProcessInfo.processInfo.activeProcessorCount
    @Flag(help: "Keep every core busy with a spinning thread while measuring.") var busy = false
    @Flag(help: "Print one JSON object per case.") var json = false
    @Option(help: "Folder for the scaling SVG.") var output = "bench-out"
    @Option(help: "inprocess, mpi, or auto (mpi when started by mpirun or srun).") var transport = TransportChoice.auto

    struct Case {
        var name: String
        var value: Double
        var unit: String
        var target: String
    }

    func run() async throws {
        if let session = try MPISession.start(transport) {
            // The spinning threads run in rank 0's process only: one per core of the host.
            let stopBusy = busy && session.transport.rank == 0 ? BusyCores.start(count: ProcessInfo.processInfo.activeProcessorCount) : nil
            defer { stopBusy?() }
            try await runOverMPI(session)
            return
        }
        let stopBusy = busy ? BusyCores.start(count: ProcessInfo.processInfo.activeProcessorCount) : nil
        defer { stopBusy?() }
        var cases: [Case] = []
        func report(_ c: Case) {
            cases.append(c)
            if json {
                print(#"{"case":"\#(c.name)","value":\#(c.value),"unit":"\#(c.unit)","target":"\#(c.target)","busy":\#(busy)}"#)
            } else {
                print(c.name.padding(toLength: 50, withPad: " ", startingAt: 0) + String(format: "%14.1f", c.value) + "  " + c.unit.padding(toLength: 10, withPad: " ", startingAt: 0) + c.target)
            }
        }
        if !json { print("Skein task runtime, embedded, \(workers) workers\(busy ? ", every core kept busy" : "")\n") }

        // Start to first result: a fresh runtime, one task, its result.
        let t0 = MonotonicClock.now()
        let first = Runtime(workers: workers)
        let hello = first.register("hello") { () in 1 }
        _ = try await first.get(try first.submit(hello))
        report(Case(name: "start to first task result", value: Double(MonotonicClock.now() - t0) / 1e6, unit: "ms", target: "target ≤ 150 ms; Ray 2,300 ms"))
        first.shutdown()

        let runtime = Runtime(workers: workers)
        defer { runtime.shutdown() }
        let noop = runtime.register("noop") { () in 0 }
        let inc = runtime.register("inc") { (x: Int) in x + 1 }
        let join = runtime.register("join") { (values: [Int]) in values.count }

        report(Case(name: "single client tasks sync", value: try await rate(2_000) { _ in _ = try await runtime.get(try runtime.submit(noop)) }, unit: "tasks/s", target: "Ray ~900/s"))
        report(Case(name: "single client tasks async (10,000 then gather)", value: try await batchRate(10_000) { n in
            let refs = try (0..<n).map { _ throws(RuntimeError) in try runtime.submit(noop) }
            _ = try await runtime.get(refs)
        }, unit: "tasks/s", target: "target ≥ 100,000; Ray 1,427"))

        // A chain of dependent tasks.
        let chainLength = 1000
        let chainStart = MonotonicClock.now()
        var chain = try runtime.submit(inc, .value(0))
        for _ in 1..<chainLength {
            let next = try runtime.submit(inc, .ref(chain))
            chain = next
        }
        _ = try await runtime.get(chain)
        report(Case(name: "chain of 1,000 dependent tasks, per task", value: Double(MonotonicClock.now() - chainStart) / 1e3 / Double(chainLength), unit: "µs", target: "target ≤ 50 µs; Ray ~1,900 µs"))

        // 1 → 998 → 1 diamond.
        var diamonds: [Double] = []
        for _ in 0..<5 {
            let start = MonotonicClock.now()
            let root = try runtime.submit(noop)
            let middle = try (0..<998).map { _ throws(RuntimeError) in try runtime.submit(inc, .ref(root)) }
            var all: [Int] = []
            for ref in middle { all.append(try await runtime.get(ref)) }
            _ = try await runtime.get(try runtime.submit(join, .value(all)))
            diamonds.append(Double(MonotonicClock.now() - start) / 1e6)
        }
        report(Case(name: "1 → 998 → 1 diamond", value: diamonds.sorted()[2], unit: "ms", target: "target ≤ 15 ms"))

        // Actors.
        final class Counter { var value = 0 }
        let actor = runtime.makeActor("counter") { Counter() }
        let bump: @Sendable (Counter) -> Int = { counter in
            counter.value += 1
            return counter.value
        }
        report(Case(name: "1:1 actor calls sync", value: try await rate(5_000) { _ in _ = try await runtime.get(try actor.call("bump", bump)) }, unit: "calls/s", target: "target ≥ 25,000; Ray 891"))
        report(Case(name: "1:1 actor calls async (pipelined)", value: try await batchRate(20_000) { n in
            let refs = try (0..<n).map { _ throws(RuntimeError) in try actor.call("bump", bump) }
            _ = try await runtime.get(refs)
        }, unit: "calls/s", target: "target ≥ 200,000; Ray 5,165"))
        let actors = (0..<8).map { index in runtime.makeActor("counter-\(index)") { Counter() } }
        report(Case(name: "1:n actor calls async (8 actors)", value: try await batchRate(20_000) { n in
            let refs = try (0..<n).map { i throws(RuntimeError) in try actors[i % actors.count].call("bump", bump) }
            _ = try await runtime.get(refs)
        }, unit: "calls/s", target: ""))

        // Objects.
        report(Case(name: "put + get of small objects", value: try await rate(100_000) { i in _ = try await runtime.get(runtime.put(i)) }, unit: "ops/s", target: ""))
        let big = [UInt8](repeating: 7, count: 100 << 20)
        var putGet = Double.infinity
        for _ in 0..<5 {
            let start = MonotonicClock.now()
            let ref = runtime.put(big)
            let back = try await runtime.get(ref)
            putGet = min(putGet, Double(MonotonicClock.now() - start) / 1e9)
            precondition(back.count == big.count)
        }
        let memcpy = Self.memcpySeconds(bytes: 100 << 20)
        // O(1): the time is the store's bookkeeping, set beside what one copy of the bytes would take.
        report(Case(name: "put + get of a 100 MiB array", value: putGet * 1e6, unit: "µs",
                    target: String(format: "one memcpy of it: %.0f µs (%.1f GB/s); target O(1), no copy; Ray 10%% of memcpy", memcpy * 1e6, Double(100 << 20) / memcpy / 1e9)))

        // 10⁶ puts and gets leave nothing behind (a fresh runtime, so nothing else is held).
        let fresh = Runtime(workers: workers)
        for i in 0..<1_000_000 { _ = try await fresh.get(fresh.put(i)) }
        let store = fresh.store
        fresh.shutdown()
        report(Case(name: "store after 10⁶ puts and gets: objects, bytes", value: Double(store.objects + store.bytes), unit: "left", target: "target 0"))

        try await scaling(cases: &cases)
    }

    /// The runtime across MPI processes: rank 0 drives, the others serve.
    func runOverMPI(_ session: MPISession) async throws {
        let runtime = Runtime(cluster: session.transport, workersPerRank: 1)
        let noop = runtime.register("noop") { () in 0 }
        let length = runtime.register("length") { (values: [UInt8]) in values.count }
        let viewLength = runtime.register("viewLength") { (values: SharedArray<UInt8>) in values.count }
        let viewSum = runtime.register("viewSum") { (values: SharedArray<UInt8>) -> UInt64 in
            values.withUnsafeBufferPointer { byteSum(UnsafeRawBufferPointer($0)) }
        }
        final class Count { var n = 0 }
        let counter = runtime.registerActor("Count") { Count() }
        let bump = runtime.method(counter, "bump") { (c: Count) -> Int in
            c.n += 1
            return c.n
        }
        guard runtime.isDriver else {
            try await runtime.serve()
            session.finish()
            return
        }
        let p = session.transport.size
        if !json { print("Skein task runtime over \(session.banner), one worker slot per rank\(busy ? ", every core kept busy" : "")\n") }
        func report(_ c: Case) {
            if json {
                print(#"{"case":"\#(c.name)","value":\#(c.value),"unit":"\#(c.unit)","target":"\#(c.target)","ranks":\#(p),"busy":\#(busy)}"#)
            } else {
                print(c.name.padding(toLength: 50, withPad: " ", startingAt: 0) + String(format: "%14.1f", c.value) + "  " + c.unit.padding(toLength: 10, withPad: " ", startingAt: 0) + c.target)
            }
        }
        report(Case(name: "no-op tasks on every rank (20,000 then gather)", value: try await batchRate(20_000) { n in
            _ = try await runtime.get(try (0..<n).map { _ throws(RuntimeError) in try runtime.submit(noop) })
        }, unit: "tasks/s", target: "target ≥ 10× Ray's (Ray 2,269/s here)"))
        if p > 1 {
            report(Case(name: "no-op tasks on ranks ≥ 1 only (round trips)", value: try await batchRate(20_000) { n in
                _ = try await runtime.get(try (0..<n).map { i throws(RuntimeError) in try runtime.submit(noop, options: TaskOptions(rank: 1 + i % (p - 1))) })
            }, unit: "tasks/s", target: ""))
            let remote = try runtime.makeActor(counter, on: 1)
            report(Case(name: "actor on rank 1: 10,000 calls, then gather", value: try await batchRate(10_000) { n in
                _ = try await runtime.get(try (0..<n).map { _ throws(RuntimeError) in try remote.call(bump) })
            }, unit: "calls/s", target: "Ray 2.60 here: 5,165/s (actor on the same host)"))
            report(Case(name: "actor on rank 1: synchronous calls", value: try await rate(5_000) { _ in
                _ = try await runtime.get(try remote.call(bump))
            }, unit: "calls/s", target: "Ray 2.60 here: 891/s"))
            let big = [UInt8](repeating: 3, count: 100 << 20)
            let memcpy = Self.memcpySeconds(bytes: 100 << 20)
            func share(_ seconds: Double) -> String { String(format: "%.0f%% of memcpy (%.1f GB/s, one thread)", memcpy / seconds * 100, Double(100 << 20) / memcpy / 1e9) }
            do {
                // Ray's way: the task gets a read-only view of the bytes in shared memory, so the
                // whole cost is rank 0's one copy into its arena (whose pages are faulted in at start).
                let start = MonotonicClock.now()
                let view = runtime.put(SharedArray(big))
                let count = try await runtime.get(try runtime.submit(viewLength, .ref(view), options: TaskOptions(rank: 1)))
                let first = Double(MonotonicClock.now() - start) / 1e9
                let summing = MonotonicClock.now()
                let sum = try await runtime.get(try runtime.submit(viewSum, .ref(view), options: TaskOptions(rank: 1)))
                let summed = Double(MonotonicClock.now() - summing) / 1e9
                guard count == big.count, sum == 3 * UInt64(big.count) else { throw ValidationError("rank 1 read \(count) bytes summing to \(sum) from the shared array") }
                report(Case(name: "100 MiB SharedArray put on rank 0, got on rank 1", value: Double(100 << 20) / first / 1e9, unit: "GB/s",
                            target: share(first) + "; copied into rank 0's arena, read in place; target ≥ 80%"))
                report(Case(name: "…then summed on rank 1 (its first pass)", value: Double(100 << 20) / summed / 1e9, unit: "GB/s",
                            target: share(summed) + " (a sum reads, a memcpy reads and writes; the first pass faults in rank 1's mapping)"))
            }
            let ref = runtime.put(big)
            // The first read copies straight from rank 0's memory (cross-memory attach); the second
            // also puts a copy into rank 0's shared arena, where later reads find it.
            var seconds: [Double] = []
            for _ in 0..<6 {
                let start = MonotonicClock.now()
                _ = try await runtime.get(try runtime.submit(length, .ref(ref), options: TaskOptions(rank: 1)))
                seconds.append(Double(MonotonicClock.now() - start) / 1e9)
            }
            // The read that copies into the arena: the first without cross-memory attach, the second with it.
            let copyingRead = runtime.sameHostTransfer == .crossMemory ? 1 : 0
            for (read, name, time) in [(0, "first", seconds[0]), (1, "second", seconds[1]), (2, "best later", seconds.dropFirst(2).min()!)] {
                let via =
                    runtime.sameHostTransfer == .messages ? "MPI messages"
                    : read < copyingRead ? "cross-memory attach" : read == copyingRead ? "copied into the arena, read there" : "the arena"
                report(Case(name: "100 MiB [UInt8] put on rank 0, \(name) copy on rank 1", value: Double(100 << 20) / time / 1e9, unit: "GB/s",
                            target: share(time) + "; via \(via)"))
            }
        }
        runtime.shutdown()
        session.finish()
    }

    /// Operations per second of `body` run `count` times one after another.
    func rate(_ count: Int, _ body: (Int) async throws -> Void) async throws -> Double {
        for i in 0..<min(count / 10, 1000) { try await body(i) }
        let start = MonotonicClock.now()
        for i in 0..<count { try await body(i) }
        return Double(count) / (Double(MonotonicClock.now() - start) / 1e9)
    }

    /// Operations per second of `body(n)`, best of three.
    func batchRate(_ n: Int, _ body: (Int) async throws -> Void) async throws -> Double {
        var best = 0.0
        for _ in 0..<3 {
            let start = MonotonicClock.now()
            try await body(n)
            best = max(best, Double(n) / (Double(MonotonicClock.now() - start) / 1e9))
        }
        return best
    }

    static func memcpySeconds(bytes: Int) -> Double {
        let source = UnsafeMutableRawPointer.allocate(byteCount: bytes, alignment: 64)
        let target = UnsafeMutableRawPointer.allocate(byteCount: bytes, alignment: 64)
        defer { source.deallocate(); target.deallocate() }
        source.initializeMemory(as: UInt8.self, repeating: 1, count: bytes)
        target.initializeMemory(as: UInt8.self, repeating: 0, count: bytes)
        var best = Double.infinity
        for _ in 0..<5 {
            let start = MonotonicClock.now()
            target.copyMemory(from: source, byteCount: bytes)
            best = min(best, Double(MonotonicClock.now() - start) / 1e9)
        }
        return best
    }

    /// Strong scaling (fixed work over 1…W workers) and weak scaling (work grows with W) of
    /// CPU-bound tasks; writes an SVG of the speedups.
    func scaling(cases: inout [Case]) async throws {
        let maxWorkers = max(workers, 1)
        let tasks = 64
        let spin = runtime_spin
        var strong: [(Double, Double)] = [], weak: [(Double, Double)] = []
        var strongBase = 0.0, weakBase = 0.0
        if !json { print("\nscaling (64 CPU-bound tasks):") }
        for w in 1...maxWorkers {
            for (label, count) in [("strong", tasks), ("weak", tasks / maxWorkers * w)] {
                let runtime = Runtime(workers: w)
                let work = runtime.register("work") { (n: Int) in spin(n) }
                let start = MonotonicClock.now()
                let refs = try (0..<count).map { _ throws(RuntimeError) in try runtime.submit(work, .value(8_000_000)) }
                _ = try await runtime.get(refs)
                let seconds = Double(MonotonicClock.now() - start) / 1e9
                runtime.shutdown()
                if label == "strong" {
                    if w == 1 { strongBase = seconds }
                    strong.append((Double(w), strongBase / seconds))
                    if !json { print(String(format: "  %d workers: strong %.1f ms (speedup %.2f×)", w, seconds * 1e3, strongBase / seconds), terminator: "") }
                } else {
                    if w == 1 { weakBase = seconds }
                    weak.append((Double(w), weakBase / seconds * Double(w)))
                    if !json { print(String(format: ", weak %.1f ms (scaled speedup %.2f×)", seconds * 1e3, weakBase / seconds * Double(w))) }
                }
            }
        }
        try FileManager.default.createDirectory(atPath: output, withIntermediateDirectories: true)
        let svg = SVGPlot.logLog(
            title: "task runtime scaling (\(tasks) CPU-bound tasks)", xLabel: "workers", yLabel: "speedup",
            series: [
                SVGPlot.Series(name: "strong", points: strong, dashed: false), SVGPlot.Series(name: "weak (scaled)", points: weak, dashed: false),
                SVGPlot.Series(name: "ideal", points: (1...maxWorkers).map { (Double($0), Double($0)) }, dashed: true),
            ])
        try svg.write(toFile: "\(output)/tasks-scaling.svg", atomically: true, encoding: .utf8)
        if !json { print("wrote \(output)/tasks-scaling.svg") }
    }
}

/// About `n` iterations of dependent arithmetic the optimiser cannot remove.
let runtime_spin: @Sendable (Int) -> Int = { n in
    var x = 1
    for i in 0..<n { x = x &* 6_364_136_223_846_793_005 &+ i }
    return x
}

/// The sum of `bytes` as unsigned numbers, 32 at a time: pairs of bytes add into the 16-bit fields
/// of four words, which take 128 words (at most 32 · 510 per field) before they are emptied.
func byteSum(_ bytes: UnsafeRawBufferPointer) -> UInt64 {
    let mask: UInt64 = 0x00FF_00FF_00FF_00FF
    let words = bytes.count / 8
    var total: UInt64 = 0
    var start = 0
    while start < words {
        let end = min(start + 128, words)
        var lanes = SIMD4<UInt64>(repeating: 0)
        var index = start
        while index + 4 <= end {
            let w = SIMD4<UInt64>(
                bytes.loadUnaligned(fromByteOffset: index * 8, as: UInt64.self), bytes.loadUnaligned(fromByteOffset: index * 8 + 8, as: UInt64.self),
                bytes.loadUnaligned(fromByteOffset: index * 8 + 16, as: UInt64.self), bytes.loadUnaligned(fromByteOffset: index * 8 + 24, as: UInt64.self))
            lanes &+= (w & mask) &+ ((w &>> 8) & mask)
            index += 4
        }
        while index < end {
            let w = bytes.loadUnaligned(fromByteOffset: index * 8, as: UInt64.self)
            lanes[0] &+= (w & mask) &+ ((w &>> 8) & mask)
            index += 1
        }
        for lane in 0..<4 {
            let v = lanes[lane]
            total &+= (v & 0xFFFF) &+ ((v >> 16) & 0xFFFF) &+ ((v >> 32) & 0xFFFF) &+ (v >> 48)
        }
        start = end
    }
    for index in (words * 8)..<bytes.count { total &+= UInt64(bytes[index]) }
    return total
}
