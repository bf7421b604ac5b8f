import Foundation
import Synchronization
import SkeinCore

/// Per-task options: the CPUs it needs, how often it is run again after failing, and its name.
public struct TaskOptions: Sendable {
    /// Worker slots (one per CPU) the task occupies while it runs.
    public var cpus: Int
    /// How many times the task is run again after it fails (a lost worker always counts).
    public var retries: Int
    /// Whether an error the task throws is retried too (otherwise only lost workers are).
    public var retryErrors: Bool
    /// The name on the timeline and in errors (the function's name when nil).
    public var name: String?
    /// Run only on this rank's worker slots (a runtime over several processes); nil: anywhere.
    public var rank: Int?

    public init(cpus: Int = 1, retries: Int = 0, retryErrors: Bool = false, name: String? = nil, rank: Int? = nil) {
        self.rank = rank
        self.cpus = cpus
        self.retries = retries
        self.retryErrors = retryErrors
        self.name = name
    }
}

/// What a running task or actor call knows about itself (a task-local): the lanes it holds and,
/// for an actor call, the actor and its place in the actor's order.
final class ExecutionContext: Sendable {
    let task: TaskRecord
    let lease: LaneLease?

    init(task: TaskRecord, lease: LaneLease?) {
        self.task = task
        self.lease = lease
    }

    @TaskLocal static var current: ExecutionContext?
}

/// What the body of an actor call sent to another rank returns once the request is sent (that rank
/// runs its actors' calls in arrival order, so the actor's next call may go at once);
/// `RuntimeCore.finish` records the result when the reply comes.
struct InFlight: Sendable {
    /// Receives the reply, when no task does yet: the actor's loop runs it when it has no more calls
    /// to send (a synchronous caller's reply is then received on the same thread), else in a task.
    let listen: (@Sendable () async -> Void)?
}

/// The worker slots a running task holds; given back early when the task blocks in `get`, so a
/// graph whose tasks wait on other tasks never runs out of workers.
final class LaneLease: Sendable {
    let lanes: [Int]
    let released = Atomic<Bool>(false)
    init(lanes: [Int]) { self.lanes = lanes }
}

/// A task (or actor call) in the graph: its function, inputs and output, and lineage for rebuilding
/// a lost output. Guarded by the runtime's lock.
final class TaskRecord: @unchecked Sendable {
    // @unchecked: the mutable fields are touched only under RuntimeCore's lock.
    let id: UInt64
    let name: String
    let options: TaskOptions
    let output: UInt64
    let deps: [UInt64]
    /// Runs the function on its resolved arguments (it holds the argument refs: lineage pins them).
    let body: @Sendable () async throws -> any Sendable
    let actor: ActorState?
    let actorSequence: Int
    /// Runs only on this process's worker slots (its function or arguments cannot travel).
    let localOnly: Bool
    var attempts = 0
    var unresolved = 0
    /// Set when the worker running it was lost: its result is discarded.
    var lostWhileRunning = false
    var failedDependency: RuntimeError?

    init(
        id: UInt64, name: String, options: TaskOptions, output: UInt64, deps: [UInt64], actor: ActorState?, actorSequence: Int,
        localOnly: Bool, body: @escaping @Sendable () async throws -> any Sendable
    ) {
        self.localOnly = localOnly
        self.id = id
        self.name = name
        self.options = options
        self.output = output
        self.deps = deps
        self.actor = actor
        self.actorSequence = actorSequence
        self.body = body
    }
}

/// An actor's queue: its calls run one at a time in submission order.
final class ActorState: @unchecked Sendable {
    // @unchecked: `queue` and `running` are touched only under RuntimeCore's lock; the state object is
    // touched only by the one call running at a time.
    let id: UInt64
    let name: String
    var queue: [TaskRecord] = []
    var running = false
    var nextSequence = 0
    var lost = false

    init(id: UInt64, name: String) {
        self.id = id
        self.name = name
    }

    /// Takes `call` out of the queue: usually its head, but a call whose input failed completes
    /// wherever it stands, and a call sent to another rank may complete before its loop dequeues it.
    func dequeue(_ call: TaskRecord) {
        if let index = queue.firstIndex(where: { $0 === call }) { queue.remove(at: index) }
    }
}

/// A suspended waiter that may be registered on several objects: the first to change (or its
/// timer) resumes it, and later attempts do nothing.
final class Waker: Sendable {
    private let continuation: CheckedContinuation<Void, Never>
    private let fired = Atomic<Bool>(false)

    init(_ continuation: CheckedContinuation<Void, Never>) { self.continuation = continuation }

    func fire() {
        if !fired.exchange(true, ordering: .acquiringAndReleasing) { continuation.resume() }
    }
}

/// The store, the task graph and the scheduler of one runtime, behind one lock.
final class RuntimeCore: Sendable {
    enum Status {
        case pending
        case ready(any Sendable)
        case failed(RuntimeError)
        case lost
        case spilled(SpilledObject)
        /// Made on another rank and kept there; fetched (and decoded) when this rank needs it.
        case remote(RemoteObject)
    }

    struct Entry {
        var status: Status = .pending
        var refs = 0
        var bytes = 0
        var producer: TaskRecord?
        /// The worker lane that holds the bytes (-1: the driver, for `put`).
        var holder = -1
        var dependents: [TaskRecord] = []
        var waiters: [UInt64: Waker] = [:]
        var lastUse: UInt64 = 0
        /// A copy in this host's shared arena, made when a task on another rank of the host read the
        /// object (the second time with cross-memory attach, whose first read copies straight from
        /// this process), and kept for the next reader until the object is freed.
        var shared: SharedBlock?
        /// True once a task on another rank has been sent this object.
        var readByAnotherRank = false
    }

    struct Event: Sendable {
        var name: String
        var row: String
        var start: UInt64
        var end: UInt64
        var task: UInt64
        var deps: [UInt64]
        var ok: Bool
    }

    struct State {
        var objects: [UInt64: Entry] = [:]
        var nextID: UInt64 = 1
        var ready: [TaskRecord?] = []
        var readyHead = 0
        var freeLanes: [Bool]
        var storedBytes = 0
        /// Bytes of the arena copies entries keep (`Entry.shared`): memory too, under the same limit.
        var sharedBytes = 0
        var spilledBytes = 0
        var events: [Event] = []
        var running = 0
        var peakRunning = 0
        var shutDown = false
        /// Output id → the task that made it, for the critical path.
        var producedBy: [UInt64: UInt64] = [:]
        var laneOfTask: [UInt64: [Int]] = [:]
        /// Entries removed under the lock: dropped after it, since a value may hold refs whose
        /// release takes the lock again.
        var graveyard: [(UInt64, Entry)] = []
        /// Set while a finishing task's runner chooses its next task: the dependents it just freed
        /// should run on its worker, which holds their input, rather than be sent elsewhere first.
        var holdDispatch = false
        /// Worker slots of ranks whose process died: never used again.
        var deadLanes: Set<Int> = []
    }

    let workers: Int
    /// Worker slots on this process (lanes 0..<localWorkers); the rest are other ranks'.
    let localWorkers: Int
    let memoryLimit: Int
    let spillDirectory: URL
    let started = MonotonicClock.now()
    let state: Mutex<State>
    /// The other ranks, when the runtime spans processes.
    let cluster: Cluster?

    init(workers: Int, localWorkers: Int, memoryLimit: Int, spillDirectory: URL, cluster: Cluster? = nil) {
        self.cluster = cluster
        self.workers = workers
        self.localWorkers = localWorkers
        self.memoryLimit = memoryLimit
        self.spillDirectory = spillDirectory
        state = Mutex(State(freeLanes: Array(repeating: true, count: workers)))
        // A rank found gone by a worker that waited for its push: what it held is lost.
        cluster?.holderLost.withLock {
            $0 = { [weak self] rank in
                guard let self, let cluster = self.cluster else { return }
                self.loseLanes((rank * cluster.workersPerRank)..<((rank + 1) * cluster.workersPerRank))
            }
        }
    }

    // MARK: reference counting

    func retain(_ id: UInt64) {
        state.withLock { state in state.objects[id]?.refs += 1 }
    }

    func release(_ id: UInt64) {
        // The freed entry (and the task record holding its lineage, with its argument refs) is
        // dropped outside the lock: its deinit releases more refs.
        let dropped = state.withLock { state -> Entry? in
            guard var entry = state.objects[id] else { return nil }
            entry.refs -= 1
            guard entry.refs <= 0, entry.dependents.isEmpty, entry.waiters.isEmpty else {
                state.objects[id] = entry
                return nil
            }
            if case .pending = entry.status, entry.producer != nil {
                state.objects[id] = entry  // still being made: freed when it finishes with no refs
                return nil
            }
            state.objects[id] = nil
            account(&state, removing: entry)
            return entry
        }
        if let dropped { discard(dropped, id: id) }
    }

    /// Lets go of what an entry holds outside this process: a spill file, a copy on another rank.
    func discard(_ entry: Entry, id: UInt64) {
        switch entry.status {
        case .spilled(let spilled): try? FileManager.default.removeItem(at: spilled.url)
        case .remote(let remote): cluster?.drop(id, at: remote.rank)
        default: break
        }
    }

    private func account(_ state: inout State, removing entry: Entry) {
        if let block = entry.shared { state.sharedBytes -= block.descriptor.count }
        switch entry.status {
        case .ready: state.storedBytes -= entry.bytes
        case .spilled: state.spilledBytes -= entry.bytes
        default: break
        }
    }

    /// Objects held and their bytes in memory (arena copies included) and on disk.
    var accounting: (objects: Int, bytes: Int, spilledBytes: Int) {
        state.withLock { ($0.objects.count, $0.storedBytes + $0.sharedBytes, $0.spilledBytes) }
    }

    // MARK: objects

    func newObject(_ state: inout State) -> UInt64 {
        let id = state.nextID
        state.nextID += 1
        state.objects[id] = Entry()
        return id
    }

    func put(_ value: any Sendable) -> UInt64 {
        let bytes = byteCount(of: value)
        let id = state.withLock { state -> UInt64 in
            let id = newObject(&state)
            state.objects[id]!.status = .ready(value)
            state.objects[id]!.bytes = bytes
            state.storedBytes += bytes
            state.objects[id]!.refs = 1  // the ref the caller gets
            return id
        }
        spillIfOver()
        return id
    }

    /// The value of a ready object, for a task about to run (its dependencies are ready by then).
    func readyValue(_ id: UInt64) async throws(RuntimeError) -> any Sendable {
        let status = state.withLock { state -> Status? in
            state.objects[id]?.lastUse = MonotonicClock.now()
            return state.objects[id]?.status
        }
        switch status {
        case .ready(let value): return value
        case .spilled(let spilled): return try restore(id, spilled)
        case .remote(let remote): return try await fetch(id, remote)
        case .failed(let error): throw error
        case .none: throw RuntimeError(.freedObject, "object #\(id) was freed before the task that reads it ran")
        case .pending, .lost: throw RuntimeError(.freedObject, "object #\(id) was not ready when its task ran (a scheduler bug)")
        }
    }

    /// Waits until object `id` is ready (or failed), rebuilding it from its lineage if it was lost.
    func value(_ id: UInt64, timeout: Duration?) async throws(RuntimeError) -> any Sendable {
        let deadline = timeout.map { MonotonicClock.deadline(after: $0) }
        var releasedLanes = false
        while true {
            let status = state.withLock { state -> Status? in
                guard let entry = state.objects[id] else { return nil }
                if case .lost = entry.status { reconstruct(id, &state) }
                state.objects[id]!.lastUse = MonotonicClock.now()
                return state.objects[id]!.status
            }
            switch status {
            case .ready(let value): return value
            case .spilled(let spilled): return try restore(id, spilled)
            case .remote(let remote):
                do {
                    return try await fetch(id, remote)
                } catch where error.code == .workerLost {
                    continue  // now lost: rebuilt from its lineage on the next turn
                }
            case .failed(let error): throw error
            case .none: throw RuntimeError(.freedObject, "object #\(id) was freed: no ref to it remained")
            case .pending, .lost: break
            }
            if let context = ExecutionContext.current {
                if let cycle = cycle(awaiting: id, from: context.task) { throw cycle }
                // A task blocked in get gives its workers back, so the tasks it waits for can run.
                if !releasedLanes, let lease = context.lease {
                    releasedLanes = true
                    releaseLanes(lease)
                }
            }
            if let deadline, MonotonicClock.now() >= deadline {
                throw RuntimeError(.timeout, "object #\(id) was not ready within the timeout")
            }
            await waitForChange(of: id, deadline: deadline)
        }
    }

    /// Suspends until object `id` changes state or `deadline` passes.
    func waitForChange(of id: UInt64, deadline: UInt64?) async {
        await waitForChange(of: [id], deadline: deadline)
    }

    /// Suspends until any of `ids` changes state (at once if one is not pending) or `deadline` passes.
    func waitForChange(of ids: [UInt64], deadline: UInt64?) async {
        let waiter = state.withLock { state -> UInt64 in
            state.nextID += 1
            return state.nextID
        }
        await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
            let waker = Waker(continuation)
            let registered = state.withLock { state -> Bool in
                let pending = ids.filter { id in
                    if case .pending = state.objects[id]?.status { return true }
                    return false
                }
                guard pending.count == ids.count else { return false }
                for id in ids { state.objects[id]!.waiters[waiter] = waker }
                return true
            }
            if !registered {
                waker.fire()
            } else if let deadline {
                Task {
                    let now = MonotonicClock.now()
                    if deadline > now { try? await Task.sleep(nanoseconds: deadline - now) }
                    waker.fire()
                }
            }
        }
        // Whichever object (or the timer) woke us, the others must not keep a stale waiter.
        state.withLock { state in
            for id in ids { state.objects[id]?.waiters[waiter] = nil }
        }
    }

    /// Wakes whoever waits on `id` (under the lock: the continuations are resumed after it).
    func takeWaiters(_ id: UInt64, _ state: inout State) -> [Waker] {
        guard let waiters = state.objects[id]?.waiters, !waiters.isEmpty else { return [] }
        state.objects[id]!.waiters = [:]
        return Array(waiters.values)
    }

    /// Reads an object kept on another rank (it stays there until it is freed: a task queued for
    /// that rank may still name it). If the rank is gone, the object is marked lost (rebuilt from
    /// its lineage) and its slots leave service.
    func fetch(_ id: UInt64, _ remote: RemoteObject) async throws(RuntimeError) -> any Sendable {
        guard let cluster else { throw RuntimeError(.freedObject, "object #\(id) lives on rank \(remote.rank), but this runtime has no cluster") }
        let start = MonotonicClock.now()
        defer { recordTransfer("object #\(id): rank \(remote.rank) → rank \(cluster.transport.rank), \(remote.bytes) B", start: start) }
        let payload = try await reaching(id, remote, on: cluster, "fetched") { try await cluster.fetch(id, from: remote.rank) }
        return try remote.decode(payload)
    }

    /// `body`'s result, which asks `remote`'s rank about object `id`. A failure becomes `.workerLost`
    /// named after the running task (if any), so that it counts as lost and is retried; if the rank
    /// is gone, its slots leave service.
    private func reaching<T>(
        _ id: UInt64, _ remote: RemoteObject, on cluster: Cluster, _ what: String, _ body: () async throws -> T
    ) async throws(RuntimeError) -> T {
        do {
            return try await body()
        } catch {
            if let error = error as? SkeinError, error.code == .peerExited || error.code == .timeout {
                loseLanes((remote.rank * cluster.workersPerRank)..<((remote.rank + 1) * cluster.workersPerRank))
            }
            throw RuntimeError(
                .workerLost, task: ExecutionContext.current?.task.name, "object #\(id) on rank \(remote.rank) could not be \(what): \(error)")
        }
    }

    /// Where a task on `reader` finds a large object `id` kept on a third rank: where it lies there
    /// when the two share a host (no byte passes through this rank), else sent by that rank straight
    /// to `reader`, as Ray's object managers pull from each other. Nil for a small object: this
    /// rank fetches it and sends it on with the task.
    func forward(_ id: UInt64, _ remote: RemoteObject, to reader: Int) async throws(RuntimeError) -> ArgumentSource? {
        guard let cluster, remote.bytes >= SharedArena.threshold else { return nil }
        let start = MonotonicClock.now()
        guard cluster.readsInPlace(reader, from: remote.rank) else {
            guard reader != cluster.transport.rank else { return nil }
            let transfer = try await reaching(id, remote, on: cluster, "sent on", { try cluster.push(id, from: remote.rank, to: reader) })
            recordTransfer("object #\(id): rank \(remote.rank) → rank \(reader), \(remote.bytes) B, sent directly", start: start)
            return .pushed(holder: remote.rank, transfer: transfer)
        }
        switch try await reaching(id, remote, on: cluster, "located", { try await cluster.locate(id, on: remote.rank) }) {
        case .elsewhere(let descriptor):
            recordTransfer("object #\(id): rank \(remote.rank) → rank \(reader), \(remote.bytes) B, read in place", start: start)
            return .sharedByAnotherRank(descriptor)
        case .inline(let payload):
            recordTransfer("object #\(id): rank \(remote.rank) → rank \(cluster.transport.rank) → rank \(reader), \(remote.bytes) B", start: start)
            return .inline(payload)
        }
    }

    /// A slice on the timeline's transfer row.
    func recordTransfer(_ name: String, start: UInt64) {
        let end = MonotonicClock.now()
        state.withLock { $0.events.append(Event(name: name, row: "transfers", start: start, end: end, task: 0, deps: [], ok: true)) }
    }

    func restore(_ id: UInt64, _ spilled: SpilledObject) throws(RuntimeError) -> any Sendable {
        let start = MonotonicClock.now()
        let value: any Sendable
        do {
            value = try spilled.restore(spilled.url)
        } catch {
            // Another reader may have restored it (and removed the file) first.
            let now = state.withLock { state -> (any Sendable)? in
                if case .ready(let value) = state.objects[id]?.status { return value }
                return nil
            }
            if let now { return now }
            throw RuntimeError(.freedObject, "object #\(id) spilled to \(spilled.url.path) could not be read back: \(error)")
        }
        state.withLock { state in
            guard var entry = state.objects[id], case .spilled = entry.status else { return }
            entry.status = .ready(value)
            state.spilledBytes -= entry.bytes
            state.storedBytes += entry.bytes
            state.objects[id] = entry
            state.events.append(Event(name: "restore #\(id)", row: "object store", start: start, end: MonotonicClock.now(), task: 0, deps: [], ok: true))
        }
        try? FileManager.default.removeItem(at: spilled.url)
        spillIfOver(keeping: id)
        return value
    }

    /// Notes that object `id` was sent to another rank and keeps `block`, its copy in the shared
    /// arena if one was made, for its next readers on this host; the copy's bytes count against
    /// the store's limit.
    func sentToAnotherRank(_ id: UInt64, keeping block: SharedBlock?) {
        let kept = state.withLock { state -> Bool in
            state.objects[id]?.readByAnotherRank = true
            guard let block, state.objects[id] != nil, state.objects[id]!.shared == nil else { return false }
            state.objects[id]!.shared = block
            state.sharedBytes += block.descriptor.count
            return true
        }
        if kept { spillIfOver(keeping: id) }  // the copy just made serves the reader it was made for
    }

    /// While the store is over its limit: first lets go of the arena copies of the least recently
    /// used objects (a later reader copies again), then moves the least recently used spillable
    /// objects to disk. Objects that cannot be spilled stay: the limit never blocks a producer, so
    /// a full store cannot deadlock the graph.
    func spillIfOver(keeping kept: UInt64? = nil) {
        while true {
            // Released after the lock: a block's release takes the arena's lock.
            let dropped = state.withLock { state -> SharedBlock? in
                guard state.storedBytes + state.sharedBytes > memoryLimit, state.sharedBytes > 0 else { return nil }
                var oldest: (id: UInt64, lastUse: UInt64)?
                for (id, entry) in state.objects where entry.shared != nil && id != kept {
                    if oldest == nil || entry.lastUse < oldest!.lastUse { oldest = (id, entry.lastUse) }
                }
                guard let oldest, let block = state.objects[oldest.id]!.shared else { return nil }
                state.objects[oldest.id]!.shared = nil
                state.sharedBytes -= block.descriptor.count
                return block
            }
            if dropped == nil { break }
        }
        while true {
            let candidate = state.withLock { state -> (UInt64, any Sendable, Int)? in
                guard state.storedBytes + state.sharedBytes > memoryLimit else { return nil }
                var best: (UInt64, any Sendable, Int, UInt64)?
                for (id, entry) in state.objects where id != kept {
                    guard case .ready(let value) = entry.status, entry.bytes >= 4096, value is any Spillable else { continue }
                    if best == nil || entry.lastUse < best!.3 { best = (id, value, entry.bytes, entry.lastUse) }
                }
                return best.map { ($0.0, $0.1, $0.2) }
            }
            guard let (id, value, bytes) = candidate else { return }
            let start = MonotonicClock.now()
            // A fresh name per spill: a restore of an earlier spill of this object removes its own file.
            let serial = state.withLock { state -> UInt64 in
                state.nextID += 1
                return state.nextID
            }
            let url = spillDirectory.appendingPathComponent("object-\(id)-\(serial).bin")
            guard let spilled = try? spill(value, to: url) else { return }
            state.withLock { state in
                guard var entry = state.objects[id], case .ready = entry.status else {
                    try? FileManager.default.removeItem(at: url)
                    return
                }
                entry.status = .spilled(spilled)
                state.storedBytes -= bytes
                state.spilledBytes += bytes
                state.objects[id] = entry
                state.events.append(Event(name: "spill #\(id)", row: "object store", start: start, end: MonotonicClock.now(), task: 0, deps: [], ok: true))
            }
        }
    }

    // MARK: tasks

    /// Adds a task (or actor call) whose output is a new object; returns the output id (with one ref
    /// taken for the caller's `ObjectRef`).
    func submit(
        name: String, options: TaskOptions, deps: [UInt64], actor: ActorState?, localOnly: Bool = true,
        body: @escaping @Sendable () async throws -> any Sendable
    ) throws(RuntimeError) -> UInt64 {
        guard options.cpus >= 0, options.cpus <= (localOnly ? localWorkers : workers) else {
            throw RuntimeError(.wrongArgumentType, task: name, "task \(name) needs \(options.cpus) CPUs; this runtime has \(workers) workers")
        }
        var wake: [Waker] = []
        let output = try state.withLock { state throws(RuntimeError) -> UInt64 in
            if state.shutDown { throw RuntimeError(.shutDown, task: name, "the runtime was shut down") }
            if let rank = options.rank, !(0..<workers).contains(where: { $0 / localWorkers == rank && !state.deadLanes.contains($0) }) {
                throw RuntimeError(.workerLost, task: name, "task \(name) is pinned to rank \(rank), which has no worker slots left (lost, or out of range)")
            }
            for dep in deps where state.objects[dep] == nil {
                throw RuntimeError(.freedObject, task: name, "an argument of \(name) (object #\(dep)) was freed")
            }
            let output = newObject(&state)
            let sequence = actor.map { actor -> Int in
                actor.nextSequence += 1
                return actor.nextSequence
            } ?? 0
            let task = TaskRecord(
                id: output, name: name, options: options, output: output, deps: deps, actor: actor, actorSequence: sequence,
                localOnly: localOnly, body: body)
            state.objects[output]!.producer = task
            state.objects[output]!.refs = 1
            if let actor { actor.queue.append(task) }
            resolve(task, &state, wake: &wake)
            return output
        }
        for waker in wake { waker.fire() }
        return output
    }

    /// Counts the task's unfinished dependencies, rebuilding lost ones; queues it when none remain.
    private func resolve(_ task: TaskRecord, _ state: inout State, wake: inout [Waker]) {
        task.unresolved = 0
        task.failedDependency = nil
        for dep in task.deps {
            guard let entry = state.objects[dep] else { continue }
            switch entry.status {
            case .ready, .spilled, .remote: continue
            case .failed(let error): task.failedDependency = error
            case .lost:
                reconstruct(dep, &state)
                state.objects[dep]!.dependents.append(task)
                task.unresolved += 1
            case .pending:
                state.objects[dep]!.dependents.append(task)
                task.unresolved += 1
            }
        }
        if task.unresolved == 0 { becomeReady(task, &state, wake: &wake) }
    }

    private func becomeReady(_ task: TaskRecord, _ state: inout State, wake: inout [Waker]) {
        if let error = task.failedDependency {
            // An input failed: so does this task, with the original error and task name.
            complete(task, with: .failure(error), lanes: [], start: MonotonicClock.now(), &state, wake: &wake)
            return
        }
        if let actor = task.actor {
            pumpActor(actor, &state)
        } else {
            state.ready.append(task)
            dispatch(&state)
        }
    }

    /// Starts ready tasks on free lanes, each on the free lane that holds most of its input bytes.
    private func dispatch(_ state: inout State) {
        guard !state.holdDispatch else { return }
        while state.readyHead < state.ready.count {
            let task = state.ready[state.readyHead]!
            let free = state.freeLanes.indices.filter { state.freeLanes[$0] && allowed(task, onLane: $0) }
            let needed = max(task.options.cpus, 1)
            guard free.count >= needed || (task.options.cpus == 0 && !free.isEmpty) else { break }
            state.ready[state.readyHead] = nil  // a dequeued record must not pin its arguments
            state.readyHead += 1
            var lanes = preferredLanes(for: task, among: free, count: task.options.cpus == 0 ? 1 : needed, state)
            lanes.sort()
            for lane in lanes { state.freeLanes[lane] = false }
            start(task, lanes: lanes, &state)
        }
        if state.readyHead == state.ready.count {
            state.ready.removeAll(keepingCapacity: true)
            state.readyHead = 0
        } else if state.readyHead > 256 && state.readyHead * 2 > state.ready.count {
            state.ready.removeFirst(state.readyHead)
            state.readyHead = 0
        }
    }

    /// Whether `task` may run on worker slot `lane` (lanes are numbered rank by rank).
    func allowed(_ task: TaskRecord, onLane lane: Int) -> Bool {
        if task.localOnly && lane >= localWorkers { return false }
        if let rank = task.options.rank, lane / localWorkers != rank { return false }
        return true
    }

    private func preferredLanes(for task: TaskRecord, among free: [Int], count: Int, _ state: State) -> [Int] {
        guard free.count > count, !task.deps.isEmpty else { return Array(free.prefix(count)) }
        var held = [Int: Int]()
        for dep in task.deps {
            if let entry = state.objects[dep], entry.holder >= 0 { held[entry.holder, default: 0] += entry.bytes }
        }
        return Array(free.sorted { (held[$0] ?? 0, -$0) > (held[$1] ?? 0, -$1) }.prefix(count))
    }

    private func start(_ task: TaskRecord, lanes: [Int], _ state: inout State) {
        task.attempts += 1
        state.running += 1
        state.peakRunning = max(state.peakRunning, state.running)
        state.laneOfTask[task.id] = lanes
        let lease = LaneLease(lanes: lanes)
        Task { await self.run(task, lease: lease) }
    }

    /// Runs a task's body with its context set, catching what it throws.
    private func execute(_ task: TaskRecord, lease: LaneLease?) async -> Result<any Sendable, any Error> {
        do {
            return .success(try await ExecutionContext.$current.withValue(ExecutionContext(task: task, lease: lease)) { try await task.body() })
        } catch {
            return .failure(error)
        }
    }

    /// Runs a task, then, while its lanes are still its own, the next ready task on them.
    private func run(_ first: TaskRecord, lease: LaneLease) async {
        var task = first
        var lease = lease
        while true {
            let start = MonotonicClock.now()
            let result = await execute(task, lease: lease)
            var wake: [Waker] = []
            let next = state.withLock { state -> (TaskRecord, LaneLease)? in
                state.running -= 1
                state.holdDispatch = true
                complete(task, with: result, lanes: lease.lanes, start: start, &state, wake: &wake)
                state.holdDispatch = false
                guard !lease.released.load(ordering: .acquiring) else {
                    dispatch(&state)
                    return nil
                }
                // Keep the lanes and take the next ready task that fits them, if any.
                if state.readyHead < state.ready.count {
                    // Of the next few ready tasks, the one with most input bytes on these lanes goes first.
                    var best = state.readyHead, bestBytes = -1
                    for index in state.readyHead..<min(state.readyHead + 8, state.ready.count) {
                        guard let candidate = state.ready[index], max(candidate.options.cpus, 1) == lease.lanes.count,
                            lease.lanes.allSatisfy({ allowed(candidate, onLane: $0) })
                        else { continue }
                        var held = 0
                        for dep in candidate.deps where lease.lanes.contains(state.objects[dep]?.holder ?? -1) {
                            held += state.objects[dep]!.bytes
                        }
                        if held > bestBytes { (best, bestBytes) = (index, held) }
                    }
                    state.ready.swapAt(state.readyHead, best)
                }
                if state.readyHead < state.ready.count, max(state.ready[state.readyHead]!.options.cpus, 1) == lease.lanes.count,
                    lease.lanes.allSatisfy({ allowed(state.ready[state.readyHead]!, onLane: $0) })
                {
                    let next = state.ready[state.readyHead]!
                    state.ready[state.readyHead] = nil
                    state.readyHead += 1
                    next.attempts += 1
                    state.running += 1
                    state.peakRunning = max(state.peakRunning, state.running)
                    state.laneOfTask[next.id] = lease.lanes
                    dispatch(&state)  // what else became ready goes to the free workers
                    return (next, LaneLease(lanes: lease.lanes))
                }
                for lane in lease.lanes where !state.deadLanes.contains(lane) { state.freeLanes[lane] = true }
                dispatch(&state)
                return nil
            }
            for waker in wake { waker.fire() }
            emptyGraveyard()
            guard let (nextTask, nextLease) = next else { return }
            task = nextTask
            lease = nextLease
        }
    }

    func emptyGraveyard() {
        let dead = state.withLock { state -> [(UInt64, Entry)] in
            defer { state.graveyard = [] }
            return state.graveyard
        }
        for (id, entry) in dead { discard(entry, id: id) }  // released here, outside the lock
    }

    func releaseLanes(_ lease: LaneLease) {
        guard !lease.released.exchange(true, ordering: .acquiringAndReleasing) else { return }
        state.withLock { state in
            for lane in lease.lanes where !state.deadLanes.contains(lane) { state.freeLanes[lane] = true }
            dispatch(&state)
        }
    }

    /// Records a finished task: stores its output or error, retries it, and releases its dependents.
    private func complete(
        _ task: TaskRecord, with result: Result<any Sendable, any Error>, lanes: [Int], start: UInt64, _ state: inout State,
        wake: inout [Waker]
    ) {
        let end = MonotonicClock.now()
        if start != end || !lanes.isEmpty || task.actor != nil {
            let row = task.actor.map { "actor \($0.name)" } ?? "worker \(lanes.first ?? 0)"
            var ok = true
            if case .failure = result { ok = false }
            state.events.append(Event(name: task.name, row: row, start: start, end: end, task: task.id, deps: task.deps, ok: ok))
        }
        state.producedBy[task.output] = task.id
        var lost = task.lostWhileRunning
        task.lostWhileRunning = false
        var outcome = result
        if lost {
            outcome = .failure(RuntimeError(.workerLost, task: task.name, "the worker running \(task.name) was lost"))
        } else if case .failure(let error as RuntimeError) = result, error.code == .workerLost, error.task == task.name {
            lost = true  // its rank died under it
        }
        if case .failure = outcome, task.failedDependency == nil {
            let retryable = lost || task.options.retryErrors
            let somewhere = (0..<workers).contains { !state.deadLanes.contains($0) && allowed(task, onLane: $0) }
            if retryable && somewhere && task.attempts <= task.options.retries {
                if let actor = task.actor {
                    actor.running = false
                    pumpActor(actor, &state)
                } else {
                    state.ready.append(task)
                    dispatch(&state)
                }
                return
            }
        }
        guard state.objects[task.output] != nil else { return }
        switch outcome {
        case .success(let value as RemoteObject):
            // Made on another rank and kept there.
            state.objects[task.output]!.status = .remote(value)
            state.objects[task.output]!.bytes = value.bytes
            state.objects[task.output]!.holder = lanes.first ?? -1
            state.objects[task.output]!.lastUse = end
        case .success(let value):
            let bytes = byteCount(of: value)
            state.objects[task.output]!.status = .ready(value)
            state.objects[task.output]!.bytes = bytes
            // A result made on another rank came back here: rank 0 holds its bytes.
            state.objects[task.output]!.holder = lanes.first.map { $0 < localWorkers ? $0 : -1 } ?? -1
            state.objects[task.output]!.lastUse = end
            state.storedBytes += bytes
        case .failure(let error):
            let failure: RuntimeError
            if let runtimeError = error as? RuntimeError {
                failure = runtimeError  // keeps the original task's name and error
            } else {
                failure = RuntimeError(
                    .taskFailed, task: task.name, underlying: error,
                    "task \(task.name) threw \(error)" + (task.attempts > 1 ? " (after \(task.attempts) attempts)" : ""))
            }
            state.objects[task.output]!.status = .failed(failure)
        }
        wake += takeWaiters(task.output, &state)
        let dependents = state.objects[task.output]!.dependents
        state.objects[task.output]!.dependents = []
        task.actor?.dequeue(task)
        for dependent in dependents {
            if case .failure = outcome, dependent.failedDependency == nil, case .failed(let error) = state.objects[task.output]!.status {
                dependent.failedDependency = error
            }
            dependent.unresolved -= 1
            if dependent.unresolved == 0 { becomeReady(dependent, &state, wake: &wake) }
        }
        // Freed already by every ref? Drop it now.
        if state.objects[task.output]!.refs <= 0 && state.objects[task.output]!.waiters.isEmpty {
            let entry = state.objects.removeValue(forKey: task.output)!
            account(&state, removing: entry)
            state.graveyard.append((task.output, entry))
        }
        state.laneOfTask[task.id] = nil
    }

    /// Runs a lost object's producer again (and, through its dependencies, theirs).
    func reconstruct(_ id: UInt64, _ state: inout State) {
        guard let entry = state.objects[id], case .lost = entry.status else { return }
        guard let producer = entry.producer else {
            state.objects[id]!.status = .failed(RuntimeError(.workerLost, "object #\(id) was put by the driver and its holder was lost; it has no lineage"))
            return
        }
        state.objects[id]!.status = .pending
        var wake: [Waker] = []
        if let actor = producer.actor {
            // An actor's state died with its worker: its results cannot be made again.
            state.objects[id]!.status = .failed(RuntimeError(.workerLost, task: producer.name, "actor \(actor.name)'s result was lost with its worker"))
            return
        }
        resolve(producer, &state, wake: &wake)
        for waker in wake { waker.fire() }
    }

    // MARK: actors

    private func pumpActor(_ actor: ActorState, _ state: inout State) {
        guard !actor.running, let head = actor.queue.first, head.unresolved == 0 else { return }
        actor.running = true
        head.attempts += 1
        Task { await self.runActor(actor, head) }
    }

    private func runActor(_ actor: ActorState, _ first: TaskRecord) async {
        var call = first
        while true {
            let start = MonotonicClock.now()
            let result = await execute(call, lease: nil)
            var wake: [Waker] = []
            var listen: (@Sendable () async -> Void)?
            let next = state.withLock { state -> TaskRecord? in
                if case .success(let inFlight as InFlight) = result {
                    listen = inFlight.listen
                    actor.dequeue(call)  // sent; `finish` completes it when its reply comes
                } else {
                    let retried = call.attempts <= call.options.retries && call.options.retryErrors
                    complete(call, with: result, lanes: [], start: start, &state, wake: &wake)
                    if case .failure = result, retried { return nil }  // complete() re-pumped it
                }
                guard let head = actor.queue.first, head.unresolved == 0 else {
                    actor.running = false
                    return nil
                }
                head.attempts += 1
                return head
            }
            for waker in wake { waker.fire() }
            emptyGraveyard()
            if let listen {
                if next == nil { await listen() } else { Task { await listen() } }
            }
            guard let next else { return }
            call = next
        }
    }

    /// Records the result of pipelined call `call`, sent at `start`, when its reply has come.
    func finish(_ call: TaskRecord, with result: Result<any Sendable, any Error>, start: UInt64) {
        var wake: [Waker] = []
        state.withLock { state in complete(call, with: result, lanes: [], start: start, &state, wake: &wake) }
        for waker in wake { waker.fire() }
        emptyGraveyard()
    }

    /// The error to throw if a call waiting on `id` can never be served: the object is made by a call
    /// of the same actor queued behind the waiting call (directly or through what that call needs).
    private func cycle(awaiting id: UInt64, from waiter: TaskRecord) -> RuntimeError? {
        guard let actor = waiter.actor else { return nil }
        return state.withLock { state -> RuntimeError? in
            var pending = [id]
            var seen = Set<UInt64>()
            while let next = pending.popLast() {
                guard seen.insert(next).inserted, let entry = state.objects[next], case .pending = entry.status,
                    let producer = entry.producer
                else { continue }
                if producer.actor === actor && producer.actorSequence > waiter.actorSequence {
                    return RuntimeError(
                        .dependencyCycle, task: waiter.name,
                        "actor \(actor.name)'s call \(waiter.name) waits for object #\(id), which needs \(producer.name), a later call to the same actor; it can only run after this one ends")
                }
                pending += producer.deps
            }
            return nil
        }
    }

    // MARK: failure injection

    /// Simulates losing worker `lane`: objects it holds are dropped (rebuilt from lineage on demand),
    /// and a task running on it loses its result (it is run again if it has retries left).
    func loseWorker(_ lane: Int) {
        state.withLock { state in
            for (id, entry) in state.objects where entry.holder == lane {
                if case .ready = entry.status {
                    state.storedBytes -= entry.bytes
                    state.objects[id]!.status = .lost
                }
            }
            for (taskID, lanes) in state.laneOfTask where lanes.contains(lane) {
                if let entry = state.objects[taskID], case .pending = entry.status { entry.producer?.lostWhileRunning = true }
            }
        }
    }

    func free(_ id: UInt64) {
        let dropped = state.withLock { state -> Entry? in
            guard let entry = state.objects[id] else { return nil }
            switch entry.status {
            case .ready, .spilled, .lost, .remote: break
            default: return nil
            }
            account(&state, removing: entry)
            state.objects[id]!.status = .failed(RuntimeError(.freedObject, "object #\(id) was freed explicitly (Runtime.free) while refs to it remained"))
            state.objects[id]!.bytes = 0
            return entry
        }
        if let dropped { discard(dropped, id: id) }
    }

    /// Takes the worker slots of a rank whose process died out of service for good.
    func loseLanes(_ lanes: Range<Int>) {
        state.withLock { state in
            for lane in lanes {
                state.deadLanes.insert(lane)
                state.freeLanes[lane] = false
            }
            // What the dead rank held is gone: rebuilt from lineage when needed.
            for (id, entry) in state.objects where lanes.contains(entry.holder) {
                if case .remote = entry.status { state.objects[id]!.status = .lost }
            }
        }
    }

    func shutdown() {
        state.withLock { $0.shutDown = true }
    }
}
