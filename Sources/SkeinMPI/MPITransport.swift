#if MPI
import CMPI
import SkeinCore
import Synchronization
import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// Skein's transport over MPI: one rank per process, started by `mpirun -n P` or `srun`.
///
/// Nothing here blocks a Swift thread. Every MPI call is non-blocking (`MPI_Isend`, `MPI_Improbe` +
/// `MPI_Imrecv`, `MPI_Iallreduce`, …) and made under one lock, so `MPI_THREAD_SERIALIZED` suffices;
/// `MPI_THREAD_MULTIPLE` is asked for and the level granted is reported. A waiting task drives MPI's
/// progress itself (polling, then yielding its thread), which keeps small-message latency at MPI's
/// own; a thread of the transport's own keeps sends moving while no task waits.
///
/// Wire format: a message whose payload is small travels as one MPI message (a 64-byte header, chunk
/// sizes, then the bytes copied behind them); a large one as a header message followed by one MPI
/// message per chunk, sent straight from the chunk's memory. MPI keeps one sender's messages in order,
/// so the receiver pairs chunks with their header. Matching by Skein's (source, tag) happens here.
///
/// A peer that dies (killed, crashed) is noticed by its process id on the same host within about
/// 10 ms of a wait on it, and otherwise when the deadline passes; the rank that notices aborts the
/// call and tells every other rank, so all survivors name the same dead rank.
public final class MPITransport: NativeCollectives, HostTopology, @unchecked Sendable {
    // @unchecked: the MPI handles are immutable after init; all mutable state is in `engine`'s lock.
    public let rank: Int
    public let size: Int
    /// The thread support level MPI granted (`MPI_THREAD_MULTIPLE` is asked for).
    public let threadLevel: Int32
    /// The host name MPI reports for each rank.
    public let hosts: [String]
    /// Each rank's process id (used to tell a dead peer on the same host from a slow one).
    public let processIDs: [Int32]
    /// True when more ranks share this host than it has cores: waits then yield their core.
    public let oversubscribed: Bool
    /// Per rank: whether it runs on this host (its process can be watched).
    let sameHost: [Bool]

    let comm: MPI_Comm?
    let nativeComm: MPI_Comm?
    /// Memory all ranks share when they run on one host (nil otherwise, or with
    /// SKEIN_MPI_SHARED_MEMORY=0): communicators' boards for `SharedMemoryAlgorithm`.
    let segment: MPISharedSegment?
    /// The boards handed out, by context.
    let boards = Mutex<[UInt32: MPISharedBoard]>([:])
    let engine: Mutex<ProgressEngine>
    let running = Atomic<Bool>(true)
    /// Set while this process has no MPI work (`sleepUntilAll`, `setResting`): the progress thread then
    /// looks every 10 ms instead of every 1.3 ms, so a process that only waits wakes no core from
    /// the work beside it.
    let resting = Atomic<Bool>(false)
    /// Counts polls by waiting tasks; the progress thread keeps away while it moves.
    let polls = Atomic<Int>(0)

    public var deliversByReference: Bool { false }

    private static let started = Mutex<Bool>(false)

    /// Initialises MPI (once per process) and builds the transport over `MPI_COMM_WORLD`.
    public static func start() throws(SkeinError) -> MPITransport {
        let first = started.withLock { started -> Bool in
            defer { started = true }
            return !started
        }
        guard first else {
            throw SkeinError(.invalidArgument, "MPITransport.start() was called twice; MPI can be initialised once per process")
        }
        var provided: Int32 = 0
        var argc: Int32 = 0
        let rc = MPI_Init_thread(&argc, nil, skein_mpi_thread_multiple(), &provided)
        guard rc == MPI_SUCCESS else { throw SkeinError(.unavailable, "MPI_Init_thread failed: \(errorString(rc))") }
        return try MPITransport(threadLevel: provided)
    }

    private init(threadLevel: Int32) throws(SkeinError) {
        let world = skein_mpi_comm_world()
        MPI_Comm_set_errhandler(world, skein_mpi_errors_return())
        var rank: Int32 = 0, size: Int32 = 0
        MPI_Comm_rank(world, &rank)
        MPI_Comm_size(world, &size)
        self.rank = Int(rank)
        self.size = Int(size)
        self.threadLevel = threadLevel
        guard threadLevel >= skein_mpi_thread_serialized() else {
            throw SkeinError(
                .unavailable, rank: Int(rank),
                "MPI granted thread level \(Self.threadLevelName(threadLevel)); Skein needs MPI_THREAD_SERIALIZED or better")
        }
        // Skein's messages and MPI's own collectives each get a communicator of their own, so neither
        // can match the other's (or the application's) messages.
        var p2p = skein_mpi_comm_null(), native = skein_mpi_comm_null()
        MPI_Comm_dup(world, &p2p)
        MPI_Comm_dup(world, &native)
        MPI_Comm_set_errhandler(p2p, skein_mpi_errors_return())
        MPI_Comm_set_errhandler(native, skein_mpi_errors_return())
        comm = p2p
        nativeComm = native

        // Who runs where: host names and process ids, gathered once (blocking, at start-up only).
        let nameWidth = Int(skein_mpi_max_processor_name())
        var name = [CChar](repeating: 0, count: nameWidth)
        var nameLength: Int32 = 0
        MPI_Get_processor_name(&name, &nameLength)
        var names = [CChar](repeating: 0, count: nameWidth * Int(size))
        MPI_Allgather(&name, Int32(nameWidth), skein_mpi_byte(), &names, Int32(nameWidth), skein_mpi_byte(), world)
        let hostNames = (0..<Int(size)).map { index in
            cString(names[(index * nameWidth)..<((index + 1) * nameWidth)])
        }
        hosts = hostNames
        sameHost = hostNames.map { $0 == hostNames[Int(rank)] }
        var pid = getpid()
        var pids = [Int32](repeating: 0, count: Int(size))
        MPI_Allgather(&pid, 1, skein_mpi_int32(), &pids, 1, skein_mpi_int32(), world)
        processIDs = pids
        let local = hostNames.filter { $0 == hostNames[Int(rank)] }.count
        oversubscribed = local > ProcessInfo.processInfo.activeProcessorCount
        engine = Mutex(
            ProgressEngine(
                size: Int(size), rank: Int(rank), comm: p2p, localPeers: local - 1,
                watched: (0..<Int(size)).map { hostNames[$0] == hostNames[Int(rank)] && $0 != Int(rank) ? pids[$0] : nil }))
        segment = size > 1 && ProcessInfo.processInfo.environment["SKEIN_MPI_SHARED_MEMORY"] != "0"
            ? MPISharedSegment.allocate(comm: world, rank: Int(rank), size: Int(size)) : nil

        let thread = Thread { [self] in backgroundProgress() }
        thread.name = "skein-mpi-progress"
        thread.start()
    }

    /// The name of an MPI thread level (`MPI_THREAD_MULTIPLE` …).
    public static func threadLevelName(_ level: Int32) -> String {
        switch level {
        case skein_mpi_thread_single(): "MPI_THREAD_SINGLE"
        case skein_mpi_thread_funneled(): "MPI_THREAD_FUNNELED"
        case skein_mpi_thread_serialized(): "MPI_THREAD_SERIALIZED"
        case skein_mpi_thread_multiple(): "MPI_THREAD_MULTIPLE"
        default: "thread level \(level)"
        }
    }

    public var threadLevelName: String { Self.threadLevelName(threadLevel) }

    public func sharesHost(with peer: Int) -> Bool { sameHost[peer] }

    /// The MPI library's version string (`Open MPI v4.1.4, …`).
    public static var libraryVersion: String {
        var buffer = [CChar](repeating: 0, count: Int(skein_mpi_max_library_version_string()) + 1)
        var length: Int32 = 0
        MPI_Get_library_version(&buffer, &length)
        let text = cString(buffer[...])
        return text.split(separator: ",").first.map(String.init) ?? text
    }

    /// Stops the progress thread, lets outstanding sends finish (for up to `grace`), and finalises MPI.
    /// After a peer died, pass `finalize: false`: MPI_Finalize would wait for the dead rank.
    public func shutdown(finalize: Bool = true, grace: Duration = .seconds(5)) {
        let deadline = MonotonicClock.deadline(after: grace)  // sub-second graces count too
        while now() < deadline {
            let idle = engine.withLock { engine -> Bool in
                engine.startDeferred()
                engine.progress()
                return !engine.hasWork && engine.marks.allSatisfy { $0 == nil }
            }
            if idle { break }
            usleep(50)
        }
        running.store(false, ordering: .releasing)
        if finalize {
            _ = engine.withLock { engine in
                engine.finalized = true
                segment?.free()  // collective, as finalising is: every rank is here
                return MPI_Finalize()
            }
        }
    }

    public func now() -> UInt64 { MonotonicClock.now() }

    /// Seconds one way of an 8-byte blocking MPI_Send/MPI_Recv ping-pong between ranks 0 and 1 (the
    /// peer's figure for `skein-mpi-check pingpong`); blocks the calling thread.
    public func rawPingPong(rounds: Int) -> Double {
        var value = 0.0
        var best = Double.infinity
        for _ in 0..<2 {
            let t0 = now()
            for _ in 0..<rounds {
                if rank == 0 {
                    MPI_Send(&value, 8, skein_mpi_byte(), 1, 9, nativeComm)
                    MPI_Recv(&value, 8, skein_mpi_byte(), 1, 9, nativeComm, skein_mpi_status_ignore())
                } else if rank == 1 {
                    MPI_Recv(&value, 8, skein_mpi_byte(), 0, 9, nativeComm, skein_mpi_status_ignore())
                    MPI_Send(&value, 8, skein_mpi_byte(), 0, 9, nativeComm)
                }
            }
            best = min(best, Double(now() - t0) / 1e9 / Double(rounds) / 2)
        }
        return best
    }

    /// A barrier that sleeps between looks (10 ms) instead of spinning: for ranks that wait while one
    /// rank works alone and should have the cores to itself.
    public func sleepUntilAll() async {
        var request: MPI_Request? = skein_mpi_request_null()
        engine.withLock { _ in _ = MPI_Ibarrier(nativeComm, &request) }
        setResting(true)
        defer { setResting(false) }
        while true {
            var done: Int32 = 0
            engine.withLock { _ in _ = MPI_Test(&request, &done, skein_mpi_status_ignore()) }
            if done != 0 { return }
            // Every wake-up of these processes preempts the rank that works alone: at p = 4 on two
            // cores, looking every millisecond left in-process barriers 2-4× slower than alone.
            try? await Task.sleep(for: .milliseconds(10))
        }
    }

    /// Marks this process as making no MPI calls for a while (true) or again (false): the progress
    /// thread then looks only every 10 ms.
    public func setResting(_ resting: Bool) { self.resting.store(resting, ordering: .relaxed) }

    // MARK: messages

    public func send(_ message: Message, to peer: Int, tag: Tag) throws(SkeinError) {
        guard (0..<size).contains(peer) else {
            throw SkeinError(.invalidArgument, rank: rank, peer: peer, "send to rank \(peer) outside 0..<\(size)")
        }
        let failure = engine.withLock { engine -> SkeinError? in
            if let aborted = engine.aborted[tag.context] { return aborted }
            // Sends to a dead rank would each hold one of MPI's shared-memory fragments for good (512 by
            // default), and once they run out nothing moves to any rank: so look before sending, at
            // most every 50 µs per peer (one kill(pid, 0), a fraction of a microsecond).
            if sameHost[peer] {
                let time = now()
                if time &- engine.checkedAt[peer] > 50_000 {
                    engine.checkedAt[peer] = time
                    if kill(processIDs[peer], 0) != 0 && errno == ESRCH { engine.gone[peer] = true }
                }
                if engine.gone[peer] {
                    return SkeinError(
                        .peerExited, rank: rank, peer: peer,
                        "rank \(peer) (pid \(processIDs[peer]) on \(hosts[peer])) is gone (exited, killed or crashed); rank \(rank) could not send call \(tag) to it")
                }
            }
            // A rank that only sends (a scatter root, a gather leaf) must still hear of aborts and free
            // finished requests: progress every 32 sends.
            engine.sendsSinceProgress += 1
            if engine.sendsSinceProgress >= 32 {
                engine.sendsSinceProgress = 0
                engine.progress()
                if let aborted = engine.aborted[tag.context] { return aborted }
            }
            return engine.post(message, to: Int32(peer), tag: tag)
        }
        if let failure { throw failure }
    }

    public func receive(from peer: Int, tag: Tag, deadline: UInt64) async throws(SkeinError) -> Message {
        try await receive(from: peer, tag: tag, deadline: deadline, into: nil)
    }

    public func receive(
        from peer: Int, tag: Tag, deadline: UInt64, into destination: UnsafeMutableRawBufferPointer?
    ) async throws(SkeinError) -> Message {
        guard (0..<size).contains(peer) else {
            throw SkeinError(.invalidArgument, rank: rank, peer: peer, "receive from rank \(peer) outside 0..<\(size)")
        }
        // Passed as an address and a count: the pointer type is not Sendable, and `wait` may run elsewhere.
        let (address, count) = (UInt(bitPattern: destination?.baseAddress), destination?.count ?? 0)
        do {
            return try await wait(on: peer, context: tag.context, deadline: deadline, what: "a message of call \(tag)", call: tag) { engine in
                let destination = UnsafeMutableRawPointer(bitPattern: address).map { UnsafeMutableRawBufferPointer(start: $0, count: count) }
                return engine.take(from: peer, tag: tag, into: destination)
            }
        } catch {
            if address != 0 { await finishReceives(into: address..<(address + UInt(count))) }
            throw error
        }
    }

    /// Lets the receives still writing into a failed call's destination end (for up to a second,
    /// then cancels them), so that MPI writes nothing into the caller's memory once the call has
    /// thrown. On one host they ended inside `MPI_Imrecv` already (a single copy); between hosts a
    /// dead sender fails them within moments.
    private func finishReceives(into region: Range<UInt>) async {
        let deadline = MonotonicClock.deadline(after: .seconds(1))
        while true {
            let cancelling = now() >= deadline
            let pending = engine.withLock { engine -> Bool in
                if engine.finalized { return false }
                engine.progress()
                var pending = false
                for index in engine.receives.indices where region.contains(UInt(bitPattern: engine.receives[index].base)) {
                    if cancelling { MPI_Cancel(&engine.receives[index].request) }
                    pending = true
                }
                return pending
            }
            if !pending || cancelling { return }
            try? await Task.sleep(nanoseconds: 100_000)
        }
    }

    public func sendsMayRead(_ bytes: UnsafeRawBufferPointer) -> Bool {
        engine.withLock { $0.sendsRead(bytes) }
    }

    public func settleSends(reading bytes: UnsafeRawBufferPointer, deadline: UInt64) async throws(SkeinError) {
        let (address, count) = (UInt(bitPattern: bytes.baseAddress), bytes.count)
        _ = try await wait(on: nil, context: nil, deadline: deadline, what: "its sends to be received") { engine -> Bool? in
            engine.sendsRead(UnsafeRawBufferPointer(start: UnsafeRawPointer(bitPattern: address), count: count)) ? nil : true
        }
    }

    public func abort(context: UInt32, because error: SkeinError) {
        let culprit = error.peer ?? rank
        let dead = deadPeers()
        engine.withLock { engine in
            guard engine.aborted[context] == nil else { return }
            engine.aborted[context] = SkeinError(
                .aborted, rank: rank, peer: culprit, "this rank aborted call context \(context): \(error.message)")
            engine.discard(context: context)
            for peer in 0..<size where peer != rank && !dead.contains(peer) {
                engine.postControl(context: context, culprit: Int32(culprit), reason: error.message, to: Int32(peer))
            }
        }
    }

    /// Polls until `ready` yields a result: drives MPI's progress, checks the deadline and whether the
    /// awaited peer still lives, and gives the thread (and core, when oversubscribed) away between polls.
    func wait<R>(
        on peer: Int?, context: UInt32?, deadline: UInt64, what: String, call: Tag? = nil,
        _ ready: (inout ProgressEngine) -> R?
    ) async throws(SkeinError) -> R {
        var polls = 0
        // Checks and Task.yield every 16 polls when ranks share cores, every 256 otherwise (a yield
        // costs a trip through the executor, more than a short wait lasts).
        let yieldMask = oversubscribed ? 15 : 255
        // The first look at the peer's process after 1 ms of waiting, then every 10 ms.
        let started = now()
        var livenessAt = started &+ 1_000_000
        // After 2 ms the wait is long (a large transfer, a task running elsewhere): sleep between looks,
        // so the core goes to whoever works meanwhile (on a small host, often the peer we wait for,
        // or this process's own copy threads) instead of to a spinning poll.
        let patience = started &+ 2_000_000
        var patient = false
        while true {
            var failure: SkeinError?
            let result = engine.withLock { engine -> R? in
                if let context, let aborted = engine.aborted[context] {
                    failure = aborted
                    return nil
                }
                if let result = ready(&engine) { return result }
                engine.progress()
                return ready(&engine)
            }
            if let result { return result }
            if let failure { throw failure }
            polls += 1
            self.polls.wrappingAdd(1, ordering: .relaxed)
            // With more ranks than cores the peer we wait for may need this core: give it at every
            // poll, as Open MPI does when oversubscribed (mpi_yield_when_idle).
            if oversubscribed { sched_yield() }
            guard patient || polls & yieldMask == 0 else { continue }
            let time = now()
            if time >= deadline || time >= livenessAt {
                livenessAt = time &+ 10_000_000
                // Only the awaited peer (all peers for a native call, which involves every rank): a rank
                // that died earlier and was shrunk away must not fail later calls.
                if let dead = peer.map({ [$0] })?.filter({ !isAlive($0) }).first ?? (peer == nil ? deadPeers().first : nil) {
                    // What the peer sent before it went may still be on its way in: take one more look.
                    if let result = engine.withLock({ engine -> R? in
                        engine.progress()
                        return ready(&engine)
                    }) {
                        return result
                    }
                    throw SkeinError(
                        .peerExited, rank: rank, peer: dead,
                        "rank \(dead) (pid \(processIDs[dead]) on \(hosts[dead])) is gone (exited, killed or crashed) while rank \(rank) waited for \(what)"
                            + (peer.map { " from rank \($0)" } ?? ""))
                }
                // The awaited peer ran this very call on the shared-memory board: it will send nothing.
                if let peer, let call, let board = boards.withLock({ $0[call.context] }),
                    board.memory.holdsCall(peer, sequence: call.sequence)
                {
                    throw .peerRunsOnBoard(rank: rank, peer: peer, sequence: call.sequence)
                }
                if time >= deadline {
                    throw SkeinError(
                        .timeout, rank: rank, peer: peer,
                        "rank \(rank) waited past its deadline for \(what)" + (peer.map { " from rank \($0)" } ?? "")
                            + "; that rank is alive but did not send (a slower or stuck rank, or mismatched calls)")
                }
            }
            if time >= patience {
                patient = true
                try? await Task.sleep(nanoseconds: 50_000)
            } else {
                await Task.yield()
            }
        }
    }

    /// Ranks on this host whose process is gone (or a zombie).
    public func deadPeers() -> [Int] {
        (0..<size).filter { $0 != rank && !isAlive($0) }
    }

    /// False when `peer` runs on this host and its process is gone; true otherwise (a peer on another
    /// host is taken to live until a deadline says otherwise).
    public func isAlive(_ peer: Int) -> Bool {
        peer == rank || hosts[peer] != hosts[rank] || Self.processAlive(processIDs[peer])
    }

    static func processAlive(_ pid: Int32) -> Bool {
        #if os(Linux)
        guard let stat = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8) else { return false }
        // The state follows the parenthesised command name: Z (zombie) and X (dead) no longer run.
        guard let close = stat.lastIndex(of: ")") else { return true }
        let state = stat[stat.index(after: close)...].drop { $0 == " " }.first
        return state != "Z" && state != "X"
        #else
        return kill(pid, 0) == 0 || errno != ESRCH
        #endif
    }

    /// Keeps sends (and receives nobody is polling for) moving while no task waits.
    private func backgroundProgress() {
        var seen = 0
        var idleRounds = 6
        while running.load(ordering: .acquiring) {
            let polls = self.polls.load(ordering: .relaxed)
            if polls != seen {
                seen = polls  // a task is polling: stay out of its way
                usleep(oversubscribed ? 2000 : 200)
                continue
            }
            // Every wake-up of this thread preempts a rank that may be spinning on the core: look often
            // only while something moves, and back off to 1 ms while nothing does.
            let moved = engine.withLock { engine -> Bool in
                let before = engine.completions
                engine.progress()
                return engine.completions != before
            }
            idleRounds = moved ? 0 : min(idleRounds + 1, 6)
            usleep(resting.load(ordering: .relaxed) && !moved ? 10_000 : UInt32(20 << idleRounds))
        }
    }

    static func errorString(_ code: Int32) -> String {
        var buffer = [CChar](repeating: 0, count: Int(skein_mpi_max_error_string()) + 1)
        var length: Int32 = 0
        MPI_Error_string(code, &buffer, &length)
        return cString(buffer[...])
    }
}

/// The text of a NUL-terminated C string held in an array.
func cString(_ characters: ArraySlice<CChar>) -> String {
    String(decoding: characters.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
}

/// MPI requests, the per-source queues of arriving messages, and aborted contexts: everything the
/// transport's lock guards.
struct ProgressEngine: @unchecked Sendable {
    // @unchecked: MPI handles are plain pointers; the engine is only touched under its Mutex.
    enum Kind: Int32 {
        case small = 0, header = 1, chunk = 2, control = 3
    }

    /// Payloads up to this size are copied behind the header into one MPI message.
    static let inlineLimit = 16 << 10
    /// Messages up to this size arrive whole with their envelope on every transport MPI uses (the
    /// smallest eager limit, shared memory's, is 4 KiB), so a matched receive of one cannot block.
    static let surelyEager = 1024
    /// Most chunks one header message announces (the count travels in the MPI tag, ≥ 32767 by standard).
    static let maxAnnouncedChunks = 8000
    /// Chunk messages of this size and more are matched when they arrive but received only once a
    /// receiver asks for their message (`start`): then straight into its destination when it has
    /// one, and by the waiting receiver's thread rather than by whichever thread polled first (the
    /// progress thread's 2 MiB copy took the core from the rank's own work for 250 µs).
    static let deferredChunk = 64 << 10

    struct PendingSend {
        var request: MPI_Request?
        var keep: Message?
        var buffer: AllocatedStorage?
    }

    /// One MPI receive in flight: which arriving message it belongs to and which part it is.
    struct PendingReceive {
        var request: MPI_Request?
        var incoming: Incoming
        /// -1 for the header (or the whole of a small message), else the chunk's index.
        var part: Int
        /// Where the bytes land: memory of the receive's own, or the receiver's destination.
        var storage: ByteStorage
        var base: UnsafeMutableRawPointer
        var kind: Kind
        var source: Int
    }

    let rank: Int
    let comm: MPI_Comm?
    var sends: [PendingSend] = []
    var receives: [PendingReceive] = []
    /// Arriving messages per source, in the order the source sent them.
    var queues: [ArrivalQueue]
    /// Per source: the header message still being paired with its chunk messages.
    var assembling: [Incoming?]
    var aborted: [UInt32: SkeinError] = [:]
    /// Per peer: when its process was last looked at before a send, and whether it was gone.
    var checkedAt: [UInt64]
    var gone: [Bool]
    /// Flow control per peer (see `post`): the outstanding synchronous send, messages since it, and
    /// messages waiting for credit.
    var marks: [PendingSend?]
    var sinceMark: [Int]
    var backlog: [Backlog]
    var sendsSinceProgress = 0
    /// Counts finished MPI requests and arrivals: the progress thread backs off while it stands still.
    var completions = 0
    var progressPasses = 0
    /// Request arrays handed to `MPI_Testsome`, kept to allocate nothing per poll.
    var scratch: [MPI_Request?] = []
    var indexes: [Int32] = []
    let window: Int
    /// Native calls given up on (deadline, dead peer): MPI may still touch their buffers.
    var abandoned: [NativeRequest] = []
    /// Set under the lock that calls MPI_Finalize: a task still polling after shutdown (a runtime
    /// worker's wait, the progress thread's last pass) must not touch MPI again, which aborts the job.
    var finalized = false

    /// Per source: its process id where it runs on this host (its death can be seen), else nil.
    let watched: [Int32?]

    init(size: Int, rank: Int, comm: MPI_Comm?, localPeers: Int, watched: [Int32?]) {
        self.rank = rank
        self.comm = comm
        self.watched = watched
        queues = Array(repeating: ArrivalQueue(), count: size)
        assembling = Array(repeating: nil, count: size)
        checkedAt = Array(repeating: 0, count: size)
        gone = Array(repeating: false, count: size)
        marks = Array(repeating: nil, count: size)
        sinceMark = Array(repeating: 0, count: size)
        backlog = Array(repeating: Backlog(), count: size)
        // Up to 2 × window messages per peer await matching: keep the sum well under 512 fragments.
        window = max(4, min(64, 200 / max(localPeers, 1)))
    }

    var hasWork: Bool { !sends.isEmpty || !receives.isEmpty || backlog.contains { !$0.isEmpty } }

    // MARK: sending

    /// Sends `message`, or queues it behind earlier ones while the peer's credit is spent.
    ///
    /// Flow control: every `window`-th message to a peer goes out as a synchronous send (`MPI_Issend`,
    /// complete once the peer has matched it), and at most `window` more may follow before it completes.
    /// Without it a rank that only sends (a scatter root) runs arbitrarily far ahead, and each message
    /// a slow or dead peer has not taken holds one of MPI's shared-memory fragments (512 per process by
    /// default): once they run out, nothing moves to any rank.
    mutating func post(_ message: Message, to peer: Int32, tag: Tag) -> SkeinError? {
        let index = Int(peer)
        if !backlog[index].isEmpty || (marks[index] != nil && sinceMark[index] >= window) {
            backlog[index].items.append((message, tag))
            return nil
        }
        sinceMark[index] += 1
        let synchronous = sinceMark[index] >= window && marks[index] == nil
        if synchronous { sinceMark[index] = 0 }
        return transmit(message, to: peer, tag: tag, synchronous: synchronous)
    }

    /// Posts what queued messages the peers' credit allows.
    mutating func drainBacklog() {
        for index in marks.indices where marks[index] != nil {
            var done: Int32 = 0
            MPI_Test(&marks[index]!.request, &done, skein_mpi_status_ignore())
            if done != 0 {
                marks[index] = nil
                completions &+= 1
            }
        }
        for index in backlog.indices where !backlog[index].isEmpty {
            while !backlog[index].isEmpty && !(marks[index] != nil && sinceMark[index] >= window) {
                let (message, tag) = backlog[index].items[backlog[index].head]
                backlog[index].head += 1
                sinceMark[index] += 1
                let synchronous = sinceMark[index] >= window && marks[index] == nil
                if synchronous { sinceMark[index] = 0 }
                _ = transmit(message, to: Int32(index), tag: tag, synchronous: synchronous)
            }
            backlog[index].compact()
        }
    }

    /// Forgets everything of an aborted call: queued sends nobody will receive (they would hold up
    /// the survivors' next calls behind them) and arrived messages nobody will take.
    mutating func discard(context: UInt32) {
        startDeferred(context: context)
        for index in backlog.indices {
            backlog[index].items.removeAll { $0.1.context == context }
            backlog[index].head = 0
            queues[index].removeAll { $0.tag?.context == context && $0.message != nil }
        }
    }

    private mutating func transmit(_ message: Message, to peer: Int32, tag: Tag, synchronous: Bool) -> SkeinError? {
        var payload = 0, real = 0
        for chunk in message.chunks where !chunk.isPhantom {
            payload += chunk.byteCount
            real += 1
        }
        let headerBytes = WireHeader.byteCount(chunks: message.chunks.count)
        if payload <= Self.inlineLimit || real > Self.maxAnnouncedChunks {
            let buffer = AllocatedStorage(uninitializedByteCount: headerBytes + payload)
            WireHeader.write(message, tag: tag, to: buffer.base)
            var offset = headerBytes
            for chunk in message.chunks where !chunk.isPhantom {
                chunk.withUnsafeBytes { bytes in
                    if let from = bytes.baseAddress, bytes.count > 0 { (buffer.base + offset).copyMemory(from: from, byteCount: bytes.count) }
                }
                offset += chunk.byteCount
            }
            return isend(buffer.base, count: buffer.byteCount, to: peer, kind: .small, keep: nil, buffer: buffer, synchronous: synchronous)
        }
        let header = AllocatedStorage(uninitializedByteCount: headerBytes)
        WireHeader.write(message, tag: tag, to: header.base)
        if let failure = isend(
            header.base, count: headerBytes, to: peer, kind: .header, announcing: real, keep: nil, buffer: header, synchronous: synchronous)
        {
            return failure
        }
        for chunk in message.chunks where !chunk.isPhantom {
            guard chunk.byteCount <= Int(Int32.max) else {
                return SkeinError(.unavailable, rank: rank, "a chunk of \(chunk.byteCount) bytes exceeds MPI's count limit of 2^31−1")
            }
            let failure = chunk.withUnsafeBytes { bytes in
                isend(bytes.baseAddress ?? UnsafeRawPointer(header.base), count: bytes.count, to: peer, kind: .chunk, keep: message, buffer: nil)
            }
            if let failure { return failure }
        }
        return nil
    }

    mutating func postControl(context: UInt32, culprit: Int32, reason: String, to peer: Int32) {
        let text = Array(reason.utf8.prefix(400))
        let buffer = AllocatedStorage(uninitializedByteCount: 8 + text.count)
        buffer.base.storeBytes(of: context, toByteOffset: 0, as: UInt32.self)
        buffer.base.storeBytes(of: culprit, toByteOffset: 4, as: Int32.self)
        text.withUnsafeBytes { (buffer.base + 8).copyMemory(from: $0.baseAddress!, byteCount: text.count) }
        _ = isend(buffer.base, count: buffer.byteCount, to: peer, kind: .control, keep: nil, buffer: buffer)
    }

    private mutating func isend(
        _ pointer: UnsafeRawPointer, count: Int, to peer: Int32, kind: Kind, announcing: Int = 0, keep: Message?, buffer: AllocatedStorage?,
        synchronous: Bool = false
    ) -> SkeinError? {
        if finalized {
            return SkeinError(.unavailable, rank: rank, peer: Int(peer), "rank \(rank) sent to rank \(peer) after its MPI transport shut down (MPI is finalised)")
        }
        var request: MPI_Request? = skein_mpi_request_null()
        let mpiTag = kind.rawValue | Int32(announcing << 2)
        let rc = synchronous
            ? MPI_Issend(pointer, Int32(count), skein_mpi_byte(), peer, mpiTag, comm, &request)
            : MPI_Isend(pointer, Int32(count), skein_mpi_byte(), peer, mpiTag, comm, &request)
        guard rc == MPI_SUCCESS else {
            return SkeinError(.peerExited, rank: rank, peer: Int(peer), "MPI_Isend to rank \(peer) failed: \(MPITransport.errorString(rc))")
        }
        if synchronous {
            marks[Int(peer)] = PendingSend(request: request, keep: keep, buffer: buffer)
        } else {
            sends.append(PendingSend(request: request, keep: keep, buffer: buffer))
        }
        return nil
    }

    // MARK: receiving

    /// A rank that has sent (or begun sending) a message of call `tag`, if any has arrived.
    func sourceOfMessage(in tag: Tag) -> Int? {
        queues.indices.first { source in queues[source].contains { $0.tag == tag } }
    }

    /// The next message from `source` with `tag`, if it has arrived whole and no earlier message from
    /// that source that might carry the same tag is still arriving. Starts receiving its deferred
    /// chunks (into `destination` where it fits, see `start`) once it is the one asked for.
    mutating func take(from source: Int, tag: Tag, into destination: UnsafeMutableRawBufferPointer? = nil) -> Message? {
        if let incoming = queues[source].first(tag), incoming.message == nil, !incoming.deferred.isEmpty {
            start(incoming, from: source, into: destination)
        }
        return queues[source].take(tag)
    }

    /// Receives `incoming`'s deferred chunks: straight into `destination` when the message's payload
    /// is exactly its size (every chunk real, laid out in order) and no send of this rank still reads
    /// it; else into memory of their own.
    /// Nothing is received from a source whose process is gone: Open MPI's single-copy read from it
    /// fails and is retried for good, inside `MPI_Imrecv`. (The message stays incomplete; the
    /// receiver's wait names the dead rank.)
    mutating func start(_ incoming: Incoming, from source: Int, into destination: UnsafeMutableRawBufferPointer?) {
        if let pid = watched[source], !MPITransport.processAlive(pid) { return }
        var offsets: [Int]?
        if let destination, let base = destination.baseAddress, incoming.separate.count == incoming.chunks.count {
            var positions: [Int] = []
            positions.reserveCapacity(incoming.chunks.count)
            var total = 0
            for chunk in incoming.chunks {
                positions.append(total)
                total += chunk.byteCount
            }
            if total == destination.count && !sendsRead(UnsafeRawBufferPointer(start: base, count: total)) { offsets = positions }
        }
        for deferred in incoming.deferred {
            var handle = deferred.handle
            let byteCount = Int(deferred.count)
            let index = incoming.separate[deferred.part]
            let storage: ByteStorage
            let base: UnsafeMutableRawPointer
            if let offsets, let destination = destination?.baseAddress, incoming.chunks[index].byteCount == byteCount {
                base = destination + offsets[index]
                storage = BorrowedStorage(UnsafeRawBufferPointer(start: base, count: byteCount), owner: nil)
            } else {
                let owned = AllocatedStorage(uninitializedByteCount: byteCount)
                (storage, base) = (owned, owned.base)
            }
            var request: MPI_Request? = skein_mpi_request_null()
            MPI_Imrecv(base, deferred.count, skein_mpi_byte(), &handle, &request)
            receives.append(
                PendingReceive(request: request, incoming: incoming, part: deferred.part, storage: storage, base: base, kind: .chunk, source: source))
        }
        incoming.deferred.removeAll()
    }

    /// Starts every deferred chunk (of `context`, or all): nobody will ask for them (an aborted call,
    /// shutdown), but their senders wait until they are received.
    mutating func startDeferred(context: UInt32? = nil) {
        for source in queues.indices {
            for incoming in queues[source].pending(where: { !$0.deferred.isEmpty && (context == nil || $0.tag?.context == context) }) {
                start(incoming, from: source, into: nil)
            }
        }
    }

    /// True while a send of this rank (posted, or queued for credit) may still read `region`: it
    /// tests the posted ones first, so a send whose receiver has its bytes no longer counts.
    mutating func sendsRead(_ region: UnsafeRawBufferPointer) -> Bool {
        for queue in backlog where !queue.isEmpty {
            if queue.items[queue.head...].contains(where: { Self.message($0.0, reads: region) }) { return true }
        }
        var reading = false
        var index = sends.count - 1
        while index >= 0 {
            if Self.message(sends[index].keep, reads: region) {
                var done: Int32 = 0
                MPI_Test(&sends[index].request, &done, skein_mpi_status_ignore())
                if done != 0 {
                    sends.remove(at: index)
                    completions &+= 1
                } else {
                    reading = true
                }
            }
            index -= 1
        }
        for peer in marks.indices where Self.message(marks[peer]?.keep, reads: region) {
            var done: Int32 = 0
            MPI_Test(&marks[peer]!.request, &done, skein_mpi_status_ignore())
            if done != 0 {
                marks[peer] = nil
                completions &+= 1
            } else {
                reading = true
            }
        }
        return reading
    }

    /// True when one of `message`'s chunks lies (partly) in `region`.
    static func message(_ message: Message?, reads region: UnsafeRawBufferPointer) -> Bool {
        guard let message, let start = region.baseAddress, region.count > 0 else { return false }
        let end = start + region.count
        return message.chunks.contains { chunk in
            chunk.withUnsafeBytes { bytes in
                guard let from = bytes.baseAddress, bytes.count > 0 else { return false }
                return from < end && start < from + bytes.count
            }
        }
    }

    /// Completes what MPI has finished, and starts receiving every newly arrived message.
    mutating func progress() {
        if finalized { return }
        testReceives()
        var flag: Int32 = 0
        var status = MPI_Status()
        var probes = 0
        while probes < 64 {
            var handle: MPI_Message? = skein_mpi_message_null()
            guard MPI_Improbe(skein_mpi_any_source(), skein_mpi_any_tag(), comm, &flag, &handle, &status) == MPI_SUCCESS, flag != 0 else { break }
            probes += 1
            var count: Int32 = 0
            MPI_Get_count(&status, skein_mpi_byte(), &count)
            let source = Int(status.MPI_SOURCE)
            guard let kind = Kind(rawValue: status.MPI_TAG & 3) else { continue }
            let incoming: Incoming
            var part = -1
            switch kind {
            case .small, .control:
                incoming = Incoming(announced: 0)
                if kind == .small { queues[source].append(incoming) }
            case .header:
                incoming = Incoming(announced: Int(status.MPI_TAG >> 2))
                queues[source].append(incoming)
                if incoming.announced > 0 { assembling[source] = incoming }
            case .chunk:
                guard let open = assembling[source] else { continue }
                incoming = open
                part = open.nextPart
                open.nextPart += 1
                if open.nextPart == open.announced { assembling[source] = nil }
            }
            if kind == .chunk && Int(count) >= Self.deferredChunk {
                incoming.deferred.append((part, handle, count))
                continue
            }
            let storage = AllocatedStorage(uninitializedByteCount: Int(count))
            var request: MPI_Request? = skein_mpi_request_null()
            if count <= Self.surelyEager && kind != .chunk {
                // Far below every BTL's eager limit, so its bytes are here already and the matched
                // receive returns at once: no request to track.
                MPI_Mrecv(storage.base, count, skein_mpi_byte(), &handle, skein_mpi_status_ignore())
                complete(PendingReceive(request: request, incoming: incoming, part: part, storage: storage, base: storage.base, kind: kind, source: source))
                continue
            }
            MPI_Imrecv(storage.base, count, skein_mpi_byte(), &handle, &request)
            receives.append(PendingReceive(request: request, incoming: incoming, part: part, storage: storage, base: storage.base, kind: kind, source: source))
        }
        if probes > 0 { testReceives() }
        // Finished sends only free buffers and credit: look every 8th pass (each test of an unfinished
        // request is another pass of MPI's progress engine), at once when they pile up or are owed.
        progressPasses &+= 1
        if progressPasses & 7 == 0 || sends.count > 64 || backlog.contains(where: { !$0.isEmpty }) {
            testSends()
            drainBacklog()
        }
    }

    /// Completes finished receives. One `MPI_Testsome` over all of them: each `MPI_Test` of an
    /// unfinished request runs a whole pass of MPI's progress engine.
    private mutating func testReceives() {
        guard !receives.isEmpty else { return }
        if receives.count == 1 {
            var done: Int32 = 0
            MPI_Test(&receives[0].request, &done, skein_mpi_status_ignore())
            if done != 0 { complete(receives.removeLast()) }
            return
        }
        scratch.removeAll(keepingCapacity: true)
        for pending in receives { scratch.append(pending.request) }
        guard let finished = testSome() else { return }
        var kept: [PendingReceive] = []
        kept.reserveCapacity(receives.count - finished.count)
        var done: [PendingReceive] = []
        for index in receives.indices {
            if finished.contains(index) {
                done.append(receives[index])
            } else {
                var pending = receives[index]
                pending.request = scratch[index]
                kept.append(pending)
            }
        }
        receives = kept
        for part in done { complete(part) }
    }

    /// `MPI_Testsome` over `scratch`: the indexes of the requests that finished, or nil if none did.
    private mutating func testSome() -> Set<Int>? {
        if indexes.count < scratch.count { indexes = [Int32](repeating: 0, count: scratch.count * 2) }
        var finishedCount: Int32 = 0
        MPI_Testsome(Int32(scratch.count), &scratch, &finishedCount, &indexes, skein_mpi_statuses_ignore())
        guard finishedCount > 0, finishedCount != skein_mpi_undefined() else { return nil }
        return Set(indexes[0..<Int(finishedCount)].map(Int.init))
    }

    mutating func complete(_ part: PendingReceive) {
        completions &+= 1
        let incoming = part.incoming
        switch part.kind {
        case .control:
            let base = part.base
            let context = base.loadUnaligned(fromByteOffset: 0, as: UInt32.self)
            let culprit = Int(base.loadUnaligned(fromByteOffset: 4, as: Int32.self))
            let reason = String(decoding: UnsafeRawBufferPointer(start: base + 8, count: part.storage.byteCount - 8), as: UTF8.self)
            if aborted[context] == nil {
                aborted[context] = SkeinError(
                    .aborted, rank: rank, peer: culprit, "rank \(part.source) aborted call context \(context): \(reason)")
                discard(context: context)
            }
            return
        case .small:
            WireHeader.read(unsafeDowncast(part.storage, to: AllocatedStorage.self), into: incoming, inline: true)
        case .header:
            WireHeader.read(unsafeDowncast(part.storage, to: AllocatedStorage.self), into: incoming, inline: false)
        case .chunk:
            incoming.parts[part.part] = Chunk(storage: part.storage, offset: 0, byteCount: part.storage.byteCount, isWritable: true)
        }
        incoming.remaining -= 1
        if incoming.remaining == 0 { incoming.finish() }
    }

    private mutating func testSends() {
        guard !sends.isEmpty else { return }
        if sends.count == 1 {
            var done: Int32 = 0
            MPI_Test(&sends[0].request, &done, skein_mpi_status_ignore())
            if done != 0 {
                sends.removeLast()
                completions &+= 1
            }
            return
        }
        scratch.removeAll(keepingCapacity: true)
        for pending in sends { scratch.append(pending.request) }
        guard let finished = testSome() else { return }
        completions &+= finished.count
        var kept: [PendingSend] = []
        kept.reserveCapacity(sends.count - finished.count)
        for index in sends.indices where !finished.contains(index) {
            var pending = sends[index]
            pending.request = scratch[index]
            kept.append(pending)
        }
        sends = kept
    }
}

/// Messages waiting for a peer's credit, oldest first.
struct Backlog {
    var items: [(Message, Tag)] = []
    var head = 0

    var isEmpty: Bool { head == items.count }

    mutating func compact() {
        if head == items.count {
            items.removeAll(keepingCapacity: true)
            head = 0
        } else if head > 1024 && head * 2 > items.count {
            items.removeFirst(head)
            head = 0
        }
    }
}

/// A message on its way in: its header once read, its chunks as they complete.
/// One source's arriving messages, in the order it sent them. Taking the oldest costs O(1) however
/// many wait behind it (a runtime's pipelined requests pile up by the thousand): a taken message
/// leaves a hole, skipped until the holes are swept out.
struct ArrivalQueue {
    private var items: [Incoming?] = []
    private var head = 0
    private var holes = 0

    mutating func append(_ incoming: Incoming) { items.append(incoming) }

    func contains(where matches: (Incoming) -> Bool) -> Bool {
        items[head...].contains { $0.map(matches) == true }
    }

    /// The messages still queued that `matches`.
    func pending(where matches: (Incoming) -> Bool) -> [Incoming] {
        items[head...].compactMap { $0.flatMap { matches($0) ? $0 : nil } }
    }

    /// The message `take(tag)` would take once whole (nil while an earlier one's header is still arriving).
    func first(_ tag: Tag) -> Incoming? {
        for index in head..<items.count {
            guard let incoming = items[index] else { continue }
            guard let key = incoming.tag else { return nil }
            if key == tag { return incoming }
        }
        return nil
    }

    /// The first message with `tag`, if it has arrived whole and no earlier message that might carry
    /// the same tag (its header still arriving) stands before it.
    mutating func take(_ tag: Tag) -> Message? {
        for index in head..<items.count {
            guard let incoming = items[index] else { continue }
            guard let key = incoming.tag else { return nil }
            guard key == tag else { continue }
            guard let message = incoming.message else { return nil }
            items[index] = nil
            if index == head {
                head += 1
                while head < items.count, items[head] == nil {
                    head += 1
                    holes -= 1
                }
            } else {
                holes += 1
            }
            sweep()
            return message
        }
        return nil
    }

    mutating func removeAll(where matches: (Incoming) -> Bool) {
        items = items[head...].filter { $0.map { !matches($0) } == true }
        (head, holes) = (0, 0)
    }

    private mutating func sweep() {
        if head == items.count {
            items.removeAll(keepingCapacity: true)
            (head, holes) = (0, 0)
        } else if head + holes > 1024 && (head + holes) * 2 > items.count {
            items = items[head...].filter { $0 != nil }
            (head, holes) = (0, 0)
        }
    }
}

final class Incoming: @unchecked Sendable {
    // @unchecked: only touched under the engine's lock.
    var tag: Tag?
    var signature: CallSignature?
    var skew: ArrivalSkew?
    /// Chunks in order; a large message's real chunks are filled in as their MPI receives complete.
    var chunks: [Chunk] = []
    /// Indexes into `chunks` of the chunks that travel as MPI messages of their own.
    var separate: [Int] = []
    var parts: [Chunk?]
    /// Chunk messages matched but not yet received (`ProgressEngine.deferredChunk`): part, MPI's
    /// handle, bytes.
    var deferred: [(part: Int, handle: MPI_Message?, count: Int32)] = []
    /// How many chunk messages follow the header.
    let announced: Int
    /// MPI receives (header included) still to complete.
    var remaining: Int
    /// The next chunk message from the source fills this part.
    var nextPart = 0
    var message: Message?

    init(announced: Int) {
        self.announced = announced
        remaining = 1 + announced
        parts = Array(repeating: nil, count: announced)
    }

    func finish() {
        for (position, index) in separate.enumerated() {
            if let chunk = parts[position] { chunks[index] = chunk }
        }
        guard let signature, let skew else { return }
        message = Message(signature: signature, skew: skew, chunks: ChunkList(chunks))
    }
}

/// The 64-byte header every Skein message carries over MPI, then one size per chunk
/// (the top bit marks a phantom chunk).
enum WireHeader {
    static let fixed = 64
    static let phantomBit: UInt64 = 1 << 63

    static func byteCount(chunks: Int) -> Int { fixed + 8 * chunks }

    static func write(_ message: Message, tag: Tag, to base: UnsafeMutableRawPointer) {
        let s = message.signature, k = message.skew
        base.storeBytes(of: tag.context, toByteOffset: 0, as: UInt32.self)
        base.storeBytes(of: UInt32(message.chunks.count), toByteOffset: 4, as: UInt32.self)
        base.storeBytes(of: tag.sequence, toByteOffset: 8, as: UInt64.self)
        base.storeBytes(of: s.operation.rawValue, toByteOffset: 16, as: UInt8.self)
        base.storeBytes(of: s.algorithm, toByteOffset: 17, as: UInt8.self)
        base.storeBytes(of: s.dataType.rawValue, toByteOffset: 18, as: UInt8.self)
        base.storeBytes(of: s.reduceOp.rawValue, toByteOffset: 19, as: UInt8.self)
        base.storeBytes(of: s.root, toByteOffset: 20, as: Int32.self)
        base.storeBytes(of: s.count, toByteOffset: 24, as: Int64.self)
        base.storeBytes(of: s.sequence, toByteOffset: 32, as: UInt64.self)
        base.storeBytes(of: k.earliestEntry, toByteOffset: 40, as: UInt64.self)
        base.storeBytes(of: k.latestEntry, toByteOffset: 48, as: UInt64.self)
        base.storeBytes(of: k.earliestRank, toByteOffset: 56, as: Int32.self)
        base.storeBytes(of: k.latestRank, toByteOffset: 60, as: Int32.self)
        for (index, chunk) in message.chunks.enumerated() {
            let size = UInt64(chunk.byteCount) | (chunk.isPhantom ? phantomBit : 0)
            base.storeBytes(of: size, toByteOffset: fixed + 8 * index, as: UInt64.self)
        }
    }

    /// Fills `incoming` from a header; with `inline`, the chunks' bytes follow the header in `storage`.
    static func read(_ storage: AllocatedStorage, into incoming: Incoming, inline: Bool) {
        let base = UnsafeRawPointer(storage.base)
        let count = Int(base.loadUnaligned(fromByteOffset: 4, as: UInt32.self))
        incoming.tag = Tag(
            context: base.loadUnaligned(fromByteOffset: 0, as: UInt32.self),
            sequence: base.loadUnaligned(fromByteOffset: 8, as: UInt64.self))
        incoming.signature = CallSignature(
            operation: CollectiveOperation(rawValue: base.loadUnaligned(fromByteOffset: 16, as: UInt8.self)) ?? .pointToPoint,
            algorithm: base.loadUnaligned(fromByteOffset: 17, as: UInt8.self),
            dataType: DataType(rawValue: base.loadUnaligned(fromByteOffset: 18, as: UInt8.self)) ?? .float32,
            reduceOp: ReduceOp(rawValue: base.loadUnaligned(fromByteOffset: 19, as: UInt8.self)) ?? .sum,
            root: base.loadUnaligned(fromByteOffset: 20, as: Int32.self),
            count: base.loadUnaligned(fromByteOffset: 24, as: Int64.self),
            sequence: base.loadUnaligned(fromByteOffset: 32, as: UInt64.self))
        var skew = ArrivalSkew(rank: 0, entry: 0)
        skew.earliestEntry = base.loadUnaligned(fromByteOffset: 40, as: UInt64.self)
        skew.latestEntry = base.loadUnaligned(fromByteOffset: 48, as: UInt64.self)
        skew.earliestRank = base.loadUnaligned(fromByteOffset: 56, as: Int32.self)
        skew.latestRank = base.loadUnaligned(fromByteOffset: 60, as: Int32.self)
        incoming.skew = skew
        var chunks: [Chunk] = []
        chunks.reserveCapacity(count)
        var offset = byteCount(chunks: count)
        for index in 0..<count {
            let word = base.loadUnaligned(fromByteOffset: fixed + 8 * index, as: UInt64.self)
            let size = Int(word & ~phantomBit)
            if word & phantomBit != 0 {
                chunks.append(.phantom(byteCount: size))
            } else if inline {
                chunks.append(Chunk(storage: storage, offset: offset, byteCount: size, isWritable: true))
                offset += size
            } else {
                incoming.separate.append(index)
                chunks.append(.phantom(byteCount: size))  // replaced when its MPI message completes
            }
        }
        incoming.chunks = chunks
    }
}

extension MPITransport: SharedMemoryTransport {
    /// The board of `context` in the ranks' shared segment: nil when the ranks do not all run on one
    /// host, or every board is taken by other contexts (calls then go by messages).
    public func sharedBoard(context: UInt32) -> (any SharedMemoryBoard)? {
        guard let segment else { return nil }
        return boards.withLock { boards -> MPISharedBoard? in
            if let board = boards[context] { return board }
            guard let memory = segment.board(context: context) else { return nil }
            let board = MPISharedBoard(transport: self, memory: memory, context: context)
            boards[context] = board
            return board
        }
    }
}
#endif
