import SkeinCore
import Synchronization

/// A `VirtualNetwork` shared by ranks running as tasks: the same `Transport` interface on a virtual
/// clock. A wait that can never be satisfied (every live rank is waiting, or the awaited rank has
/// ended) fails at its virtual deadline, so a simulated hang costs no real time.
public final class SimulatedGroup: Sendable {
    public let size: Int
    let state: Mutex<State>

    struct Waiter {
        let source: Int
        let tag: Tag
        let deadline: Double
        let continuation: UnsafeContinuation<Message, any Error>
    }

    struct State {
        var network: VirtualNetwork
        var waiters: [Int: Waiter] = [:]
        var finished: Set<Int> = []
        var aborts: [Int: [UInt32: SkeinError]] = [:]
    }

    public init(size: Int, model: NetworkModel) {
        self.size = size
        state = Mutex(State(network: VirtualNetwork(size: size, model: model)))
    }

    public func transport(rank: Int) -> SimulatedTransport { SimulatedTransport(group: self, rank: rank) }

    /// Every rank's virtual clock, in seconds.
    public var clocks: [Double] { state.withLock { $0.network.clocks } }

    /// Runs `body` once per rank as tasks on the virtual network; returns outcomes in rank order.
    public static func run<R: Sendable>(
        size: Int, model: NetworkModel, _ body: @escaping @Sendable (SimulatedTransport) async throws -> R
    ) async -> (results: [Result<R, any Error>], clocks: [Double]) {
        let group = SimulatedGroup(size: size, model: model)
        let results = await withTaskGroup(of: (Int, Result<R, any Error>).self) { tasks in
            for rank in 0..<size {
                tasks.addTask {
                    let outcome: Result<R, any Error>
                    do { outcome = .success(try await body(group.transport(rank: rank))) } catch { outcome = .failure(error) }
                    group.markFinished(rank)
                    return (rank, outcome)
                }
            }
            var results = [Result<R, any Error>?](repeating: nil, count: size)
            for await (rank, outcome) in tasks { results[rank] = outcome }
            return results.map { $0! }
        }
        return (results, group.clocks)
    }

    func markFinished(_ rank: Int) {
        let wake = state.withLock { state -> [(Waiter, SkeinError)] in
            state.finished.insert(rank)
            return Self.resolveStuck(&state)
        }
        for (waiter, error) in wake { waiter.continuation.resume(throwing: error) }
    }

    /// When no rank can make progress, every waiter fails at its deadline naming the rank it waited for.
    static func resolveStuck(_ state: inout State) -> [(Waiter, SkeinError)] {
        guard !state.waiters.isEmpty, state.waiters.count + state.finished.count >= state.network.size else { return [] }
        var wake: [(Waiter, SkeinError)] = []
        for (rank, waiter) in state.waiters.sorted(by: { $0.key < $1.key }) {
            let error: SkeinError
            if state.finished.contains(waiter.source) || state.network.failed[waiter.source] {
                error = SkeinError(
                    .peerExited, rank: rank, peer: waiter.source,
                    "rank \(waiter.source) ended (or failed) while rank \(rank) waited for it in call \(waiter.tag)")
            } else {
                error = SkeinError(
                    .timeout, rank: rank, peer: waiter.source,
                    "rank \(rank) waited for rank \(waiter.source) in call \(waiter.tag) past its deadline "
                        + "(virtual t = \(waiter.deadline) s); rank \(waiter.source) is stuck or dead")
            }
            if waiter.deadline.isFinite { state.network.advance(rank, to: waiter.deadline) }
            wake.append((waiter, error))
        }
        state.waiters.removeAll()
        return wake
    }
}

/// One rank's view of a `SimulatedGroup`. Its clock is virtual seconds, reported as nanoseconds.
public struct SimulatedTransport: Transport {
    public let group: SimulatedGroup
    public let rank: Int

    public var size: Int { group.size }
    public var deliversByReference: Bool { true }

    public func now() -> UInt64 { UInt64(group.state.withLock { $0.network.clocks[rank] } * 1e9) }

    public func chargeReduction(byteCount: Int) {
        group.state.withLock { $0.network.reduce(at: rank, byteCount: byteCount) }
    }

    private func failedError() -> SkeinError {
        SkeinError(.rankFailed, rank: rank, "rank \(rank) reached its simulated failure time and stopped")
    }

    public func send(_ message: Message, to peer: Int, tag: Tag) throws(SkeinError) {
        guard (0..<size).contains(peer) else {
            throw SkeinError(.invalidArgument, rank: rank, peer: peer, "send to rank \(peer), outside 0..<\(size)")
        }
        let rank = self.rank
        let outcome = group.state.withLock { state -> (sent: Bool, wake: (SimulatedGroup.Waiter, Result<Message, SkeinError>)?) in
            guard state.network.send(message, from: rank, to: peer, tag: tag) else { return (false, nil) }
            guard let waiter = state.waiters[peer], waiter.source == rank else { return (true, nil) }
            if waiter.tag == tag, let arrival = state.network.arrival(at: peer, from: rank, tag: tag) {
                state.waiters[peer] = nil
                if arrival > waiter.deadline {
                    state.network.advance(peer, to: waiter.deadline)
                    return (true, (waiter, .failure(Self.late(rank: peer, peer: rank, tag: tag, deadline: waiter.deadline))))
                }
                let taken = state.network.take(at: peer, from: rank, tag: tag)!
                return (true, (waiter, .success(taken)))
            }
            return (true, nil)
        }
        if !outcome.sent {
            failStuckWaiters()
            throw failedError()
        }
        if let (waiter, result) = outcome.wake { waiter.continuation.resume(with: result.mapError { $0 as any Error }) }
    }

    /// This rank has died: any wait that can now never end fails.
    private func failStuckWaiters() {
        let wake = group.state.withLock { state in SimulatedGroup.resolveStuck(&state) }
        for (waiter, error) in wake { waiter.continuation.resume(throwing: error) }
    }

    static func late(rank: Int, peer: Int, tag: Tag, deadline: Double) -> SkeinError {
        SkeinError(
            .timeout, rank: rank, peer: peer,
            "rank \(rank) waited for rank \(peer) in call \(tag) past its deadline (virtual t = \(deadline) s); "
                + "rank \(peer) is too slow or stuck")
    }

    public func receive(from peer: Int, tag: Tag, deadline: UInt64) async throws(SkeinError) -> Message {
        guard (0..<size).contains(peer) else {
            throw SkeinError(.invalidArgument, rank: rank, peer: peer, "receive from rank \(peer), outside 0..<\(size)")
        }
        let rank = self.rank
        let virtualDeadline = deadline == .max ? Double.infinity : Double(deadline) / 1e9
        do {
            return try await withUnsafeThrowingContinuation { (continuation: UnsafeContinuation<Message, any Error>) in
                let (immediate, wake) = group.state.withLock {
                    state -> (Result<Message, SkeinError>?, [(SimulatedGroup.Waiter, SkeinError)]) in
                    if state.network.checkFailure(rank) {
                        return (.failure(SkeinError(.rankFailed, rank: rank, "rank \(rank) reached its simulated failure time")), [])
                    }
                    if let error = state.aborts[rank]?[tag.context] { return (.failure(error), []) }
                    if let arrival = state.network.arrival(at: rank, from: peer, tag: tag) {
                        if arrival > virtualDeadline {
                            state.network.advance(rank, to: virtualDeadline)
                            return (.failure(Self.late(rank: rank, peer: peer, tag: tag, deadline: virtualDeadline)), [])
                        }
                        return (.success(state.network.take(at: rank, from: peer, tag: tag)!), [])
                    }
                    if let later = state.network.laterCall(at: rank, from: peer, than: tag) {
                        return (.failure(InProcessTransport.desync(receiver: rank, sender: peer, waiting: tag, got: later)), [])
                    }
                    state.waiters[rank] = SimulatedGroup.Waiter(
                        source: peer, tag: tag, deadline: virtualDeadline, continuation: continuation)
                    return (nil, SimulatedGroup.resolveStuck(&state))
                }
                if let immediate { continuation.resume(with: immediate.mapError { $0 as any Error }) }
                for (waiter, error) in wake { waiter.continuation.resume(throwing: error) }
            }
        } catch let error as SkeinError {
            throw error
        } catch {
            throw SkeinError(.internalError, rank: rank, "unexpected wait failure: \(error)")
        }
    }

    public func abort(context: UInt32, because error: SkeinError) {
        let rank = self.rank
        let wake = group.state.withLock { state -> [(SimulatedGroup.Waiter, SkeinError)] in
            var wake: [(SimulatedGroup.Waiter, SkeinError)] = []
            for receiver in 0..<state.network.size where receiver != rank {
                let forwarded = SkeinError(.aborted, rank: receiver, peer: error.peer ?? rank, "rank \(rank) aborted the call: \(error)")
                state.aborts[receiver, default: [:]][context] = state.aborts[receiver]?[context] ?? forwarded
                if let waiter = state.waiters[receiver], waiter.tag.context == context {
                    state.waiters[receiver] = nil
                    wake.append((waiter, forwarded))
                }
            }
            return wake
        }
        for (waiter, error) in wake { waiter.continuation.resume(throwing: error) }
    }
}
