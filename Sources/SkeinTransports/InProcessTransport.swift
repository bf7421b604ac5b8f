import SkeinCore
import Synchronization
#if canImport(Glibc)
import Glibc
#endif

/// `size` ranks inside one process (Skein's embedded default). A send hands the receiver the
/// sender's immutable chunks by reference: nothing is copied.
///
/// Waiting receivers spin briefly (a peer on another core answers in well under a microsecond),
/// then yield the thread to other ranks (when ranks outnumber cores), then park until the message,
/// the peer's exit, an abort, or the deadline.
public final class InProcessGroup: Sendable {
    public let size: Int
    let boxes: [Mailbox]  // index receiver * size + sender
    let controls: [RankControl]
    let spinLimit: Int
    let parked = Atomic<Int>(0)
    let watchdogRunning = Atomic<Bool>(false)
    let cores: Int

    /// Ranks of every group in this process that are spinning now: spinning only pays while each
    /// spinner has a core, so beyond that a waiter yields at once (groups in parallel tests, p > cores).
    static let spinners = Atomic<Int>(0)

    public init(size: Int) {
        precondition(size >= 1, "a group needs at least one rank")
        self.size = size
        boxes = (0..<(size * size)).map { _ in Mailbox() }
        controls = (0..<size).map { _ in RankControl() }
        cores = Int(sysconf(Int32(_SC_NPROCESSORS_ONLN)))
        // With a core per rank a peer is running and answers soon: spin ~50 µs. Oversubscribed,
        // the peer may be waiting for this very thread: spin only a little before yielding it.
        spinLimit = size <= cores ? 40_000 : 256
    }

    /// The transport rank `rank` uses.
    public func transport(rank: Int) -> InProcessTransport {
        precondition((0..<size).contains(rank), "rank \(rank) out of 0..<\(size)")
        return InProcessTransport(group: self, rank: rank)
    }

    @inline(__always)
    func box(to receiver: Int, from sender: Int) -> Mailbox { boxes[receiver &* size &+ sender] }

    /// Records that `rank`'s program ended; peers waiting on it stop waiting.
    public func markExited(rank: Int) {
        controls[rank].exited.store(true, ordering: .releasing)
        for receiver in 0..<size {
            let box = box(to: receiver, from: rank)
            let waiter = box.state.withLock { state -> Mailbox.Waiter? in
                guard let waiter = state.waiter else { return nil }
                state.waiter = nil
                return waiter
            }
            if let waiter {
                parked.subtract(1, ordering: .relaxed)
                waiter.continuation.resume(throwing: Self.exitedError(receiver: receiver, peer: rank, tag: waiter.tag))
            }
        }
    }

    static func exitedError(receiver: Int, peer: Int, tag: Tag) -> SkeinError {
        SkeinError(
            .peerExited, rank: receiver, peer: peer,
            "rank \(peer) ended its program while rank \(receiver) waited for its message in call \(tag); "
                + "likely rank \(peer) threw an error or skipped this collective")
    }

    /// Runs `body` once per rank, each in its own task, and returns every rank's outcome in rank order.
    /// A rank whose body returns or throws is marked exited, so no peer waits on it forever.
    public static func run<R: Sendable>(
        size: Int, _ body: @escaping @Sendable (InProcessTransport) async throws -> R
    ) async -> [Result<R, any Error>] {
        let group = InProcessGroup(size: size)
        return await withTaskGroup(of: (Int, Result<R, any Error>).self) { tasks in
            for rank in 0..<size {
                tasks.addTask {
                    let outcome: Result<R, any Error>
                    do { outcome = .success(try await body(group.transport(rank: rank))) } catch { outcome = .failure(error) }
                    group.markExited(rank: rank)
                    return (rank, outcome)
                }
            }
            var results = [Result<R, any Error>?](repeating: nil, count: size)
            for await (rank, outcome) in tasks { results[rank] = outcome }
            return results.map { $0! }
        }
    }

    func startWatchdogIfNeeded() {
        guard !watchdogRunning.load(ordering: .relaxed),
            watchdogRunning.compareExchange(expected: false, desired: true, ordering: .acquiringAndReleasing).exchanged
        else { return }
        Task.detached { [weak self] in
            while true {
                try? await Task.sleep(nanoseconds: 2_000_000)
                guard let group = self else { return }
                if group.parked.load(ordering: .relaxed) > 0 { group.expireDeadlines(now: MonotonicClock.now()) }
            }
        }
    }

    func expireDeadlines(now: UInt64) {
        for receiver in 0..<size {
            for sender in 0..<size {
                let box = box(to: receiver, from: sender)
                let expired = box.state.withLock { state -> Mailbox.Waiter? in
                    guard let waiter = state.waiter, waiter.deadline <= now else { return nil }
                    state.waiter = nil
                    return waiter
                }
                if let expired {
                    parked.subtract(1, ordering: .relaxed)
                    expired.continuation.resume(throwing: timeoutError(receiver: receiver, peer: sender, tag: expired.tag))
                }
            }
        }
    }

    /// Follows who-waits-for-whom from `peer` within call `tag` to the rank that is not waiting in it:
    /// the one that stopped answering. Returns the chain, starting at `peer`.
    func waitChain(from peer: Int, tag: Tag) -> [Int] {
        var chain = [peer]
        var current = peer
        while chain.count <= size {
            let control = controls[current]
            let next = control.waitingFor.load(ordering: .acquiring)
            guard next >= 0, control.waitingSequence.load(ordering: .acquiring) == tag.sequence, !chain.contains(next) else { break }
            chain.append(next)
            current = next
        }
        return chain
    }

    func timeoutError(receiver: Int, peer: Int, tag: Tag) -> SkeinError {
        let chain = waitChain(from: peer, tag: tag)
        let culprit = chain.last ?? peer
        let via = chain.count > 1 ? " (which waits for " + chain.dropFirst().map { "rank \($0)" }.joined(separator: ", which waits for ") + ")" : ""
        return SkeinError(
            .timeout, rank: receiver, peer: culprit,
            "rank \(receiver) waited for rank \(peer)\(via) in call \(tag) past the deadline; "
                + "rank \(culprit) is stuck, dead, or far behind")
    }
}

/// One receiver's queue of messages from one sender, plus at most one parked waiter.
final class Mailbox: Sendable {
    struct Waiter {
        let tag: Tag
        let deadline: UInt64
        let continuation: UnsafeContinuation<Message, any Error>
    }

    struct State {
        var pending: [(tag: Tag, message: Message)] = []
        var waiter: Waiter?

        mutating func take(_ tag: Tag) -> Message? {
            guard let index = pending.firstIndex(where: { $0.tag == tag }) else { return nil }
            return pending.remove(at: index).message
        }

        /// A message of a later call in the same context means the sender skipped or reordered calls.
        func laterCall(than tag: Tag) -> Tag? {
            pending.first { $0.tag.context == tag.context && $0.tag.sequence > tag.sequence }?.tag
        }
    }

    let state = Mutex(State())
    let deposits = Atomic<Int>(0)
}

/// Per-rank flags peers read without a lock on the fast path.
final class RankControl: Sendable {
    let exited = Atomic<Bool>(false)
    /// The peer this rank is blocked on (−1: none) and in which call, for wait-for chains.
    let waitingFor = Atomic<Int>(-1)
    let waitingSequence = Atomic<UInt64>(0)
    let abortCount = Atomic<Int>(0)
    let aborts = Mutex<[UInt32: SkeinError]>([:])

    func abortError(context: UInt32) -> SkeinError? {
        guard abortCount.load(ordering: .acquiring) > 0 else { return nil }
        return aborts.withLock { $0[context] }
    }
}

/// One rank's view of an `InProcessGroup`.
public struct InProcessTransport: Transport {
    public let group: InProcessGroup
    public let rank: Int

    public var size: Int { group.size }
    public var deliversByReference: Bool { true }
    public func now() -> UInt64 { MonotonicClock.now() }

    public func send(_ message: Message, to peer: Int, tag: Tag) throws(SkeinError) {
        guard (0..<group.size).contains(peer) else {
            throw SkeinError(.invalidArgument, rank: rank, peer: peer, "send to rank \(peer), outside 0..<\(group.size)")
        }
        let box = group.box(to: peer, from: rank)
        let wake = box.state.withLock { state -> (Mailbox.Waiter, Result<Message, SkeinError>)? in
            if let waiter = state.waiter {
                if waiter.tag == tag {
                    state.waiter = nil
                    return (waiter, .success(message))
                }
                if waiter.tag.context == tag.context && tag.sequence > waiter.tag.sequence {
                    state.waiter = nil
                    state.pending.append((tag, message))
                    return (waiter, .failure(Self.desync(receiver: peer, sender: rank, waiting: waiter.tag, got: tag)))
                }
            }
            state.pending.append((tag, message))
            return nil
        }
        if let (waiter, outcome) = wake {
            group.parked.subtract(1, ordering: .relaxed)
            waiter.continuation.resume(with: outcome.mapError { $0 as any Error })
        } else {
            box.deposits.add(1, ordering: .releasing)
        }
    }

    public func receive(from peer: Int, tag: Tag, deadline: UInt64) async throws(SkeinError) -> Message {
        guard (0..<group.size).contains(peer) else {
            throw SkeinError(.invalidArgument, rank: rank, peer: peer, "receive from rank \(peer), outside 0..<\(group.size)")
        }
        let box = group.box(to: rank, from: peer)
        if let message = try poll(box, peer: peer, tag: tag) { return message }
        let control = group.controls[rank]
        control.waitingSequence.store(tag.sequence, ordering: .relaxed)
        control.waitingFor.store(peer, ordering: .releasing)
        defer { control.waitingFor.store(-1, ordering: .releasing) }

        var seen = box.deposits.load(ordering: .acquiring)
        var spins = 0
        let spinners = InProcessGroup.spinners.wrappingAdd(1, ordering: .relaxed).newValue
        defer { InProcessGroup.spinners.wrappingSubtract(1, ordering: .relaxed) }
        let limit = spinners <= group.cores ? group.spinLimit : 64
        while spins < limit {
            spins += 1
            let now = box.deposits.load(ordering: .acquiring)
            if now != seen {
                seen = now
                if let message = try poll(box, peer: peer, tag: tag) { return message }
            }
            if spins & 1023 == 0 { try check(peer: peer, tag: tag, deadline: deadline) }
        }
        // Oversubscribed ranks: hand the thread to a peer that may be the one we wait for.
        for _ in 0..<(group.size > 2 ? 64 : 4) {
            await Task.yield()
            if let message = try poll(box, peer: peer, tag: tag) { return message }
            try check(peer: peer, tag: tag, deadline: deadline)
        }
        return try await park(box, peer: peer, tag: tag, deadline: deadline)
    }

    @inline(__always)
    private func poll(_ box: Mailbox, peer: Int, tag: Tag) throws(SkeinError) -> Message? {
        let outcome = box.state.withLock { state -> (Message?, Tag?) in
            if let message = state.take(tag) { return (message, nil) }
            return (nil, state.laterCall(than: tag))
        }
        if let message = outcome.0 { return message }
        if let later = outcome.1 { throw Self.desync(receiver: rank, sender: peer, waiting: tag, got: later) }
        return nil
    }

    private func check(peer: Int, tag: Tag, deadline: UInt64) throws(SkeinError) {
        if let error = group.controls[rank].abortError(context: tag.context) { throw error }
        if group.controls[peer].exited.load(ordering: .acquiring) {
            // The peer may have sent before it ended.
            let box = group.box(to: rank, from: peer)
            if box.state.withLock({ state in state.pending.contains { $0.tag == tag } }) { return }
            throw InProcessGroup.exitedError(receiver: rank, peer: peer, tag: tag)
        }
        if MonotonicClock.now() >= deadline { throw group.timeoutError(receiver: rank, peer: peer, tag: tag) }
    }

    private func park(_ box: Mailbox, peer: Int, tag: Tag, deadline: UInt64) async throws(SkeinError) -> Message {
        group.startWatchdogIfNeeded()
        let control = group.controls[rank], peerControl = group.controls[peer], group = self.group, rank = self.rank
        do {
            return try await withUnsafeThrowingContinuation { (continuation: UnsafeContinuation<Message, any Error>) in
                let immediate = box.state.withLock { state -> Result<Message, SkeinError>? in
                    if let message = state.take(tag) { return .success(message) }
                    if let later = state.laterCall(than: tag) {
                        return .failure(Self.desync(receiver: rank, sender: peer, waiting: tag, got: later))
                    }
                    if let error = control.abortError(context: tag.context) { return .failure(error) }
                    if peerControl.exited.load(ordering: .acquiring) {
                        return .failure(InProcessGroup.exitedError(receiver: rank, peer: peer, tag: tag))
                    }
                    state.waiter = Mailbox.Waiter(tag: tag, deadline: deadline, continuation: continuation)
                    group.parked.add(1, ordering: .relaxed)
                    return nil
                }
                if let immediate { continuation.resume(with: immediate.mapError { $0 as any Error }) }
            }
        } catch let error as SkeinError {
            throw error
        } catch {
            throw SkeinError(.internalError, rank: rank, "unexpected wait failure: \(error)")
        }
    }

    public func abort(context: UInt32, because error: SkeinError) {
        for receiver in 0..<group.size where receiver != rank {
            let control = group.controls[receiver]
            let forwarded = SkeinError(
                .aborted, rank: receiver, peer: error.peer ?? rank, "rank \(rank) aborted the call: \(error)")
            let isNew = control.aborts.withLock { aborts -> Bool in
                guard aborts[context] == nil else { return false }
                aborts[context] = forwarded
                return true
            }
            guard isNew else { continue }
            control.abortCount.add(1, ordering: .releasing)
            for sender in 0..<group.size {
                let box = group.box(to: receiver, from: sender)
                let waiter = box.state.withLock { state -> Mailbox.Waiter? in
                    guard let waiter = state.waiter, waiter.tag.context == context else { return nil }
                    state.waiter = nil
                    return waiter
                }
                if let waiter {
                    group.parked.subtract(1, ordering: .relaxed)
                    waiter.continuation.resume(throwing: forwarded)
                }
            }
        }
    }

    static func desync(receiver: Int, sender: Int, waiting: Tag, got: Tag) -> SkeinError {
        SkeinError(
            .desync, rank: receiver, peer: sender,
            "rank \(sender) is already in call #\(got.sequence) while rank \(receiver) waits for its part of call "
                + "#\(waiting.sequence); rank \(sender) skipped a collective the others called")
    }
}
