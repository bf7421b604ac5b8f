import Testing
import SkeinCore
import SkeinRuntime
import SkeinTestSupport
import SkeinTransports

@Suite("Actors on other ranks of a cluster runtime", .timeLimit(.minutes(5)))
struct ClusterActorTests {
    /// Calls to an actor on another rank are sent without waiting for earlier replies; the serving
    /// rank must still run them one at a time in submission order. Arguments come from tasks that
    /// finish out of order, some calls throw, and some may be retried (those wait for their reply).
    @Test("Pipelined calls to actors on other ranks keep submission order, through refs, errors and retried calls",
          arguments: [UInt64(31), 32, 33])
    func pipelinedOrder(seed: UInt64) async throws {
        let outcomes = await InProcessGroup.run(size: 3) { transport -> Int in
            let runtime = Runtime(cluster: transport, workersPerRank: 1)
            let slow = runtime.register("slowValue") { (value: Int, micros: Int) -> Int in
                try await Task.sleep(for: .microseconds(micros))
                return value
            }
            final class Ledger { var entries: [Int] = [] }
            let ledger = runtime.registerActor("Ledger") { Ledger() }
            let record = runtime.method(ledger, "record") { (l: Ledger, value: Int) -> Int in
                // A short suspension in the middle: a second call let in early would interleave here.
                if value % 7 == 0 { try await Task.sleep(for: .microseconds(50)) }
                l.entries.append(value)
                return l.entries.count
            }
            struct Refused: Error {}
            let refuse = runtime.method(ledger, "refuse") { (l: Ledger, value: Int) -> Int in
                l.entries.append(-value)
                throw Refused()
            }
            let entries = runtime.method(ledger, "entries") { (l: Ledger) -> [Int] in l.entries }
            guard runtime.isDriver else {
                try await runtime.serve()
                return 0
            }
            defer { runtime.shutdown() }
            do {
                var rng = SeededGenerator(seed: seed)
                let actors = try [1, 2, 1].map { rank throws(RuntimeError) in try runtime.makeActor(ledger, on: rank) }
                var expected = [[Int]](repeating: [], count: actors.count)
                var counts: [(actor: Int, count: Int?, ref: ObjectRef<Int>)] = []
                for value in 1...400 {
                    let k = Int(rng.next() % UInt64(actors.count))
                    let argument: Arg<Int> = rng.next() % 3 == 0
                        ? .ref(try runtime.submit(slow, .value(value), .value(Int(rng.next() % 300))))
                        : .value(value)
                    switch rng.next() % 10 {
                    case 0:
                        expected[k].append(-value)
                        counts.append((k, nil, try actors[k].call(refuse, argument)))
                    case 1:
                        expected[k].append(value)
                        counts.append((k, expected[k].count, try actors[k].call(record, argument, options: TaskOptions(retries: 1))))
                    default:
                        expected[k].append(value)
                        counts.append((k, expected[k].count, try actors[k].call(record, argument)))
                    }
                }
                for (index, call) in counts.enumerated() {
                    if let count = call.count {
                        let got = try await runtime.get(call.ref, timeout: .seconds(30))
                        #expect(got == count, "seed \(seed): call \(index) to actor \(call.actor) returned \(got), not \(count)")
                    } else {
                        do throws(RuntimeError) {
                            let got = try await runtime.get(call.ref, timeout: .seconds(30))
                            Issue.record("seed \(seed): call \(index) should have thrown; it returned \(got)")
                        } catch {
                            // The method's own error, thrown on the actor's rank, named by its call.
                            #expect(error.code == .taskFailed && "\(error)".contains("Refused"), "seed \(seed): call \(index) failed as \(error)")
                        }
                    }
                }
                for k in actors.indices {
                    let got = try await runtime.get(try actors[k].call(entries))
                    #expect(got == expected[k], "seed \(seed): actor \(k) on rank \(actors[k].rank) saw its calls out of order")
                }
            }
            // The handles are gone: each actor's drop runs on its rank after its last call. Serving
            // ranks fail `serve()` if they still hold a state at shutdown.
            for _ in 0..<2000 where runtime.store.objects > 0 { try await Task.sleep(for: .milliseconds(1)) }
            return runtime.store.objects
        }
        for (rank, outcome) in outcomes.enumerated() {
            switch outcome {
            case .success(let left): #expect(left == 0, "seed \(seed): rank 0 still holds \(left) objects")
            case .failure(let error): Issue.record("seed \(seed), rank \(rank): \(error)")
            }
        }
    }
}
