import SkeinCore
import SkeinTransports

/// Runs an algorithm's real schedules for every rank on a `VirtualNetwork` with phantom payloads,
/// in one thread: thousands of ranks and gigabyte messages in seconds, no sleeping. The times it
/// reports come from the messages the implementation actually sends.
public enum CollectiveSimulator {
    public struct Outcome: Sendable {
        /// Virtual seconds until the last rank finished.
        public var seconds: Double
        public var messages: Int
        public var bytesSent: Int
        public var clocks: [Double]
    }

    /// The per-rank element count the caller would pass for `bytes` (see `CollectiveAlgorithm`).
    public static func perRankCount(_ operation: CollectiveOperation, ranks: Int, bytes: Int, elementWidth: Int) -> Int {
        switch operation {
        case .allgather, .gather: bytes / elementWidth / ranks
        case .barrier: 0
        default: bytes / elementWidth
        }
    }

    public static func run(
        _ algorithm: any CollectiveAlgorithm, ranks p: Int, bytes: Int, model: NetworkModel, root: Int = 0,
        elementWidth: Int = 4
    ) throws(SkeinError) -> Outcome {
        let count = perRankCount(algorithm.operation, ranks: p, bytes: bytes, elementWidth: elementWidth)
        let signature = CallSignature(
            operation: algorithm.operation, algorithm: algorithm.code, dataType: .float32, reduceOp: .sum,
            root: Int32(root), count: Int64(count), sequence: 1)
        let tag = Tag(context: 0, sequence: 1)
        let reducer = Reducer(Float.self, .sum)
        var network = VirtualNetwork(size: p, model: model)
        var schedules: [Schedule] = []
        var runs: [ScheduleRun] = []
        schedules.reserveCapacity(p)
        runs.reserveCapacity(p)
        for rank in 0..<p {
            let schedule = algorithm.schedule(rank: rank, size: p, root: root)
            let input = Chunk.phantomPartition(elements: count, elementWidth: elementWidth, into: schedule.inputSlots.count)
            runs.append(ScheduleRun(schedule: schedule, input: input, signature: signature, reducer: reducer, rank: rank, entry: 0))
            schedules.append(schedule)
        }
        var next = [Int](repeating: 0, count: p)
        var waitingOn = [Int](repeating: -1, count: p)
        var ready = Array((0..<p).reversed())
        while let rank = ready.popLast() {
            let steps = schedules[rank].steps
            var pc = next[rank]
            stepping: while pc < steps.count {
                let step = steps[pc]
                let peer = Int(step.peer)
                switch step.kind {
                case .send:
                    _ = network.send(try runs[rank].outgoing(step), from: rank, to: peer, tag: tag)
                    if waitingOn[peer] == rank {
                        waitingOn[peer] = -1
                        ready.append(peer)
                    }
                case .receive, .receiveReduce:
                    guard let message = network.take(at: rank, from: peer, tag: tag) else {
                        waitingOn[rank] = peer
                        break stepping
                    }
                    let reduced = try runs[rank].accept(step, message)
                    if reduced > 0 { network.reduce(at: rank, byteCount: reduced) }
                case .move:
                    runs[rank].move(step)
                }
                pc += 1
            }
            next[rank] = pc
        }
        if let stuck = (0..<p).first(where: { next[$0] < schedules[$0].steps.count }) {
            throw SkeinError(
                .internalError, rank: stuck, peer: waitingOn[stuck],
                "\(algorithm) on \(p) ranks deadlocks: rank \(stuck) waits for rank \(waitingOn[stuck]) at step \(next[stuck])")
        }
        for rank in 0..<p { _ = try runs[rank].output(schedules[rank]) }
        return Outcome(seconds: network.makespan, messages: network.messagesSent, bytesSent: network.bytesSent, clocks: network.clocks)
    }
}
