import CMemoryCopy
import CSystemCalls
import SkeinCore
import Synchronization

/// One communicator's shared-memory board among in-process ranks (see `SharedMemoryBoard`).
///
/// The slots are `SharedSlotMemory`'s: each rank's board calls take its slots in turn, and a slot
/// holds a header (the number of the rank's board call, an atomic stored last; entry time; byte
/// count; signature) and the payload. Waiting follows the receive path's policy: spin while peers have cores, then yield the
/// thread, then park until a publish, an exit, an abort or the watchdog wakes the board.
final class InProcessBoard: @unchecked Sendable {
    // @unchecked: a rank writes only its own slots, and only one no peer can still be reading;
    // peers read a slot's header and payload only after an acquiring load of its published word.
    /// Unowned and unchecked: the group owns its boards, and every call reaches a board through a
    /// transport that holds the group. A checked reference was an atomic increment on the group's
    /// count, one cache line for every rank, on every call.
    unowned(unsafe) let group: InProcessGroup
    let context: UInt32
    let size: Int
    let memory: SharedSlotMemory
    private let waiters = Mutex<[UnsafeContinuation<Void, Never>]>([])
    /// Waiters parked on this board, on a cache line of its own that publishers only read.
    let parkedCount: UnsafeMutablePointer<Atomic<Int>>

    init(group: InProcessGroup, context: UInt32) {
        self.group = group
        self.context = context
        size = group.size
        memory = SharedSlotMemory(
            base: .allocate(byteCount: SharedSlotMemory.byteCount(ranks: size), alignment: 64), ranks: size, initialize: true)
        parkedCount = UnsafeMutableRawPointer.allocate(byteCount: 64, alignment: 64).bindMemory(to: Atomic<Int>.self, capacity: 1)
        parkedCount.initialize(to: Atomic(0))
    }

    deinit {
        memory.base.deallocate()
        parkedCount.deinitialize(count: 1)
        UnsafeMutableRawPointer(parkedCount).deallocate()
    }

    /// True when `rank` has published call `sequence` or a later one (seen by the receive path:
    /// a peer that did, while this rank waits for its message in that call, runs it differently).
    func hasPublished(_ rank: Int, atOrAfter sequence: UInt64) -> Bool {
        memory.hasPublished(rank, atOrAfter: sequence)
    }

    /// Returns once every rank in `ranks` has published board call `generation` (for this rank's
    /// call `tag`: the call itself, or an earlier one whose slot the call reuses).
    func waitFor(rank: Int, generation: UInt64, ranks: Range<Int>, tag: Tag, deadline: UInt64) async throws(SkeinError) {
        let sequence = tag.sequence
        // `next` is never captured (by a local function or a closure): a captured variable lives in a
        // box whose every access is checked for exclusivity at run time, which cost more than the look.
        var next = ranks.lowerBound
        let end = ranks.upperBound
        let memory = self.memory
        unowned(unsafe) let group = self.group
        let control = group.controls[rank]
        control.onCore.pointee.store(true, ordering: .relaxed)
        control.waitingContext.pointee.store(context, ordering: .relaxed)
        control.waitingSequence.pointee.store(sequence, ordering: .relaxed)
        control.waitingFor.pointee.store(next, ordering: .releasing)
        defer { control.waitingFor.pointee.store(-1, ordering: .releasing) }
        while true {
            do {
                // Counted as a spinner only while spinning (not while yielding or parked below).
                let spinners = InProcessGroup.spinners.wrappingAdd(1, ordering: .relaxed).newValue
                defer { InProcessGroup.spinners.wrappingSubtract(1, ordering: .relaxed) }
                let limit = spinners <= group.cores ? group.spinLimit : min(group.spinLimit, 64)
                var spins = 0
                while spins < limit {
                    spins &+= 1
                    if memory.allPublished(generation, from: &next, to: end) { return }
                    skein_spin_pause()
                    if spins & 1023 == 0 { try check(rank: rank, tag: tag, generation: generation, next: next, end: end, deadline: deadline) }
                }
            }
            // Ranks that outnumber the cores: poll while the awaited peer holds a thread, otherwise
            // hand this thread over, since that peer may be waiting for one.
            for _ in 0..<(size > 2 ? 64 : 4) {
                var polls = 0
                while polls < 4096 && group.controls[next].onCore.pointee.load(ordering: .relaxed) {
                    polls &+= 1
                    if memory.allPublished(generation, from: &next, to: end) { return }
                }
                control.waitingFor.pointee.store(next, ordering: .releasing)
                control.onCore.pointee.store(false, ordering: .relaxed)
                await Task.yield()
                control.onCore.pointee.store(true, ordering: .relaxed)
                if memory.allPublished(generation, from: &next, to: end) { return }
                try check(rank: rank, tag: tag, generation: generation, next: next, end: end, deadline: deadline)
            }
            control.waitingFor.pointee.store(next, ordering: .releasing)
            control.onCore.pointee.store(false, ordering: .relaxed)
            let awaited = next
            await park {
                var from = awaited
                return memory.allPublished(generation, from: &from, to: end) || control.abortError(context: tag.context) != nil
                    || group.controls[awaited].exited.pointee.load(ordering: .sequentiallyConsistent)
            }
            control.onCore.pointee.store(true, ordering: .relaxed)
            if memory.allPublished(generation, from: &next, to: end) { return }
            try check(rank: rank, tag: tag, generation: generation, next: next, end: end, deadline: deadline)
        }
    }

    /// Why the wait of call `tag` for ranks `next..<end` to publish board call `generation` cannot
    /// end, if it cannot: an abort, a peer that exited, skipped the call or runs it by messages, or the deadline.
    private func check(rank: Int, tag: Tag, generation: UInt64, next: Int, end: Int, deadline: UInt64) throws(SkeinError) {
        if let error = group.controls[rank].abortError(context: tag.context) { throw error }
        let sequence = tag.sequence
        for peer in next..<end where !memory.hasPublished(peer, generation: generation) {
            // A later call first, this call's slot again after it: a peer that published this call and
            // went on to the next meanwhile shows this call to the second look.
            let later = memory.latestSequence(of: peer)
            if later > sequence, !memory.hasPublished(peer, generation: generation) {
                throw SkeinError(
                    .desync, rank: rank, peer: peer,
                    "rank \(peer) is already in call #\(later) while rank \(rank) waits for its part of call #\(sequence); "
                        + "rank \(peer) skipped a collective the others called")
            }
            let control = group.controls[peer]
            let waitsInMessages = control.waitingFor.pointee.load(ordering: .acquiring) >= 0
                && control.waitingContext.pointee.load(ordering: .relaxed) == tag.context
                && control.waitingSequence.pointee.load(ordering: .relaxed) >= sequence
            // Evidence read first, the slot again after it: a peer that published and then moved on
            // (to wait or send in a later call) shows its publish to this second look.
            let elsewhere = waitsInMessages || group.box(to: rank, from: peer).holdsCall(in: tag.context, from: sequence)
            if elsewhere, !memory.hasPublished(peer, generation: generation) {
                throw .peerRunsByMessages(rank: rank, peer: peer, sequence: sequence)
            }
            if control.exited.pointee.load(ordering: .acquiring), !memory.hasPublished(peer, generation: generation) {
                throw InProcessGroup.exitedError(receiver: rank, peer: peer, tag: tag)
            }
        }
        if group.clock.now() >= deadline { throw group.timeoutError(receiver: rank, peer: next, tag: tag) }
    }

    /// Sleeps until `wakeAll` (a publish, an exit, an abort, or the watchdog's periodic look).
    private func park(unlessReady ready: () -> Bool) async {
        group.startWatchdogIfNeeded()
        await withUnsafeContinuation { (continuation: UnsafeContinuation<Void, Never>) in
            waiters.withLock { list in
                list.append(continuation)
                parkedCount.pointee.add(1, ordering: .sequentiallyConsistent)
            }
            group.parked.add(1, ordering: .relaxed)
            // Re-check after registering: a publish whose look for waiters came first went unnoticed.
            // The fence makes this waiter's registration and every running publisher's store seen
            // by both before either looks (see `InProcessBoardSeat.publish`).
            if group.parkingFence { skein_process_fence() }
            if ready() { wakeAll() }
        }
    }

    /// Wakes every parked waiter of this board to look again.
    func wakeAll() {
        let woken = waiters.withLock { list -> [UnsafeContinuation<Void, Never>] in
            defer { list.removeAll() }
            parkedCount.pointee.subtract(list.count, ordering: .sequentiallyConsistent)
            return list
        }
        guard !woken.isEmpty else { return }
        group.parked.subtract(woken.count, ordering: .relaxed)
        for continuation in woken { continuation.resume() }
    }

    var hasParked: Bool { parkedCount.pointee.load(ordering: .relaxed) > 0 }
}

/// One rank's handle on a board: what a communicator holds. The board is one object that every
/// rank shares, so the fast path reads only this rank's own copies of what it needs: a call that
/// retained the board (as calling through it does) wrote its reference count, and the two cores
/// passed that cache line back and forth on every call, a miss each time.
final class InProcessBoardSeat: SharedMemoryBoard, @unchecked Sendable {
    // @unchecked: the pointers lead to the board's memory (see `InProcessBoard`), kept alive by `owner`;
    // `cursor` is used by the seat's one rank, whose calls follow one another.
    unowned(unsafe) let board: InProcessBoard
    /// Keeps the board alive for as long as the handle (the unowned field avoids counting per call).
    private let owner: InProcessBoard
    private let memory: SharedSlotMemory
    private let control: RankControl
    private let parkedCount: UnsafeMutablePointer<Atomic<Int>>
    private let context: UInt32
    /// Looks for every rank's part right after publishing: peers with a core of their own publish
    /// within a microsecond, so look without writing anything shared and without entering the async
    /// wait, whose frame and executor checks cost as much.
    private let looks: Int
    /// The group's `parkingFence`, read here without a hop through the board.
    private let parkingFence: Bool
    /// This rank's board calls and how far every rank is known to have come (this rank's alone).
    @exclusivity(unchecked) private var cursor = BoardCursor()
    var sharesAddressSpace: Bool { true }

    init(board: InProcessBoard, rank: Int) {
        self.board = board
        owner = board
        memory = board.memory
        control = board.group.controls[rank]
        parkedCount = board.parkedCount
        context = board.context
        // Ranks that share cores: the others cannot publish while this rank holds the core.
        looks = board.size > board.group.cores ? 1 : 768
        parkingFence = board.group.parkingFence
    }

    func publish(
        rank: Int, signature: CallSignature, entry: UInt64, byteCount: Int, awaiting: Range<Int>, readAhead: Bool,
        fill: (UnsafeMutableRawBufferPointer) -> Void
    ) throws(SkeinError) -> BoardPublish {
        if let error = control.abortError(context: context) { throw error }
        guard try cursor.publish(on: memory, rank: rank, context: context, signature: signature, entry: entry, byteCount: byteCount, fill: fill)
        else { return .full }
        // Either this rank sees a parking waiter's registration, or the waiter's re-check sees this
        // publish: that needs a full fence between each side's store and its load. The waiter, about
        // to sleep anyway, takes the heavy side for both (a fence on every running thread of the
        // process), so that here a compiler barrier will do: a fence here (the store's xchg) stalled
        // every call until the slot's line came back from the core that read it last (7% of a
        // p = 2 broadcast's time).
        if parkingFence { skein_compiler_barrier() } else { atomicMemoryFence(ordering: .sequentiallyConsistent) }
        if parkedCount.pointee.load(ordering: .relaxed) > 0 { board.wakeAll() }
        return cursor.look(on: memory, awaiting: awaiting, readAhead: readAhead, times: looks)
    }

    func awaitRoom(rank: Int, sequence: UInt64, byteCount: Int, deadline: UInt64) async throws(SkeinError) {
        let room = cursor.room(on: memory, rank: rank, byteCount: byteCount)
        let everyone = 0..<memory.ranks
        try await board.waitFor(rank: rank, generation: room.generation, ranks: everyone, tag: Tag(context: context, sequence: room.sequence), deadline: deadline)
        cursor.heard(from: everyone, room.generation, on: memory)
    }

    func awaitAll(rank: Int, sequence: UInt64, awaiting: Range<Int>, deadline: UInt64) async throws(SkeinError) -> SharedSlots {
        let (generation, ranks) = (cursor.generation, awaiting.clamped(to: 0..<memory.ranks))
        try await board.waitFor(rank: rank, generation: generation, ranks: ranks, tag: Tag(context: context, sequence: sequence), deadline: deadline)
        cursor.heard(from: ranks, generation, on: memory)
        return memory.slots(generation)
    }
}
