import CSystemCalls
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
    /// The clock of the group's deadlines and timings (every rank is in this process).
    let clock = ProcessClock.shared
    /// True when a parking waiter can fence every running thread of the process at once (Linux's
    /// expedited membarrier): the heavy side of the asymmetric fence between a board's publishers
    /// and its parking waiters (`InProcessBoardSeat.publish`). Kept here, not only in the static,
    /// so that a call reads it without the check of a lazily made global.
    let parkingFence = InProcessGroup.processFenceRegistered
    /// Registered once per process; false where the kernel or a seccomp filter refuses.
    private static let processFenceRegistered = skein_process_fence_register() == 1
    /// Shared-memory boards by communicator context, made on first use.
    private let boards = Mutex<[UInt32: InProcessBoard]>([:])

    /// Ranks of every group in this process that are spinning now: spinning only pays while each
    /// spinner has a core, so beyond that a waiter yields at once (groups in parallel tests, p > cores).
    static let spinners = Atomic<Int>(0)

    public init(size: Int) {
        precondition(size >= 1, "a group needs at least one rank")
        self.size = size
        boxes = (0..<(size * size)).map { _ in Mailbox() }
        controls = RankControl.allocate(count: size)
        cores = Int(sysconf(Int32(_SC_NPROCESSORS_ONLN)))
        // With a core per rank a peer is running and answers soon: spin ~0.5 ms. That long, because
        // Swift's pool may start both ranks of a p = 2 group on one of its two threads; a waiter
        // that holds its thread makes the pool wake the other one for the peer, but one that yields
        // within ~50 µs, before that thread is up, hands its own thread over and the two ranks take
        // turns on it for good (2 of 30 fresh processes, every round 60-120 µs instead of 0.2, and a
        // calibrated α of 65-126 µs; none of 80 at 0.5 ms). Oversubscribed, the peer may be waiting
        // for this very thread: spin only a little before yielding it.
        spinLimit = size <= cores ? 400_000 : 0
    }

    deinit { RankControl.deallocate(controls) }

    /// The transport rank `rank` uses.
    public func transport(rank: Int) -> InProcessTransport {
        precondition((0..<size).contains(rank), "rank \(rank) out of 0..<\(size)")
        return InProcessTransport(group: self, rank: rank)
    }

    @inline(__always)
    func box(to receiver: Int, from sender: Int) -> Mailbox { boxes[receiver &* size &+ sender] }

    /// The shared-memory board of `context`, made on first use.
    func board(context: UInt32) -> InProcessBoard {
        boards.withLock { boards in
            if let board = boards[context] { return board }
            let board = InProcessBoard(group: self, context: context)
            boards[context] = board
            return board
        }
    }

    /// The board of `context` if some rank has used one.
    func existingBoard(context: UInt32) -> InProcessBoard? {
        boards.withLock { $0[context] }
    }

    /// Wakes the parked waiters of every board (of `context` only, when given) to look again.
    func wakeBoards(context: UInt32? = nil) {
        let all = boards.withLock { boards in context.map { boards[$0].map { [$0] } ?? [] } ?? Array(boards.values) }
        for board in all { board.wakeAll() }
    }

    /// Records that `rank`'s program ended; peers waiting on it stop waiting.
    public func markExited(rank: Int) {
        controls[rank].exited.pointee.store(true, ordering: .sequentiallyConsistent)
        controls[rank].onCore.pointee.store(false, ordering: .relaxed)
        for receiver in 0..<size {
            if let waiter = box(to: receiver, from: rank).unpark() {
                parked.subtract(1, ordering: .relaxed)
                waiter.continuation.resume(throwing: Self.exitedError(receiver: receiver, peer: rank, tag: waiter.tag))
            }
        }
        wakeBoards()
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
                if group.parked.load(ordering: .relaxed) > 0 { group.watch(now: group.clock.now()) }
            }
        }
    }

    /// Fails waits past their deadline, wakes sleepers that have messages to look at or whose sender
    /// went through shared memory instead, and lets every board's sleepers check their deadlines.
    func watch(now: UInt64) {
        let boards = self.boards.withLock { Array($0.values) }
        for board in boards where board.hasParked { board.wakeAll() }
        for receiver in 0..<size {
            for sender in 0..<size {
                let box = box(to: receiver, from: sender)
                let onBoard = { (waiter: Mailbox.Waiter) in
                    boards.contains { $0.context == waiter.tag.context && $0.hasPublished(sender, atOrAfter: waiter.tag.sequence) }
                }
                if let stray = boards.isEmpty ? nil : box.unpark(where: onBoard) {
                    // Resumed without error: its own check names the desync.
                    parked.subtract(1, ordering: .relaxed)
                    stray.continuation.resume()
                } else if let expired = box.unpark(where: { $0.deadline <= now }) {
                    parked.subtract(1, ordering: .relaxed)
                    expired.continuation.resume(throwing: timeoutError(receiver: receiver, peer: sender, tag: expired.tag))
                } else if box.hasArrivals, let asleep = box.unpark() {
                    // A receiver asleep beside unconsumed messages: wake it to look (a safety net; a
                    // missed wake-up then costs one watchdog period, never a hang).
                    parked.subtract(1, ordering: .relaxed)
                    asleep.continuation.resume()
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
            let next = control.waitingFor.pointee.load(ordering: .acquiring)
            guard next >= 0, control.waitingSequence.pointee.load(ordering: .acquiring) == tag.sequence, !chain.contains(next) else { break }
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

/// One receiver's messages from one sender. The sender publishes into a single-producer,
/// single-consumer ring with one release store (no lock on the fast path, so the cache line
/// crosses cores once); the receiver drains it into `unexpected`, a list only it touches, and
/// matches tags there, as MPI implementations keep an unexpected-message queue. A full ring
/// spills into a locked overflow list; a parked receiver is woken through `waiter`.
final class Mailbox: @unchecked Sendable {
    // @unchecked: `ring` slots are written only by the sender holding `writing` before it publishes
    // `tail` and read only by the receiver after it observes `tail`; `unexpected` is touched only by
    // the receiving rank, `cachedHead` only by the sender holding `writing`.
    static let capacity = 64
    private let ring: UnsafeMutablePointer<(Tag, Message)>  // slots [head, tail) are initialized
    // Fields each side writes sit on cache lines of their own (stored properties are laid out in
    // order), so a deposit moves the sender's line to the receiver and nothing else.
    private let padding0: (Int, Int, Int, Int, Int, Int, Int, Int) = (0, 0, 0, 0, 0, 0, 0, 0)
    private let tail = Atomic<Int>(0)  // next slot the sender writes
    /// Held by the one sender writing the ring. Collectives send from one task per rank, but a
    /// runtime rank sends from many at once (its tasks' and actors' replies): a sender that finds it
    /// held takes the overflow list instead, which keeps each sender's messages in order.
    private let writing = Atomic<Bool>(false)
    private let overflowCount = Atomic<Int>(0)
    private var cachedHead = 0  // the sender's last look at `head`; re-read only when the ring seems full
    private let padding1: (Int, Int, Int, Int, Int, Int, Int, Int) = (0, 0, 0, 0, 0, 0, 0, 0)
    private let head = Atomic<Int>(0)  // next slot the receiver reads
    /// Drained messages not yet taken, oldest first. A root that runs ahead (a loop of broadcasts)
    /// leaves thousands here, and the oldest is nearly always the one taken.
    private var unexpected = MatchingQueue<(tag: Tag, message: Message)>()
    private let padding2: (Int, Int, Int, Int, Int, Int, Int, Int) = (0, 0, 0, 0, 0, 0, 0, 0)
    private let overflow = Mutex<[(Tag, Message)]>([])

    struct Waiter {
        let tag: Tag
        let deadline: UInt64
        let continuation: UnsafeContinuation<Void, any Error>
    }
    let waiter = Mutex<Waiter?>(nil)

    init() {
        ring = .allocate(capacity: Self.capacity)
    }

    deinit {
        for index in head.load(ordering: .relaxed)..<tail.load(ordering: .relaxed) {
            (ring + (index & (Self.capacity - 1))).deinitialize(count: 1)
        }
        ring.deallocate()
    }

    /// Sender side: publishes the message, then hands back the parked receiver, if any, to wake.
    /// Looking for the waiter under its lock (not through a lock-free flag) orders this check
    /// against the receiver's registration: either it sees the waiter, or the receiver's re-check
    /// after registering sees the message.
    func deposit(_ message: Message, tag: Tag) -> Waiter? {
        var ringed = false
        if writing.compareExchange(expected: false, desired: true, ordering: .acquiring).exchanged {
            let t = tail.load(ordering: .relaxed)
            if t - cachedHead >= Self.capacity { cachedHead = head.load(ordering: .acquiring) }
            if overflowCount.load(ordering: .acquiring) == 0 && t - cachedHead < Self.capacity {
                (ring + (t & (Self.capacity - 1))).initialize(to: (tag, message))
                tail.store(t + 1, ordering: .sequentiallyConsistent)
                ringed = true
            }
            writing.store(false, ordering: .releasing)
        }
        if !ringed {
            // Counted before it is listed: the receiver may take it as soon as it is listed, and a
            // count that went below zero would hide every later overflow message.
            overflowCount.add(1, ordering: .sequentiallyConsistent)
            overflow.withLock { $0.append((tag, message)) }
        }
        return unpark()
    }

    /// True when the sender has published something the receiver has not drained.
    var hasArrivals: Bool {
        tail.load(ordering: .sequentiallyConsistent) != head.load(ordering: .relaxed)
            || overflowCount.load(ordering: .sequentiallyConsistent) > 0
    }

    /// Receiver side: moves published messages into `unexpected`, oldest first.
    ///
    /// The overflow list is taken before the ring's tail is read, and its count lowered only after:
    /// every ring message a sender put in before one of the listed ones is then within that tail,
    /// and none it put in after (a sender rings again only once the count is back to zero). Reading
    /// the tail first let a message that went into the ring after that read, but before a listed
    /// one, be queued behind it: found by the test of a sender thousands of messages ahead.
    private func drain() {
        let spilled =
            overflowCount.load(ordering: .acquiring) > 0
            ? overflow.withLock { list -> [(Tag, Message)] in
                defer { list.removeAll() }
                return list
            } : []
        var h = head.load(ordering: .relaxed)
        let t = tail.load(ordering: .acquiring)
        while h != t {
            // Moved out, not overwritten: the slot's cache line is not written back by this side.
            let (tag, message) = (ring + (h & (Self.capacity - 1))).move()
            unexpected.append((tag, message))
            h += 1
        }
        head.store(h, ordering: .releasing)
        guard !spilled.isEmpty else { return }
        overflowCount.subtract(spilled.count, ordering: .releasing)
        for (tag, message) in spilled { unexpected.append((tag, message)) }
    }

    /// Receiver side: the next message with `tag`, or the tag of a later call in its context
    /// already waiting (the sender skipped a call), or neither.
    func take(_ tag: Tag) -> (Message?, Tag?) {
        // The common case: nothing unexpected is queued and the next arrival is the one wanted.
        if unexpected.isEmpty && overflowCount.load(ordering: .acquiring) == 0 {
            let h = head.load(ordering: .relaxed)
            if h != tail.load(ordering: .acquiring) {
                let slot = ring + (h & (Self.capacity - 1))
                if slot.pointee.0 == tag {
                    let (_, message) = slot.move()
                    head.store(h + 1, ordering: .releasing)
                    return (message, nil)
                }
            }
        }
        if hasArrivals { drain() }
        if let entry = unexpected.take(where: { $0.tag == tag }) { return (entry.message, nil) }
        return (nil, unexpected.first { $0.tag.context == tag.context && $0.tag.sequence > tag.sequence }?.tag)
    }

    /// Receiver side: whether a message of call `sequence` or a later one of `context` has been sent.
    func holdsCall(in context: UInt32, from sequence: UInt64) -> Bool {
        if hasArrivals { drain() }
        return unexpected.contains { $0.tag.context == context && $0.tag.sequence >= sequence }
    }

    /// Receiver side: whether a message with `tag` has been sent (used once the sender has exited).
    func holds(_ tag: Tag) -> Bool {
        if hasArrivals { drain() }
        return unexpected.contains { $0.tag == tag }
    }

    /// Removes and returns the parked waiter, if any (sender, watchdog, exit or abort side).
    func unpark(where condition: (Waiter) -> Bool = { _ in true }) -> Waiter? {
        waiter.withLock { slot -> Waiter? in
            guard let w = slot, condition(w) else { return nil }
            slot = nil
            return w
        }
    }
}

/// Per-rank flags peers read without a lock on the fast path, on a 128-byte block of their own: a
/// class held them before, and every access to a peer's flags retained and released the object, a
/// write to the reference count that the owning rank's core had to win back; neighbouring objects
/// could also share a cache line. A copy of this struct is a pointer: nothing is counted.
struct RankControl: @unchecked Sendable {
    // @unchecked: the words are atomics, and the abort book is a mutex; the group frees the block.
    private let base: UnsafeMutableRawPointer

    /// Bytes per rank: two cache lines, so the adjacent-line prefetcher does not pair two ranks' flags.
    static let stride = 128
    private enum Offset {
        static let exited = 0, onCore = 1, waitingContext = 4, waitingFor = 8, waitingSequence = 16, abortCount = 24
        static let aborts = 64
    }

    /// `count` ranks' blocks in one allocation (freed by `deallocate(_:)`).
    static func allocate(count: Int) -> [RankControl] {
        precondition(MemoryLayout<Mutex<[UInt32: SkeinError]>>.size <= stride - Offset.aborts)
        let memory = UnsafeMutableRawPointer.allocate(byteCount: count * stride, alignment: stride)
        return (0..<count).map { index in
            let base = memory + index * stride
            base.initializeMemory(as: UInt8.self, repeating: 0, count: stride)
            (base + Offset.waitingFor).bindMemory(to: Atomic<Int>.self, capacity: 1).initialize(to: Atomic(-1))
            (base + Offset.aborts).bindMemory(to: Mutex<[UInt32: SkeinError]>.self, capacity: 1).initialize(to: Mutex([:]))
            return RankControl(base: base)
        }
    }

    static func deallocate(_ controls: [RankControl]) {
        for control in controls { control.aborts.deinitialize(count: 1) }
        controls.first?.base.deallocate()
    }

    private func word<T: ~Copyable>(_ offset: Int, _: T.Type) -> UnsafeMutablePointer<T> {
        (base + offset).assumingMemoryBound(to: T.self)
    }

    var exited: UnsafeMutablePointer<Atomic<Bool>> { word(Offset.exited, Atomic<Bool>.self) }
    /// True while the rank's task holds a thread (it is not yielded, parked or finished): a rank
    /// waiting on it then polls, since the answer can come any moment, instead of yielding.
    var onCore: UnsafeMutablePointer<Atomic<Bool>> { word(Offset.onCore, Atomic<Bool>.self) }
    /// The peer this rank is blocked on (−1: none) and in which call, for wait-for chains.
    var waitingFor: UnsafeMutablePointer<Atomic<Int>> { word(Offset.waitingFor, Atomic<Int>.self) }
    var waitingSequence: UnsafeMutablePointer<Atomic<UInt64>> { word(Offset.waitingSequence, Atomic<UInt64>.self) }
    var waitingContext: UnsafeMutablePointer<Atomic<UInt32>> { word(Offset.waitingContext, Atomic<UInt32>.self) }
    var abortCount: UnsafeMutablePointer<Atomic<Int>> { word(Offset.abortCount, Atomic<Int>.self) }
    /// Why calls of each context were aborted, by context; looked at only once `abortCount` > 0.
    var aborts: UnsafeMutablePointer<Mutex<[UInt32: SkeinError]>> { word(Offset.aborts, Mutex<[UInt32: SkeinError]>.self) }

    func abortError(context: UInt32) -> SkeinError? {
        guard abortCount.pointee.load(ordering: .acquiring) > 0 else { return nil }
        return aborts.pointee.withLock { $0[context] }
    }
}

/// One rank's view of an `InProcessGroup`.
public struct InProcessTransport: Transport {
    public let group: InProcessGroup
    public let rank: Int

    public var size: Int { group.size }
    public var deliversByReference: Bool { true }
    public func now() -> UInt64 { group.clock.now() }

    public func send(_ message: Message, to peer: Int, tag: Tag) throws(SkeinError) {
        guard (0..<group.size).contains(peer) else {
            throw SkeinError(.invalidArgument, rank: rank, peer: peer, "send to rank \(peer), outside 0..<\(group.size)")
        }
        let box = group.box(to: peer, from: rank)
        if let waiter = box.deposit(message, tag: tag) {
            group.parked.subtract(1, ordering: .relaxed)
            waiter.continuation.resume()
        }
    }

    public func receive(from peer: Int, tag: Tag, deadline: UInt64) async throws(SkeinError) -> Message {
        guard (0..<group.size).contains(peer) else {
            throw SkeinError(.invalidArgument, rank: rank, peer: peer, "receive from rank \(peer), outside 0..<\(group.size)")
        }
        // Once any rank aborted this context, every call in it fails, even one whose messages arrived.
        if let error = group.controls[rank].abortError(context: tag.context) { throw error }
        let box = group.box(to: rank, from: peer)
        if let message = try poll(box, peer: peer, tag: tag) { return message }
        // A peer on another core usually answers within a microsecond: wait that long writing no
        // shared cache line, before announcing the wait (the counters below cost a line transfer each).
        // (Oversubscribed, the peer most likely needs this very thread: skip straight to yielding.)
        let quietSpins = group.size <= group.cores ? 768 : 0
        for _ in 0..<quietSpins {
            if box.hasArrivals, let message = try poll(box, peer: peer, tag: tag) { return message }
        }
        let control = group.controls[rank]
        control.onCore.pointee.store(true, ordering: .relaxed)
        control.waitingContext.pointee.store(tag.context, ordering: .relaxed)
        control.waitingSequence.pointee.store(tag.sequence, ordering: .relaxed)
        control.waitingFor.pointee.store(peer, ordering: .releasing)
        defer { control.waitingFor.pointee.store(-1, ordering: .releasing) }

        while true {
            var spins = 0
            let spinners = InProcessGroup.spinners.wrappingAdd(1, ordering: .relaxed).newValue
            let limit = spinners <= group.cores ? group.spinLimit : min(group.spinLimit, 64)
            while spins < limit {
                spins += 1
                if box.hasArrivals {
                    InProcessGroup.spinners.wrappingSubtract(1, ordering: .relaxed)
                    if let message = try poll(box, peer: peer, tag: tag) { return message }
                    InProcessGroup.spinners.wrappingAdd(1, ordering: .relaxed)
                }
                if spins & 1023 == 0 {
                    do { try check(peer: peer, tag: tag, deadline: deadline) } catch {
                        InProcessGroup.spinners.wrappingSubtract(1, ordering: .relaxed)
                        throw error
                    }
                }
            }
            InProcessGroup.spinners.wrappingSubtract(1, ordering: .relaxed)
            // Oversubscribed ranks: poll while the peer holds a thread of its own; otherwise hand this
            // thread over, since the peer may be waiting for one.
            let peerControl = group.controls[peer]
            for _ in 0..<(group.size > 2 ? 64 : 4) {
                var polls = 0
                while polls < 4096 && peerControl.onCore.pointee.load(ordering: .relaxed) {
                    polls += 1
                    if box.hasArrivals, let message = try poll(box, peer: peer, tag: tag) { return message }
                }
                control.onCore.pointee.store(false, ordering: .relaxed)
                await Task.yield()
                control.onCore.pointee.store(true, ordering: .relaxed)
                if let message = try poll(box, peer: peer, tag: tag) { return message }
                try check(peer: peer, tag: tag, deadline: deadline)
            }
            control.onCore.pointee.store(false, ordering: .relaxed)
            defer { control.onCore.pointee.store(true, ordering: .relaxed) }
            try await park(box, peer: peer, tag: tag, deadline: deadline)
            if let message = try poll(box, peer: peer, tag: tag) { return message }
            try check(peer: peer, tag: tag, deadline: deadline)
        }
    }

    @inline(__always)
    private func poll(_ box: Mailbox, peer: Int, tag: Tag) throws(SkeinError) -> Message? {
        let (message, later) = box.take(tag)
        if let message { return message }
        if let later { throw Self.desync(receiver: rank, sender: peer, waiting: tag, got: later) }
        return nil
    }

    private func check(peer: Int, tag: Tag, deadline: UInt64) throws(SkeinError) {
        if let error = group.controls[rank].abortError(context: tag.context) { throw error }
        if group.controls[peer].exited.pointee.load(ordering: .acquiring) {
            // The peer may have sent before it ended.
            if group.box(to: rank, from: peer).holds(tag) { return }
            throw InProcessGroup.exitedError(receiver: rank, peer: peer, tag: tag)
        }
        // The board second, the mailbox again after it: a peer that sent in this call and then moved
        // on to a later one through shared memory shows its message to this second look.
        if let board = group.existingBoard(context: tag.context), board.hasPublished(peer, atOrAfter: tag.sequence),
            !group.box(to: rank, from: peer).holds(tag)
        {
            throw .peerRunsOnBoard(rank: rank, peer: peer, sequence: tag.sequence)
        }
        if group.clock.now() >= deadline { throw group.timeoutError(receiver: rank, peer: peer, tag: tag) }
    }

    /// Sleeps until the sender deposits, the peer exits, an abort arrives, or the deadline passes.
    private func park(_ box: Mailbox, peer: Int, tag: Tag, deadline: UInt64) async throws(SkeinError) {
        group.startWatchdogIfNeeded()
        let control = group.controls[rank], peerControl = group.controls[peer], group = self.group, rank = self.rank
        do {
            try await withUnsafeThrowingContinuation { (continuation: UnsafeContinuation<Void, any Error>) in
                box.waiter.withLock { slot in slot = Mailbox.Waiter(tag: tag, deadline: deadline, continuation: continuation) }
                group.parked.add(1, ordering: .relaxed)
                // Re-check after registering: a deposit, exit or abort whose own look for a waiter came
                // before the registration would otherwise go unnoticed.
                let ready = box.hasArrivals || control.abortError(context: tag.context) != nil
                    || peerControl.exited.pointee.load(ordering: .sequentiallyConsistent)
                if ready, let waiter = box.unpark() {
                    group.parked.subtract(1, ordering: .relaxed)
                    waiter.continuation.resume()
                }
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
            let isNew = control.aborts.pointee.withLock { aborts -> Bool in
                guard aborts[context] == nil else { return false }
                aborts[context] = forwarded
                return true
            }
            guard isNew else { continue }
            control.abortCount.pointee.add(1, ordering: .releasing)
            for sender in 0..<group.size {
                if let waiter = group.box(to: receiver, from: sender).unpark(where: { $0.tag.context == context }) {
                    group.parked.subtract(1, ordering: .relaxed)
                    waiter.continuation.resume(throwing: forwarded)
                }
            }
        }
        group.wakeBoards(context: context)
    }

    static func desync(receiver: Int, sender: Int, waiting: Tag, got: Tag) -> SkeinError {
        SkeinError(
            .desync, rank: receiver, peer: sender,
            "rank \(sender) is already in call #\(got.sequence) while rank \(receiver) waits for its part of call "
                + "#\(waiting.sequence); rank \(sender) skipped a collective the others called")
    }
}

extension InProcessTransport: SharedMemoryTransport {
    public func sharedBoard(context: UInt32) -> (any SharedMemoryBoard)? { InProcessBoardSeat(board: group.board(context: context), rank: rank) }
}
