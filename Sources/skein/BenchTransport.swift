import ArgumentParser
import Foundation
import Synchronization
import SkeinCore
import SkeinTransports
import SkeinCollectives

/// Ping-pong latency of the in-process transport beside the machine's floor: two threads
/// handing a counter back and forth through one atomic, measured in the same run.
struct BenchTransport: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "transport", abstract: "In-process ping-pong latency beside a raw two-thread atomic ping-pong.")

    @Option(help: "Round trips.") var roundTrips = 200_000
    @Option(help: "Calls per small-message collective loop.") var calls = 100_000
    @Option(help: "Comma-separated rank counts for the collective loops (1 measures pure per-call overhead).") var ranks = "1,2,4"
    @Flag(help: "Keep every core busy with a spinning thread while measuring.") var busy = false

    final class Flags: Sendable {
        let ping = Atomic<Int>(0)
        let pong = Atomic<Int>(0)
    }

    static func atomicFloor(_ n: Int) -> Double {
        let flags = Flags()
        let done = DispatchSemaphore(value: 0)
        let peer = Thread {
            for i in 1...n {
                while flags.ping.load(ordering: .acquiring) != i {}
                flags.pong.store(i, ordering: .releasing)
            }
            done.signal()
        }
        peer.start()
        let t0 = MonotonicClock.now()
        for i in 1...n {
            flags.ping.store(i, ordering: .releasing)
            while flags.pong.load(ordering: .acquiring) != i {}
        }
        let seconds = Double(MonotonicClock.now() - t0) / 1e9
        done.wait()
        return seconds / Double(n) / 2
    }

    /// Seconds per call of `body` on `ranks` in-process ranks: the median, over `blocks` blocks of
    /// back-to-back calls, of each block's mean on its slowest rank (a median resists the machine's
    /// hiccups, which a single mean of all calls absorbs).
    static func loop(
        ranks: Int, calls: Int, blocks: Int = 9, _ body: @escaping @Sendable (Communicator) async throws(SkeinError) -> Void
    ) async throws -> Double {
        let perBlock = max(calls / blocks, 1)
        let outcomes = await InProcessGroup.run(size: ranks) { t -> [Double] in
            let comm = Communicator(transport: t)
            for _ in 0..<1000 { try await body(comm) }
            var means: [Double] = []
            for _ in 0..<blocks {
                try await comm.barrier()
                let t0 = MonotonicClock.now()
                for _ in 0..<perBlock { try await body(comm) }
                means.append(Double(MonotonicClock.now() - t0) / 1e9 / Double(perBlock))
            }
            return means
        }
        let perRank = try outcomes.map { try $0.get() }
        let slowest = (0..<blocks).map { block in perRank.map { $0[block] }.max()! }.sorted()
        return slowest[blocks / 2]
    }

    func run() async throws {
        let n = roundTrips
        let stopBusy = busy ? BusyCores.start(count: ProcessInfo.processInfo.activeProcessorCount) : nil
        defer { stopBusy?() }
        if busy { print("every core kept busy by a spinning thread") }
        let floor = Self.atomicFloor(n)
        let outcomes = await InProcessGroup.run(size: 2) { t -> Double in
            let tag = Tag(context: 0, sequence: 1)
            let signature = CallSignature(operation: .pointToPoint, algorithm: 0, dataType: .int64, reduceOp: .sum, root: 0, count: 1, sequence: 1)
            let message = Message(signature: signature, skew: ArrivalSkew(rank: t.rank, entry: 0), chunks: Chunk.partition([Int64(1)], into: 1))
            let t0 = MonotonicClock.now()
            for _ in 0..<n {
                if t.rank == 0 {
                    try t.send(message, to: 1, tag: tag)
                    _ = try await t.receive(from: 1, tag: tag, deadline: .max)
                } else {
                    _ = try await t.receive(from: 0, tag: tag, deadline: .max)
                    try t.send(message, to: 0, tag: tag)
                }
            }
            return Double(MonotonicClock.now() - t0) / 1e9 / Double(n) / 2
        }
        let skein = try outcomes[0].get()
        print(String(format: "one-way latency, 8 B: in-process transport %.0f ns; raw atomic floor %.0f ns; ratio %.1f×",
                     skein * 1e9, floor * 1e9, skein / floor))
        for ranks in ranks.split(separator: ",").compactMap({ Int($0) }) where ranks >= 1 {
            let calls = ranks <= 2 ? self.calls : self.calls / 10
            let values = [Float](repeating: 1, count: 2)
            // The shared-memory board alone: one publish and wait, no communicator around it.
            let board = try await Self.loop(ranks: ranks, calls: calls) { comm throws(SkeinError) in
                try await comm.sharedMemoryRound()
            }
            let allreduce = try await Self.loop(ranks: ranks, calls: calls) { comm throws(SkeinError) in
                _ = try await comm.allreduce(values)
            }
            let inPlace = try await Self.loop(ranks: ranks, calls: calls) { comm throws(SkeinError) in
                var buffer = values
                try await comm.allreduce(&buffer)
            }
            let barrier = try await Self.loop(ranks: ranks, calls: calls) { comm throws(SkeinError) in try await comm.barrier() }
            print(String(format: "p = %d: 8 B allreduce %.2f µs (in place %.2f µs), barrier %.2f µs; bare shared-memory round %.2f µs (median of 9 blocks of %d calls)",
                         ranks, allreduce * 1e6, inPlace * 1e6, barrier * 1e6, board * 1e6, calls / 9))
        }
    }
}
