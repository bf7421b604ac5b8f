import Testing
import Foundation
import Synchronization
import SkeinRuntime
import SkeinTestSupport

/// A counter tasks can bump from any thread.
final class Counter: Sendable {
    private let value = Mutex(0)
    @discardableResult func increment() -> Int { value.withLock { $0 += 1; return $0 } }
    var count: Int { value.withLock { $0 } }
}

struct InjectedFailure: Error, CustomStringConvertible {
    let attempt: Int
    var description: String { "injected failure on attempt \(attempt)" }
}

/// Node `i` of a random DAG: a pure function of its index and its inputs' values.
func nodeValue(_ index: Int, _ inputs: [Int]) -> Int {
    inputs.reduce(index &* 1_000_003) { ($0 &* 31) &+ $1 } & 0x7FFF_FFFF
}

@Suite("Task runtime: tasks, refs, actors, failures, the store", .timeLimit(.minutes(5)))
struct RuntimeTests {
    @Test("Random DAGs give what running the same functions one by one gives", arguments: [1, 2, 3, 4, 5, 6])
    func randomDAGs(seed: UInt64) async throws {
        var rng = SeededGenerator(seed: seed)
        let count = 60 + Int(rng.next() % 100)
        let workers = 1 + Int(rng.next() % 4)
        let runtime = Runtime(workers: workers)
        defer { runtime.shutdown() }
        // Functions of 0 to 3 inputs; each sleeps a random few microseconds first.
        let f0 = runtime.register("node0") { (i: Int, micros: Int) -> Int in
            if micros > 0 { try await Task.sleep(for: .microseconds(micros)) }
            return nodeValue(i, [])
        }
        let f1 = runtime.register("node1") { (i: Int, micros: Int, a: Int) -> Int in
            if micros > 0 { try await Task.sleep(for: .microseconds(micros)) }
            return nodeValue(i, [a])
        }
        let f2 = runtime.register("node2") { (i: Int, micros: Int, a: Int, b: Int) -> Int in
            if micros > 0 { try await Task.sleep(for: .microseconds(micros)) }
            return nodeValue(i, [a, b])
        }
        let f3 = runtime.register("node3") { (i: Int, micros: Int, a: Int, b: Int, c: Int) -> Int in
            if micros > 0 { try await Task.sleep(for: .microseconds(micros)) }
            return nodeValue(i, [a, b, c])
        }
        var refs: [ObjectRef<Int>] = []
        var expected: [Int] = []
        for index in 0..<count {
            let fanIn = index == 0 ? 0 : Int(rng.next() % UInt64(min(index, 3) + 1))
            let inputs = (0..<fanIn).map { _ in Int(rng.next() % UInt64(index)) }
            let micros = Int(rng.next() % 200)
            expected.append(nodeValue(index, inputs.map { expected[$0] }))
            let i = Arg.value(index), m = Arg.value(micros)
            switch inputs.count {
            case 0: refs.append(try runtime.submit(f0, i, m))
            case 1: refs.append(try runtime.submit(f1, i, m, .ref(refs[inputs[0]])))
            case 2: refs.append(try runtime.submit(f2, i, m, .ref(refs[inputs[0]]), .ref(refs[inputs[1]])))
            default: refs.append(try runtime.submit(f3, i, m, .ref(refs[inputs[0]]), .ref(refs[inputs[1]]), .ref(refs[inputs[2]])))
            }
        }
        let got = try await runtime.get(refs)
        #expect(got == expected, "seed \(seed): \(count) nodes on \(workers) workers")
        let summary = runtime.summary()
        #expect(summary.tasks == count, "seed \(seed)")
        #expect(summary.peakParallelism >= 1 && summary.peakParallelism <= workers, "seed \(seed): peak \(summary.peakParallelism) on \(workers) workers")
        refs.removeAll()
        #expect(runtime.store.objects == 0 && runtime.store.bytes == 0, "seed \(seed): the store still holds \(runtime.store)")
    }

    @Test("Actor calls run one at a time in submission order, even when their inputs arrive out of order")
    func actorOrder() async throws {
        final class Log { var entries: [Int] = []; var active = 0; var overlapped = false }
        let runtime = Runtime(workers: 2)
        defer { runtime.shutdown() }
        let slow = runtime.register("slow") { (value: Int, micros: Int) -> Int in
            try await Task.sleep(for: .microseconds(micros))
            return value
        }
        let log = runtime.makeActor("log") { Log() }
        var rng = SeededGenerator(seed: 11)
        var results: [ObjectRef<Int>] = []
        for index in 0..<200 {
            let input = try runtime.submit(slow, .value(index), .value(Int(rng.next() % 300)))
            results.append(try log.call("append", { (log: Log, value: Int) -> Int in
                log.active += 1
                if log.active > 1 { log.overlapped = true }
                await Task.yield()
                log.entries.append(value)
                log.active -= 1
                return log.entries.count
            }, .ref(input)))
        }
        let counts = try await runtime.get(results)
        #expect(counts == Array(1...200))
        let entries = try await runtime.get(try log.call("read", { (log: Log) in log.entries }))
        #expect(entries == Array(0..<200))
        #expect(try await runtime.get(try log.call("overlapped", { (log: Log) in log.overlapped })) == false)
    }

    @Test("Actors of registered classes: calls keep their order per actor, arguments may be refs, and a dropped handle frees the state",
          arguments: [UInt64(21), 22])
    func registeredActors(seed: UInt64) async throws {
        final class Account { var balance = 0; var history: [Int] = [] }
        let runtime = Runtime(workers: 2)
        defer { runtime.shutdown() }
        let slow = runtime.register("slowValue") { (value: Int, micros: Int) -> Int in
            try await Task.sleep(for: .microseconds(micros))
            return value
        }
        let account = runtime.registerActor("Account") { Account() }
        let deposit = runtime.method(account, "deposit") { (a: Account, amount: Int) -> Int in
            a.balance += amount
            a.history.append(amount)
            return a.balance
        }
        let history = runtime.method(account, "history") { (a: Account) -> [Int] in a.history }
        var rng = SeededGenerator(seed: seed)
        do {
            let actors = try (0..<3).map { _ in try runtime.makeActor(account) }
            var expected = [[Int]](repeating: [], count: 3)
            var balances: [(Int, ObjectRef<Int>)] = []
            for _ in 0..<150 {
                let k = Int(rng.next() % 3), amount = Int(rng.next() % 100) + 1
                // Half the amounts arrive through refs of tasks that finish out of order.
                let ref = rng.next() % 2 == 0
                    ? try actors[k].call(deposit, .value(amount))
                    : try actors[k].call(deposit, .ref(try runtime.submit(slow, .value(amount), .value(Int(rng.next() % 200)))))
                expected[k].append(amount)
                balances.append((expected[k].reduce(0, +), ref))
            }
            for (want, ref) in balances { #expect(try await runtime.get(ref) == want, "seed \(seed)") }
            for k in 0..<3 { #expect(try await runtime.get(try actors[k].call(history)) == expected[k], "seed \(seed), actor \(k)") }
            // Swift may release `actors` right after its last use, and a drop frees a state: hold them.
            withExtendedLifetime(actors) { #expect(runtime.actorStatesHeld == 3, "seed \(seed)") }
        }
        // The handles are gone: each actor's drop runs after its last call.
        for _ in 0..<2000 where runtime.actorStatesHeld > 0 { try await Task.sleep(for: .milliseconds(1)) }
        #expect(runtime.actorStatesHeld == 0, "seed \(seed)")
    }

    @Test("Retries recover injected failures; without enough retries the task's error and name come back")
    func retries() async throws {
        let runtime = Runtime(workers: 2)
        defer { runtime.shutdown() }
        let attempts = Counter()
        let flaky = runtime.register("flaky") { (failures: Int) -> Int in
            let attempt = attempts.increment()
            if attempt <= failures { throw InjectedFailure(attempt: attempt) }
            return attempt
        }
        #expect(try await runtime.get(try runtime.submit(flaky, 2, options: TaskOptions(retries: 2, retryErrors: true))) == 3)

        let again = Counter()
        let failing = runtime.register("failing") { (_: Int) -> Int in throw InjectedFailure(attempt: again.increment()) }
        let double = runtime.register("double") { (x: Int) in 2 * x }
        let failed = try runtime.submit(failing, 1, options: TaskOptions(retries: 1, retryErrors: true, name: "failing-task"))
        let dependent = try runtime.submit(double, .ref(failed))
        for ref in [failed, dependent] {
            do {
                _ = try await runtime.get(ref)
                Issue.record("get of a failed task's result returned")
            } catch {
                #expect(error.code == .taskFailed)
                #expect(error.task == "failing-task")
                #expect((error.underlying as? InjectedFailure)?.attempt == 2)
            }
        }
        // Thrown errors are not retried unless asked.
        let once = Counter()
        let thrower = runtime.register("thrower") { (_: Int) -> Int in throw InjectedFailure(attempt: once.increment()) }
        _ = try? await runtime.get(try runtime.submit(thrower, 0, options: TaskOptions(retries: 3)))
        #expect(once.count == 1)
    }

    @Test("A lost worker's objects are rebuilt from their lineage")
    func lineage() async throws {
        let runtime = Runtime(workers: 2)
        defer { runtime.shutdown() }
        let runs = Counter()
        let make = runtime.register("make") { (n: Int) -> [Double] in
            runs.increment()
            return (0..<n).map(Double.init)
        }
        let scale = runtime.register("scale") { (values: [Double], factor: Double) -> [Double] in
            runs.increment()
            return values.map { $0 * factor }
        }
        let base = try runtime.submit(make, 1000)
        let scaled = try runtime.submit(scale, .ref(base), .value(2.0))
        let first = try await runtime.get(scaled)
        #expect(runs.count == 2)
        for worker in 0..<runtime.workers { runtime.simulateWorkerFailure(worker) }
        let rebuilt = try await runtime.get(scaled)
        #expect(rebuilt == first)
        #expect(runs.count == 4, "both tasks of the lineage ran again")
        // A put object has no lineage but lives with the driver: a worker's loss does not touch it.
        let kept = runtime.put([1, 2, 3])
        runtime.simulateWorkerFailure(0)
        #expect(try await runtime.get(kept) == [1, 2, 3])
    }

    @Test("The store frees what no ref reaches; accounting returns to zero")
    func freeing() async throws {
        let runtime = Runtime(workers: 2)
        defer { runtime.shutdown() }
        var refs: [ObjectRef<[Float]>] = []
        for index in 0..<1000 { refs.append(runtime.put([Float](repeating: Float(index), count: 256))) }
        #expect(runtime.store.objects == 1000 && runtime.store.bytes == 1000 * 256 * 4)
        let sum = runtime.register("sum") { (values: [Float]) in values.reduce(0, +) }
        var sums: [ObjectRef<Float>] = []
        for ref in refs.prefix(100) { sums.append(try runtime.submit(sum, .ref(ref))) }
        refs.removeAll()  // the 100 still needed by tasks (or lineage of their results) stay
        let values = try await runtime.get(sums)
        #expect(values == (0..<100).map { Float($0 * 256) })
        #expect(runtime.store.objects == 200)  // 100 sums + the 100 inputs their lineage pins
        sums.removeAll()
        #expect(runtime.store.objects == 0 && runtime.store.bytes == 0, "left: \(runtime.store)")
        // The untyped path counts alike: its input stays pinned by lineage until its result goes.
        var untyped: AnyObjectRef? = try runtime.submit(named: "sum", [runtime.put([Float](repeating: 2, count: 4))])
        #expect(try await runtime.get(untyped!) as? Float == 8)
        #expect(runtime.store.objects == 2)
        untyped = nil
        #expect(runtime.store.objects == 0 && runtime.store.bytes == 0, "left: \(runtime.store)")
    }

    @Test("A SharedArray is the caller's array, read in place by tasks, counted and spilled like one", arguments: [UInt64(1), 2, 3])
    func sharedArrays(seed: UInt64) async throws {
        var rng = SeededGenerator(seed: seed)
        let values = (0..<(1 + Int(rng.next() % 300_000))).map { _ in Int32(truncatingIfNeeded: rng.next()) }
        let shared = SharedArray(values)
        #expect(Array(shared) == values && shared.count == values.count, "seed \(seed)")
        #expect(shared.reduce(0, &+) == values.reduce(0, &+), "seed \(seed)")
        let index = Int(rng.next() % UInt64(values.count))
        #expect(shared[index] == values[index], "seed \(seed): element \(index)")
        // The same memory, not a copy.
        let arrayBase = values.withUnsafeBufferPointer { $0.baseAddress }
        #expect(shared.withUnsafeBufferPointer { $0.baseAddress } == arrayBase, "seed \(seed)")
        let runtime = Runtime(workers: 2, memoryLimit: values.count * 4 + 16,
                              spillDirectory: URL(fileURLWithPath: try scratchDirectory("skein-shared-array")))
        defer { runtime.shutdown() }
        let address = runtime.register("address") { (view: SharedArray<Int32>) in UInt(bitPattern: view.withUnsafeBufferPointer { $0.baseAddress }) }
        let ref = runtime.put(shared)
        #expect(runtime.store.bytes == values.count * 4, "seed \(seed): counted by its bytes")
        #expect(try await runtime.get(try runtime.submit(address, .ref(ref))) == UInt(bitPattern: arrayBase), "seed \(seed): a task read a copy")
        // A second one over the limit spills the first, which comes back whole.
        let second = runtime.put(SharedArray(values.reversed()))
        #expect(runtime.store.spilledBytes == values.count * 4, "seed \(seed)")
        let (first, back) = (try await runtime.get(ref), try await runtime.get(second))
        #expect(Array(first) == values && Array(back) == values.reversed(), "seed \(seed)")
    }

    @Test("Past its memory limit the store spills arrays to disk and reads them back")
    func spilling() async throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("skein-spill-test-\(UInt32.random(in: 0...UInt32.max))")
        let runtime = Runtime(workers: 2, memoryLimit: 1 << 20, spillDirectory: directory)
        defer { runtime.shutdown() }
        do {
            var refs: [ObjectRef<[Int64]>] = []
            for index in 0..<8 { refs.append(runtime.put([Int64](repeating: Int64(index), count: 64 << 10))) }  // 512 KiB each
            #expect(runtime.store.bytes <= 1 << 20)
            #expect(runtime.store.spilledBytes >= 6 * (512 << 10))
            let total = runtime.register("total") { (values: [Int64]) in values.reduce(0, +) }
            let totals = try refs.map { ref throws(RuntimeError) in try runtime.submit(total, .ref(ref)) }
            #expect(try await runtime.get(totals) == (0..<8).map { Int64($0) * Int64(64 << 10) })
            #expect(try await runtime.get(refs[0]) == [Int64](repeating: 0, count: 64 << 10))
        }
        // Every ref (and the tasks' lineage pinning their inputs) is gone at the end of the scope,
        // in debug builds too, where locals live to the end of their scope.
        let left = try FileManager.default.contentsOfDirectory(atPath: directory.path)
        #expect(left.isEmpty, "spill files left: \(left)")
    }

    @Test("A worker lost while its task runs: retried if allowed, else .workerLost; a freed object says so")
    func lostWorkers() async throws {
        let runtime = Runtime(workers: 2)
        defer { runtime.shutdown() }
        let started = Counter()
        let slow = runtime.register("slow") { (millis: Int) -> Int in
            started.increment()
            try await Task.sleep(for: .milliseconds(millis))
            return millis
        }
        for retries in [0, 1] {
            let before = started.count
            let ref = try runtime.submit(slow, 50, options: TaskOptions(retries: retries, name: "slow-\(retries)"))
            while started.count == before { await Task.yield() }
            for worker in 0..<runtime.workers { runtime.simulateWorkerFailure(worker) }
            do {
                let value = try await runtime.get(ref)
                #expect(retries == 1 && value == 50, "a lost run without retries returned")
            } catch {
                #expect(retries == 0 && error.code == .workerLost && error.task == "slow-0", "\(error)")
            }
        }
        let kept = runtime.put([1.0, 2.0])
        runtime.free(kept)
        #expect(runtime.store.bytes == 0)
        do {
            _ = try await runtime.get(kept)
            Issue.record("get of a freed object returned")
        } catch {
            #expect(error.code == .freedObject)
        }
    }

    @Test("A store far over its limit with nothing it can spill still finishes the graph")
    func fullStore() async throws {
        let runtime = Runtime(workers: 2, memoryLimit: 1)
        defer { runtime.shutdown() }
        let words = runtime.register("words") { (n: Int) in (0..<n).map { "word \($0)" } }
        let count = runtime.register("count") { (words: [String]) in words.count }
        let refs = try (0..<50).map { n throws(RuntimeError) in try runtime.submit(count, .ref(try runtime.submit(words, .value(n)))) }
        #expect(try await runtime.get(refs) == Array(0..<50))
    }

    @Test("A ready task runs on the worker that holds its input")
    func locality() async throws {
        let runtime = Runtime(workers: 2)
        defer { runtime.shutdown() }
        let make = runtime.register("make") { (n: Int) in [Double](repeating: 1, count: n) }
        let step = runtime.register("step") { (values: [Double]) in values.map { $0 + 1 } }
        // Two independent chains of 1 MiB arrays: each link should stay on its chain's worker.
        var chains = [try runtime.submit(make, .value(1 << 17)), try runtime.submit(make, .value(1 << 17))]
        for _ in 0..<10 {
            chains = try chains.map { ref throws(RuntimeError) in try runtime.submit(step, .ref(ref)) }
        }
        _ = try await runtime.get(chains)
        let json = try JSONSerialization.jsonObject(with: Data(runtime.timelineJSON().utf8)) as? [String: Any]
        let slices = ((json?["traceEvents"] as? [[String: Any]]) ?? []).filter { $0["ph"] as? String == "X" }
        var rowOf: [Int: Int] = [:]  // object → timeline row
        var moved = 0
        for slice in slices {
            let args = slice["args"] as? [String: Any]
            guard let object = args?["object"] as? Int, let row = slice["tid"] as? Int else { continue }
            for input in (args?["inputs"] as? [Int]) ?? [] where rowOf[input] != nil && rowOf[input] != row { moved += 1 }
            rowOf[object] = row
        }
        #expect(moved <= 2, "\(moved) of 20 links ran away from their input's worker")
    }

    @Test("Tasks may submit tasks and wait for them, even on one worker")
    func nested() async throws {
        let runtime = Runtime(workers: 1)
        defer { runtime.shutdown() }
        let leaf = runtime.register("leaf") { (x: Int) in x * x }
        let parent = runtime.register("parent") { (n: Int) -> Int in
            var refs: [ObjectRef<Int>] = []
            for i in 0..<n { refs.append(try runtime.submit(leaf, .value(i))) }
            return try await runtime.get(refs).reduce(0, +)
        }
        #expect(try await runtime.get(try runtime.submit(parent, 10)) == 285)
    }

    @Test("wait returns the first k ready, and a timeout")
    func waiting() async throws {
        let runtime = Runtime(workers: 2)
        defer { runtime.shutdown() }
        let nap = runtime.register("nap") { (millis: Int) -> Int in
            try await Task.sleep(for: .milliseconds(millis))
            return millis
        }
        // The last task outlives the test: the timeouts below cannot depend on how busy the machine is.
        let refs = try [1, 2, 3, 600_000].map { millis throws(RuntimeError) in try runtime.submit(nap, .value(millis)) }
        let (ready, pending) = await runtime.wait(refs, count: 2)
        #expect(ready.count >= 2 && ready.count + pending.count == 4)
        let (none, all) = await runtime.wait([refs[3]], count: 1, timeout: .milliseconds(20))
        #expect(none.isEmpty && all.count == 1)
        // Refs of different types together.
        let text = runtime.put("done")
        let (mixedReady, mixedPending) = await runtime.wait([text.untyped, refs[0].untyped, refs[3].untyped], count: 2)
        #expect(mixedReady.map(\.id) == [text.id, refs[0].id] && mixedPending.map(\.id) == [refs[3].id])
        do {
            _ = try await runtime.get(refs[3], timeout: .milliseconds(20))
            Issue.record("get returned before the task ended")
        } catch {
            #expect(error.code == .timeout)
        }
    }

    @Test("Bad input gives typed errors that say what and where")
    func badInput() async throws {
        let runtime = Runtime(workers: 2)
        let other = Runtime(workers: 1)
        defer { runtime.shutdown(); other.shutdown() }
        let double = runtime.register("double") { (x: Int) in 2 * x }
        #expect(throws: RuntimeError.self) { _ = try runtime.submit(named: "tripple", [3]) }
        do { _ = try runtime.submit(named: "tripple", [3]) } catch {
            #expect(error.code == .unregisteredFunction && error.message.contains("double"))
        }
        // Wrong argument type through the untyped path: the task fails saying which argument.
        let wrong = try runtime.submit(named: "double", ["three"])
        do {
            _ = try await runtime.get(wrong)
            Issue.record("a String passed for an Int ran")
        } catch {
            #expect(error.code == .wrongArgumentType && error.message.contains("argument 1"))
        }
        // A ref from another runtime.
        let foreign = other.put(5)
        do {
            _ = try runtime.submit(double, .ref(foreign))
            Issue.record("a foreign ref was accepted")
        } catch {
            #expect(error.code == .foreignReference)
        }
        // An actor call waiting for a later call of the same actor can never be served.
        final class Box {}
        let actor = runtime.makeActor("cyclic") { Box() }
        let outer = try actor.call("outer", { (_: Box) -> Int in
            let inner = try actor.call("inner", { (_: Box) in 1 })
            return try await runtime.get(inner)
        })
        do {
            _ = try await runtime.get(outer)
            Issue.record("the cyclic call returned")
        } catch {
            #expect(error.code == .dependencyCycle, "\(error)")
        }
        // Too many CPUs.
        do {
            _ = try runtime.submit(double, 1, options: TaskOptions(cpus: 3))
            Issue.record("a 3-CPU task was accepted by a 2-worker runtime")
        } catch {
            #expect(error.message.contains("3 CPUs"))
        }
    }

    @Test("The timeline is Chrome trace JSON with a slice per task; the summary sees the critical path")
    func timeline() async throws {
        let runtime = Runtime(workers: 2)
        defer { runtime.shutdown() }
        let work = runtime.register("work") { (millis: Int, previous: Int) -> Int in
            try await Task.sleep(for: .milliseconds(millis))
            return previous + 1
        }
        var chain = try runtime.submit(work, 5, 0)
        for _ in 0..<3 {
            let next: ObjectRef<Int> = try runtime.submit(work, Arg.value(5), Arg.ref(chain))
            chain = next
        }
        let side = try (0..<4).map { _ throws(RuntimeError) in try runtime.submit(work, .value(1), .value(0)) }
        #expect(try await runtime.get(chain) == 4)
        _ = try await runtime.get(side)
        let json = try JSONSerialization.jsonObject(with: Data(runtime.timelineJSON().utf8)) as? [String: Any]
        let events = (json?["traceEvents"] as? [[String: Any]]) ?? []
        #expect(events.filter { $0["ph"] as? String == "X" }.count == 8)
        let summary = runtime.summary()
        #expect(summary.tasks == 8)
        #expect(summary.criticalPath >= 0.020, "four 5 ms tasks in a chain: \(summary)")
        #expect(summary.criticalPath <= summary.makespan + 1e-6)
    }
}
