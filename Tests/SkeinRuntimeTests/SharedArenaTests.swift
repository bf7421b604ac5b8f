import Foundation
import Synchronization
import Testing
import SkeinCore
import SkeinRuntime
import SkeinTestSupport
import SkeinTransports

/// An in-process rank that passes for a process of its own: its messages are copied, so the
/// runtime moves large objects as between MPI processes, all of one host (cross-memory attach then
/// reads this same process, which the kernel allows) or each on a host of its own.
struct ProcessLikeTransport: Transport, HostTopology {
    let inner: InProcessTransport
    var oneHost = true
    var rank: Int { inner.rank }
    var size: Int { inner.size }
    var deliversByReference: Bool { false }
    func send(_ message: Message, to peer: Int, tag: SkeinCore.Tag) throws(SkeinError) { try inner.send(message, to: peer, tag: tag) }
    func receive(from peer: Int, tag: SkeinCore.Tag, deadline: UInt64) async throws(SkeinError) -> Message {
        try await inner.receive(from: peer, tag: tag, deadline: deadline)
    }
    func abort(context: UInt32, because error: SkeinError) { inner.abort(context: context, because: error) }
    func now() -> UInt64 { inner.now() }
    func sharesHost(with peer: Int) -> Bool { oneHost }
}

/// Records every rank of `InProcessGroup.run` that failed; with `when`, each rank returned its
/// shared-memory bytes left (after waiting for late drops), which must be zero.
func checkRanks(_ outcomes: [Result<Int, any Error>], noSharedBytesLeft when: String? = nil) {
    for (rank, outcome) in outcomes.enumerated() {
        switch outcome {
        case .success(let left): if let when { #expect(left == 0, "rank \(rank) still holds \(left) bytes of shared memory \(when)") }
        case .failure(let error): Issue.record("rank \(rank): \(error)")
        }
    }
}

extension Runtime {
    /// This rank's shared-memory bytes once the drops still on their way have arrived (at most 1 s).
    func sharedBytesSettled() async throws -> Int {
        for _ in 0..<1000 where sharedBytes > 0 { try await Task.sleep(for: .milliseconds(1)) }
        return sharedBytes
    }
}

@Suite("Large objects between the ranks of a host", .timeLimit(.minutes(5)))
struct SharedArenaTests {
    @Test(
        "Large arrays reach other ranks read in place, right, copied into the arena at most once, and all freed",
        arguments: [SameHostTransfer.crossMemory, .sharedArena])
    func largeObjects(mode: SameHostTransfer) async throws {
        let outcomes = await InProcessGroup.run(size: 3) { transport -> Int in
            // A small warm region: objects are stored while its pages are still being faulted in.
            let runtime = Runtime(cluster: ProcessLikeTransport(inner: transport), workersPerRank: 1, sameHost: mode, arenaWarmBytes: 16 << 20)
            let scale = runtime.register("scale") { (values: [Double], factor: Double) -> [Double] in values.map { $0 * factor } }
            let total = runtime.register("total") { (values: [Double]) -> Double in values.reduce(0, +) }
            guard runtime.isDriver else {
                try await runtime.serve()  // throws if this rank still holds objects or shared bytes at the end
                return 0
            }
            defer { runtime.shutdown() }
            for seed in UInt64(1)...3 {
                var rng = SeededGenerator(seed: seed)
                // 1.2–2 MB: over the 1 MiB threshold. Small integers keep the sums exact.
                let values = (0..<(150_000 + Int(rng.next() % 100_000))).map { _ in Double(rng.next() % 1000) }
                let sum = values.reduce(0, +)
                let put = runtime.put(values)
                for (read, rank) in [1, 2, 1].enumerated() {
                    let got = try await runtime.get(try runtime.submit(total, .ref(put), options: TaskOptions(rank: rank)))
                    #expect(got == sum, "seed \(seed), \(mode): the put array read on rank \(rank)")
                    if read == 0 {
                        // Cross-memory attach reads the array itself the first time; the arena holds a copy at once.
                        let held = runtime.sharedBytes
                        #expect(mode == .crossMemory ? held == 0 : held >= values.count * 8, "seed \(seed), \(mode): \(held) bytes in the arena after one read")
                    }
                }
                let copies = runtime.sharedBytes
                #expect(copies >= values.count * 8 && copies < 2 * values.count * 8, "seed \(seed), \(mode): three reads of one put array made \(copies) bytes of copies")
                // A value argument, a result kept on rank 2 and fetched here, then read on rank 1.
                let scaled = try runtime.submit(scale, .value(values), .value(3.0), options: TaskOptions(rank: 2))
                #expect(try await runtime.get(scaled) == values.map { $0 * 3 }, "seed \(seed): the array made on rank 2")
                #expect(try await runtime.get(try runtime.submit(total, .ref(scaled), options: TaskOptions(rank: 1))) == sum * 3, "seed \(seed)")
                // Rank 1 read it where it lies on rank 2: none of its bytes went through rank 0.
                #expect(runtime.timelineJSON().contains("rank 2 → rank 1, \(values.count * 8) B, read in place"), "seed \(seed), \(mode)")
            }
            return try await runtime.sharedBytesSettled()
        }
        checkRanks(outcomes, noSharedBytesLeft: "at the end")
    }

    @Test("Between hosts, a large object kept on one worker is sent by it straight to the worker that reads it, never through rank 0")
    func directBetweenHosts() async throws {
        let outcomes = await InProcessGroup.run(size: 4) { transport -> Int in
            let runtime = Runtime(cluster: ProcessLikeTransport(inner: transport, oneHost: false), workersPerRank: 1)
            let make = runtime.register("make") { (count: Int, seed: Int) -> [Double] in
                var rng = SeededGenerator(seed: UInt64(seed))
                return (0..<count).map { _ in Double(rng.next() % 1000) }
            }
            let total = runtime.register("total") { (values: [Double], more: [Double]) -> Double in values.reduce(0, +) + more.reduce(0, +) }
            guard runtime.isDriver else {
                try await runtime.serve()
                return 0
            }
            defer { runtime.shutdown() }
            #expect(runtime.sameHostTransfer == .messages)
            for seed in 1...3 {
                var rng = SeededGenerator(seed: UInt64(seed))
                let (count, other) = (150_000 + Int(rng.next() % 100_000), 140_000 + Int(rng.next() % 100_000))
                // Made on ranks 2 and 3, read together on rank 1: two workers send it theirs.
                let a = try runtime.submit(make, .value(count), .value(seed), options: TaskOptions(rank: 2))
                let b = try runtime.submit(make, .value(other), .value(seed + 100), options: TaskOptions(rank: 3))
                let got = try await runtime.get(try runtime.submit(total, .ref(a), .ref(b), options: TaskOptions(rank: 1)))
                var check = SeededGenerator(seed: UInt64(seed)), checkOther = SeededGenerator(seed: UInt64(seed + 100))
                let want = (0..<count).reduce(0.0) { s, _ in s + Double(check.next() % 1000) } + (0..<other).reduce(0.0) { s, _ in s + Double(checkOther.next() % 1000) }
                #expect(got == want, "seed \(seed): the sum of two arrays sent from ranks 2 and 3 to rank 1")
                let timeline = runtime.timelineJSON()
                #expect(timeline.contains("rank 2 → rank 1, \(count * 8) B, sent directly"), "seed \(seed)")
                #expect(timeline.contains("rank 3 → rank 1, \(other * 8) B, sent directly"), "seed \(seed)")
                #expect(!timeline.contains("rank 2 → rank 0") && !timeline.contains("rank 3 → rank 0"), "seed \(seed): an array went through rank 0")
            }
            return 0
        }
        checkRanks(outcomes)
    }

    @Test("Only arrays of 1 MiB or more are read in place: one just under stays a message", arguments: [SameHostTransfer.crossMemory, .sharedArena])
    func threshold(mode: SameHostTransfer) async throws {
        let outcomes = await InProcessGroup.run(size: 2) { transport -> Int in
            let runtime = Runtime(cluster: ProcessLikeTransport(inner: transport), workersPerRank: 1, sameHost: mode, arenaWarmBytes: 0)
            let total = runtime.register("total") { (values: [Double]) -> Double in values.reduce(0, +) }
            guard runtime.isDriver else {
                try await runtime.serve()
                return 0
            }
            defer { runtime.shutdown() }
            #if os(Linux)
            #expect(runtime.sameHostTransfer == mode)
            #endif
            // Put refs keep their arena copy (made by the second read at the latest) while they
            // live, so what is held after the reads shows which of the two was read in place.
            let under = (0..<((1 << 20) / 8 - 1)).map(Double.init), at = (0..<((1 << 20) / 8)).map(Double.init)
            let refs = [runtime.put(under), runtime.put(at)]
            for (ref, values) in zip(refs, [under, at]) {
                for _ in 0..<2 {
                    #expect(try await runtime.get(try runtime.submit(total, .ref(ref), options: TaskOptions(rank: 1))) == values.reduce(0, +))
                }
            }
            #expect(runtime.sharedBytes == 1 << 20, "\(mode): only the 1 MiB array should be in the arena")
            return refs.count
        }
        #expect(try outcomes.map { try $0.get() } == [2, 0])
    }

    @Test(
        "A SharedArray argument is read in place from the arena, and a view a task keeps holds its block after the object is dropped",
        arguments: [SameHostTransfer.crossMemory, .sharedArena])
    func sharedArrayViews(mode: SameHostTransfer) async throws {
        let kept = Mutex<[Int: SharedArray<Double>]>([:])
        let outcomes = await InProcessGroup.run(size: 2) { transport -> Int in
            let runtime = Runtime(cluster: ProcessLikeTransport(inner: transport), workersPerRank: 1, sameHost: mode, arenaWarmBytes: 0)
            let keep = runtime.register("keep") { (values: SharedArray<Double>, key: Int) -> Double in
                kept.withLock { $0[key] = values }
                return values.reduce(0, +)
            }
            let keptSum = runtime.register("keptSum") { (key: Int) -> Double in kept.withLock { $0[key]?.reduce(0, +) ?? -1 } }
            let forget = runtime.register("forget") { (key: Int) -> Int in kept.withLock { $0.removeValue(forKey: key) }?.count ?? 0 }
            guard runtime.isDriver else {
                try await runtime.serve()
                return 0
            }
            defer { runtime.shutdown() }
            for seed in UInt64(1)...3 {
                var rng = SeededGenerator(seed: seed)
                let values = (0..<(150_000 + Int(rng.next() % 100_000))).map { _ in Double(rng.next() % 1000) }
                let other = values.map { -$0 - 1 }
                let (key, otherKey) = (Int(seed), Int(seed) + 100)
                do {
                    let ref = runtime.put(SharedArray(values))
                    for _ in 0..<2 {
                        let got = try await runtime.get(try runtime.submit(keep, .ref(ref), .value(key), options: TaskOptions(rank: 1)))
                        #expect(got == values.reduce(0, +), "seed \(seed), \(mode): the shared array read on rank 1")
                        // Read in place: in the arena at the first read even with cross-memory attach, copied once.
                        let held = runtime.sharedBytes
                        #expect(held >= values.count * 8 && held < 2 * values.count * 8, "seed \(seed), \(mode): \(held) bytes in the arena")
                    }
                }
                // The ref is gone, but rank 1 still views the block: it must not be reused for the next object.
                for _ in 0..<20 { await Task.yield() }
                let otherRef = runtime.put(SharedArray(other))
                #expect(try await runtime.get(try runtime.submit(keep, .ref(otherRef), .value(otherKey), options: TaskOptions(rank: 1))) == other.reduce(0, +))
                #expect(try await runtime.get(try runtime.submit(keptSum, .value(key), options: TaskOptions(rank: 1))) == values.reduce(0, +),
                        "seed \(seed), \(mode): the view rank 1 kept changed under it")
                #expect(runtime.sharedBytes >= 2 * values.count * 8, "seed \(seed), \(mode): the kept view's block was let go of")
                for k in [key, otherKey] { _ = try await runtime.get(try runtime.submit(forget, .value(k), options: TaskOptions(rank: 1))) }
            }
            return try await runtime.sharedBytesSettled()
        }
        checkRanks(outcomes, noSharedBytesLeft: "once every view is gone")
    }

    @Test("Arena copies count against the store's memory limit and are let go of before anything is spilled")
    func arenaCopiesWithinLimit() async throws {
        let limit = 5_000_000
        let outcomes = await InProcessGroup.run(size: 2) { transport -> Int in
            let runtime = Runtime(
                cluster: ProcessLikeTransport(inner: transport), workersPerRank: 1, sameHost: .sharedArena, memoryLimit: limit,
                spillDirectory: URL(fileURLWithPath: try scratchDirectory("skein-arena-limit")), arenaWarmBytes: 0)
            let total = runtime.register("total") { (values: [Double]) -> Double in values.reduce(0, +) }
            guard runtime.isDriver else {
                try await runtime.serve()
                return 0
            }
            defer { runtime.shutdown() }
            // 1.6 MB each: two objects and one arena copy fit in 5 MB, two copies do not.
            let arrays = (0..<4).map { k in (0..<200_000).map { Double(($0 &* 7 &+ k) % 1000) } }
            var refs: [ObjectRef<[Double]>] = []
            func read(_ k: Int) async throws {
                let got = try await runtime.get(try runtime.submit(total, .ref(refs[k]), options: TaskOptions(rank: 1)))
                #expect(got == arrays[k].reduce(0, +), "array \(k) read on rank 1")
                let store = runtime.store
                #expect(store.bytes <= limit, "after reading array \(k): \(store.bytes) bytes in memory, over the \(limit) limit")
            }
            refs = [runtime.put(arrays[0]), runtime.put(arrays[1])]
            for k in [0, 1, 0, 1] { try await read(k) }
            // Arena copies went first: nothing was spilled, and one copy is kept.
            #expect(runtime.store.spilledBytes == 0)
            #expect(runtime.store.bytes == 3 * 1_600_000, "two objects and one arena copy")
            // (The arena rounds blocks up to whole pages.)
            for _ in 0..<1000 where runtime.sharedBytes >= 2 * 1_600_000 { try await Task.sleep(for: .milliseconds(1)) }
            #expect(runtime.sharedBytes >= 1_600_000 && runtime.sharedBytes < 1_610_000, "the dropped copies went back to the arena")
            refs.append(runtime.put(arrays[2]))
            #expect(runtime.store.spilledBytes == 0 && runtime.store.bytes == 3 * 1_600_000, "the third object took the copy's place")
            refs.append(runtime.put(arrays[3]))
            #expect(runtime.store.spilledBytes == 1_600_000, "the fourth object spilled the oldest")
            for k in 0..<4 { try await read(k) }
            return 0
        }
        checkRanks(outcomes)
    }
}
