import Testing
import SkeinCore
import SkeinCollectives
import SkeinTestSupport

@Suite("The in-process transport under load", .timeLimit(.minutes(5)))
struct StressTests {
    static let calls = 20_000

    @Test("Concurrent groups of oversubscribed ranks lose no message and no wake-up")
    func concurrentGroups() async throws {
        try await withThrowingTaskGroup(of: Void.self) { groups in
            for index in 0..<12 {
                groups.addTask {
                    let p = 2 + index % 4
                    let sums = try await runGroupOrThrow(.inProcess, size: p, timeout: .seconds(20)) { comm -> [Int32] in
                        var sum: [Int32] = []
                        for call in 0..<StressTests.calls {
                            let values = [Int32](repeating: Int32(comm.rank + call % 7), count: 5)
                            sum = try await comm.allreduce(values, algorithm: call % 2 == 0 ? RingAllreduce() : RecursiveDoublingAllreduce())
                        }
                        return sum
                    }
                    let want = Int32((0..<p).reduce(0, +) + p * ((StressTests.calls - 1) % 7))
                    for (rank, sum) in sums.enumerated() { #expect(sum == [Int32](repeating: want, count: 5), "group \(index) rank \(rank)") }
                }
            }
            try await groups.waitForAll()
        }
    }
}
