import Foundation
import Synchronization
import SkeinCore

/// A function registered on a runtime by name, with typed arguments and result.
public struct RemoteFunction<each A: Sendable, R: Sendable>: Sendable {
    public let name: String
    let body: @Sendable (repeat each A) async throws -> R
}

/// Skein's task runtime (its Ray Core), embedded: workers are slots on Swift's thread pool in this
/// process, objects are never copied or encoded, and a ref's object is freed when no ref remains.
///
/// ```swift
/// let runtime = Runtime(workers: 4)
/// let square = runtime.register("square") { (x: Int) in x * x }
/// let add = runtime.register("add") { (a: Int, b: Int) in a + b }
/// let a = try runtime.submit(square, 3), b = try runtime.submit(square, 4)
/// let sum = try await runtime.get(try runtime.submit(add, .ref(a), .ref(b)))   // 25
/// ```
public final class Runtime: Sendable {
    let core: RuntimeCore
    let registry = Mutex<[String: ErasedFunction]>([:])
    /// The other ranks, when the runtime spans processes.
    let cluster: Cluster?
    /// States of the actors made from `ActorClass`es that live in this process.
    let actorInstances = ActorInstances()

    struct ErasedFunction: Sendable {
        let arity: Int
        let signature: String
        let call: @Sendable ([any Sendable]) async throws -> any Sendable
        /// The same function on encoded arguments, for a call from another rank.
        let wire: @Sendable ([WirePayload]) async throws -> WirePayload
    }

    /// A runtime with `workers` worker slots (one per core by default). Past `memoryLimit` bytes the
    /// store moves the least recently used arrays to `spillDirectory` and reads them back on demand.
    public convenience init(workers: Int = ProcessInfo.processInfo.activeProcessorCount, memoryLimit: Int = Int.max, spillDirectory: URL? = nil) {
        self.init(workers: workers, memoryLimit: memoryLimit, spillDirectory: spillDirectory, cluster: nil)
    }

    init(workers: Int, memoryLimit: Int = Int.max, spillDirectory: URL? = nil, cluster: Cluster?) {
        self.cluster = cluster
        let directory = spillDirectory ?? FileManager.default.temporaryDirectory.appendingPathComponent("skein-spill-\(getpid())-\(UInt32.random(in: 0...UInt32.max))")
        try? FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        core = RuntimeCore(
            workers: max(workers, 1), localWorkers: cluster?.workersPerRank ?? max(workers, 1), memoryLimit: memoryLimit, spillDirectory: directory,
            cluster: cluster)
    }

    /// Worker slots.
    public var workers: Int { core.workers }

    /// Stops accepting work; tasks already running finish.
    public func shutdown() {
        if isDriver { cluster?.stopWorkers() }
        core.shutdown()
        try? FileManager.default.removeItem(at: core.spillDirectory)
    }

    // MARK: functions and tasks

    /// Registers `body` under `name` (on every process, as in SPMD, the same name must mean the same
    /// function); returns the typed handle `submit` takes.
    @discardableResult
    public func register<each A: Sendable, R: Sendable>(
        _ name: String, _ body: @escaping @Sendable (repeat each A) async throws -> R
    ) -> RemoteFunction<repeat each A, R> {
        let function = RemoteFunction<repeat each A, R>(name: name, body: body)
        var arity = 0
        var types: [String] = []
        for type in repeat (each A).self {
            arity += 1
            types.append("\(type)")
        }
        let signature = "(\(types.joined(separator: ", "))) -> \(R.self)"
        let count = arity
        let erased = ErasedFunction(arity: arity, signature: signature) { arguments in
            var index = 0
            func next<T>(_: T.Type) throws(RuntimeError) -> T {
                defer { index += 1 }
                guard let value = arguments[index] as? T else {
                    throw RuntimeError(
                        .wrongArgumentType, task: name,
                        "argument \(index + 1) of \(name)\(signature) is a \(type(of: arguments[index])), not a \(T.self)")
                }
                return value
            }
            return try await body(repeat try next((each A).self))
        } wire: { payloads in
            guard payloads.count == count else {
                throw RuntimeError(.wrongArgumentType, task: name, "\(name)\(signature) takes \(count) arguments, not \(payloads.count)")
            }
            var index = 0
            func next<T>(_: T.Type) throws(RuntimeError) -> T {
                defer { index += 1 }
                return try Wire.decode(T.self, payloads[index])
            }
            return try Wire.encode(try await body(repeat try next((each A).self)))
        }
        registry.withLock { $0[name] = erased }
        return function
    }

    /// Runs `function` on `args` (values, or refs whose objects it receives once ready); returns a
    /// ref to its result at once.
    public func submit<each A: Sendable, R: Sendable>(
        _ function: RemoteFunction<repeat each A, R>, _ args: repeat Arg<each A>, options: TaskOptions = TaskOptions()
    ) throws(RuntimeError) -> ObjectRef<R> {
        let deps = try core.dependencies(repeat each args, of: function.name)
        let captured = (repeat each args)
        let core = self.core
        let cluster = self.cluster
        var travels = Self.travels(R.self)
        for type in repeat (each A).self { travels = travels && Self.travels(type) }
        let body: @Sendable () async throws -> any Sendable = {
            // On another rank's worker slot: send the call there; its result stays there.
            if let cluster, let context = ExecutionContext.current, let lane = context.lease?.lanes.first,
                cluster.rank(ofLane: lane) != cluster.transport.rank
            {
                let target = cluster.rank(ofLane: lane)
                var sources: [ArgumentSource] = []
                let start = MonotonicClock.now()
                for arg in repeat each captured { sources.append(try await core.source(of: arg, for: target)) }
                let sent = sources.reduce(0) { $0 + $1.bytesMoved }
                if sent >= 4096 { core.recordTransfer("arguments of \(function.name): rank \(cluster.transport.rank) → rank \(target), \(sent) B", start: start) }
                return try await cluster.run(function.name, output: context.task.output, sources, on: target, returning: R.self) { error in
                    // The rank is gone: its slots leave service, and the task counts as lost (retried elsewhere).
                    core.loseLanes((target * cluster.workersPerRank)..<((target + 1) * cluster.workersPerRank))
                    return RuntimeError(
                        .workerLost, task: options.name ?? function.name,
                        "rank \(target), running \(options.name ?? function.name), was lost: \(error.message)")
                }
            }
            let values = (repeat try await core.argument(each captured))
            return try await function.body(repeat each values)
        }
        let id = try core.submit(
            name: options.name ?? function.name, options: options, deps: deps, actor: nil, localOnly: cluster == nil || !travels, body: body)
        return ObjectRef(id: id, core: core, retained: true)
    }

    /// Runs the function registered as `name` on `args` (plain values, `ObjectRef`s or `AnyObjectRef`s);
    /// argument types are checked when it runs (a mismatch fails the task with `.wrongArgumentType`).
    public func submit(named name: String, _ args: [any Sendable], options: TaskOptions = TaskOptions()) throws(RuntimeError) -> AnyObjectRef {
        guard let function = registry.withLock({ $0[name] }) else {
            let known = registry.withLock { $0.keys.sorted() }
            throw RuntimeError(
                .unregisteredFunction, task: name,
                "no function is registered as \"\(name)\"" + (known.isEmpty ? "" : "; registered: \(known.joined(separator: ", "))"))
        }
        guard args.count == function.arity else {
            throw RuntimeError(.wrongArgumentType, task: name, "\(name)\(function.signature) takes \(function.arity) arguments, not \(args.count)")
        }
        var deps: [UInt64] = []
        for case let ref as any ErasedRef in args {
            guard ref.core === core else { throw RuntimeError(.foreignReference, task: name, "an argument of \(name) is \(ref) from another runtime") }
            deps.append(ref.id)
        }
        let core = self.core
        let body: @Sendable () async throws -> any Sendable = {
            var values: [any Sendable] = []
            for arg in args {
                if let ref = arg as? any ErasedRef {
                    values.append(try await core.readyValue(ref.id))
                } else {
                    values.append(arg)
                }
            }
            return try await function.call(values)
        }
        let id = try core.submit(name: options.name ?? name, options: options, deps: deps, actor: nil, localOnly: true, body: body)
        return AnyObjectRef(id: id, core: core, retained: true)
    }

    // MARK: objects

    /// Stores `value` and returns a ref to it (in embedded mode the value is kept, not copied).
    public func put<T: Sendable>(_ value: T) -> ObjectRef<T> {
        ObjectRef(id: core.put(value), core: core, retained: true)
    }

    /// The object's value, waiting until its task finishes (or `timeout` passes). A task that threw
    /// makes this throw its error, with its name. Called inside a task, it gives the task's worker
    /// back while it waits.
    public func get<T: Sendable>(_ ref: ObjectRef<T>, timeout: Duration? = nil) async throws(RuntimeError) -> T {
        guard ref.core === core else { throw RuntimeError(.foreignReference, "\(ref) belongs to another runtime") }
        let value = try await core.value(ref.id, timeout: timeout)
        guard let typed = value as? T else {
            throw RuntimeError(.wrongArgumentType, "object #\(ref.id) holds a \(type(of: value)), not a \(T.self)")
        }
        return typed
    }

    /// The values of `refs`, in order.
    public func get<T: Sendable>(_ refs: [ObjectRef<T>], timeout: Duration? = nil) async throws(RuntimeError) -> [T] {
        var values: [T] = []
        values.reserveCapacity(refs.count)
        for ref in refs { values.append(try await get(ref, timeout: timeout)) }
        return values
    }

    /// The untyped object's value.
    public func get(_ ref: AnyObjectRef, timeout: Duration? = nil) async throws(RuntimeError) -> any Sendable {
        guard ref.core === core else { throw RuntimeError(.foreignReference, "\(ref) belongs to another runtime") }
        return try await core.value(ref.id, timeout: timeout)
    }

    /// Waits until `count` of `refs` are ready (finished or failed), or `timeout` passes; returns
    /// the ready ones and the rest, each in the order given.
    public func wait<T: Sendable>(
        _ refs: [ObjectRef<T>], count: Int? = nil, timeout: Duration? = nil
    ) async -> (ready: [ObjectRef<T>], pending: [ObjectRef<T>]) {
        let finished = await core.waitForAny(refs.map(\.id), count: count, timeout: timeout)
        return (zip(refs, finished).filter { $0.1 }.map(\.0), zip(refs, finished).filter { !$0.1 }.map(\.0))
    }

    /// Drops the object's value now, whatever refs remain (as `ray.internal.free`); a later `get`
    /// of it throws `.freedObject`.
    public func free<T: Sendable>(_ ref: ObjectRef<T>) { core.free(ref.id) }

    /// Whether values of `type` can travel between processes.
    static func travels(_ type: Any.Type) -> Bool {
        type is any RawWire.Type || type is any Codable.Type
    }

    /// `wait` over refs of different types.
    public func wait(
        _ refs: [AnyObjectRef], count: Int? = nil, timeout: Duration? = nil
    ) async -> (ready: [AnyObjectRef], pending: [AnyObjectRef]) {
        let finished = await core.waitForAny(refs.map(\.id), count: count, timeout: timeout)
        return (zip(refs, finished).filter { $0.1 }.map(\.0), zip(refs, finished).filter { !$0.1 }.map(\.0))
    }

    /// Objects held, their bytes in memory (with the copies kept in the shared arena for other ranks
    /// of the host), and bytes spilled to disk.
    public var store: (objects: Int, bytes: Int, spilledBytes: Int) { core.accounting }

    /// Bytes this rank holds in its host's shared arena for other ranks to read (copies of large
    /// objects read more than once, or of every one without cross-memory attach; zero once they
    /// are all freed).
    public var sharedBytes: Int { cluster?.sharedBytesInUse ?? 0 }

    /// Simulates losing worker `worker`: its objects are gone (rebuilt from lineage when needed)
    /// and its running task loses its result (run again if it has retries).
    public func simulateWorkerFailure(_ worker: Int) { core.loseWorker(worker) }
}

/// Refs seen through `any` (typed or not), for `submit(named:)`.
protocol ErasedRef: Sendable {
    var id: UInt64 { get }
    var core: RuntimeCore { get }
}

extension AnyObjectRef: ErasedRef {}

extension ObjectRef: ErasedRef {}


extension RuntimeCore {
    /// The ids of the refs among `args`; a ref of another runtime is an error naming `task`.
    /// (`task` is built only for the error: an actor call's name is an interpolation.)
    func dependencies<each A: Sendable>(_ args: repeat Arg<each A>, of task: @autoclosure () -> String) throws(RuntimeError) -> [UInt64] {
        var deps: [UInt64] = []
        for arg in repeat each args {
            if case .ref(let ref) = arg {
                guard ref.core === self else {
                    let name = task()
                    throw RuntimeError(.foreignReference, task: name, "an argument of \(name) is \(ref) from another runtime")
                }
                deps.append(ref.id)
            }
        }
        return deps
    }

    /// A task's argument, resolved when the task runs.
    func argument<T: Sendable>(_ arg: Arg<T>) async throws -> T {
        switch arg {
        case .value(let value): return value
        case .ref(let ref):
            let value = try await readyValue(ref.id)
            guard let typed = value as? T else {
                throw RuntimeError(.wrongArgumentType, "object #\(ref.id) holds a \(type(of: value)), not a \(T.self)")
            }
            return typed
        }
    }

    /// How a task on `rank` gets this argument: from its own rank's store when the object lives
    /// there, where it lies when on this host, else in the request (fetched here first if it lives
    /// on a third rank of another host).
    func source<T: Sendable>(of arg: Arg<T>, for rank: Int) async throws -> ArgumentSource {
        switch arg {
        case .value(let value):
            let payload = try Wire.encode(value)
            return cluster?.share(payload, with: rank, inArena: Self.readsInPlace(T.self)).map(ArgumentSource.shared) ?? .inline(payload)
        case .ref(let ref):
            let (status, shared, readBefore) = state.withLock { state in
                state.objects[ref.id].map { ($0.status, $0.shared, $0.readByAnotherRank) } ?? (nil, nil, false)
            }
            if case .remote(let remote) = status {
                if remote.rank == rank { return .stored(ref.id) }
                if let forwarded = try await forward(ref.id, remote, to: rank) { return forwarded }
            }
            if let shared { return .shared(.arena(shared)) }
            let payload = try Wire.encode(try await readyValue(ref.id))
            guard let bytes = cluster?.share(payload, with: rank, inArena: readBefore || Self.readsInPlace(T.self)) else { return .inline(payload) }
            sentToAnotherRank(ref.id, keeping: bytes.arenaBlock)
            return .shared(bytes)
        }
    }

    /// Whether a task's argument of type `type` reads its bytes where they lie (`SharedArray`).
    static func readsInPlace(_ type: Any.Type) -> Bool { (type as? any RawWire.Type)?.readsInPlace ?? false }

    /// Waits until `count` (all by default) of `ids` are finished or `timeout` passes; which are.
    func waitForAny(_ ids: [UInt64], count: Int?, timeout: Duration?) async -> [Bool] {
        let wanted = min(count ?? ids.count, ids.count)
        let deadline = timeout.map { MonotonicClock.deadline(after: $0) }
        while true {
            state.withLock { state in
                for id in ids { reconstruct(id, &state) }  // a lost object is waited for as it is rebuilt
            }
            let finished = ids.map(isFinished)
            if finished.filter({ $0 }).count >= wanted || (deadline.map { MonotonicClock.now() >= $0 } ?? false) { return finished }
            // Sleep until any unfinished one changes (or the deadline): no polling.
            await waitForChange(of: zip(ids, finished).filter { !$0.1 }.map(\.0), deadline: deadline)
        }
    }

    /// True when the object is ready, spilled or failed (a `wait` counts failures as finished).
    func isFinished(_ id: UInt64) -> Bool {
        state.withLock { state in
            switch state.objects[id]?.status {
            case .ready, .spilled, .failed, .remote, .none: true
            case .pending, .lost: false
            }
        }
    }
}
