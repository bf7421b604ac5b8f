import Synchronization
import SkeinCore

/// A kind of actor registered by name on every rank (SPMD), so that an instance can live on any
/// rank: its state is built there and its methods run there, in submission order.
public struct ActorClass<State: AnyObject>: Sendable {
    public let name: String
}

/// A method of an `ActorClass`, registered on every rank like a remote function.
public struct ActorMethod<State: AnyObject, each A: Sendable, R: Sendable>: Sendable {
    public let name: String
    let body: @Sendable (State, repeat each A) async throws -> R
}

/// The actor states this process holds, by actor id (rank 0's own, or a serving rank's).
final class ActorInstances: Sendable {
    private let states = Mutex<[UInt64: StateBox]>([:])

    final class StateBox: @unchecked Sendable {
        // @unchecked: an actor's calls run one after another (rank 0's actor queue here; a serving
        // rank's `ActorChains`), so its state is never touched by two threads at once.
        let value: AnyObject
        init(_ value: AnyObject) { self.value = value }
    }

    func add(_ id: UInt64, _ state: AnyObject) { states.withLock { $0[id] = StateBox(state) } }
    func remove(_ id: UInt64) { _ = states.withLock { $0.removeValue(forKey: id) } }
    var count: Int { states.withLock { $0.count } }

    func state<State: AnyObject>(_ id: UInt64, as _: State.Type, actor: String, rank: Int) throws(RuntimeError) -> State {
        guard let box = states.withLock({ $0[id] }) else {
            throw RuntimeError(.freedObject, task: actor, "rank \(rank) holds no actor #\(id) (it was dropped, or its rank restarted)")
        }
        guard let state = box.value as? State else {
            throw RuntimeError(.wrongArgumentType, task: actor, "actor #\(id) on rank \(rank) is a \(type(of: box.value)), not a \(State.self)")
        }
        return state
    }
}

/// An actor instance made from an `ActorClass`, living on one rank; calls go there in order.
public final class RemoteActorHandle<State: AnyObject>: Sendable {
    let runtime: Runtime
    let actor: ActorState
    public let actorClass: ActorClass<State>
    /// The rank holding the state.
    public let rank: Int

    init(runtime: Runtime, actor: ActorState, actorClass: ActorClass<State>, rank: Int) {
        self.runtime = runtime
        self.actor = actor
        self.actorClass = actorClass
        self.rank = rank
    }

    public var name: String { actor.name }

    /// Queues `method(args…)` behind this actor's earlier calls, to run on its rank; returns a ref at once.
    public func call<each A: Sendable, R: Sendable>(
        _ method: ActorMethod<State, repeat each A, R>, _ args: repeat Arg<each A>, options: TaskOptions = TaskOptions()
    ) throws(RuntimeError) -> ObjectRef<R> {
        let captured = (repeat each args)
        let (core, instances, full, rank) = (runtime.core, runtime.actorInstances, "\(actorClass.name).\(method.name)", self.rank)
        return try runtime.submitActorCall(actor, on: rank, full, args: repeat each args, options: options) { (id: UInt64) async throws -> R in
            let state = try instances.state(id, as: State.self, actor: full, rank: rank)
            return try await method.body(state, repeat try await core.argument(each captured))
        }
    }

    deinit {
        // Dropped after every call queued before it: the state goes when no handle can call it.
        let instances = runtime.actorInstances
        // Only the actor's queue and rank are captured: nothing may hold the handle past its deinit.
        _ = try? runtime.submitActorCall(actor, on: rank, "\(actorClass.name).__drop", args: Arg<Int>.value(0), options: TaskOptions()) { (id: UInt64) async throws -> Int in
            instances.remove(id)
            return 0
        }
    }
}

extension Runtime {
    /// Actor states (of registered classes) this process holds now; 0 once every handle is gone.
    public var actorStatesHeld: Int { actorInstances.count }

    /// Registers an actor class on this process (every rank registers the same, as with functions).
    @discardableResult
    public func registerActor<State: AnyObject>(_ name: String, _ make: @escaping @Sendable () -> State) -> ActorClass<State> {
        let instances = actorInstances
        register("\(name).__new") { (id: UInt64) -> Int in
            instances.add(id, make())
            return 0
        }
        register("\(name).__drop") { (id: UInt64, _: Int) -> Int in
            instances.remove(id)
            return 0
        }
        return ActorClass(name: name)
    }

    /// Registers `body` as method `name` of `actorClass` (on every rank).
    @discardableResult
    public func method<State: AnyObject, each A: Sendable, R: Sendable>(
        _ actorClass: ActorClass<State>, _ name: String, _ body: @escaping @Sendable (State, repeat each A) async throws -> R
    ) -> ActorMethod<State, repeat each A, R> {
        let instances = actorInstances
        let rank = cluster?.transport.rank ?? 0
        let full = "\(actorClass.name).\(name)"
        register(full) { (id: UInt64, values: repeat each A) async throws -> R in
            let state = try instances.state(id, as: State.self, actor: full, rank: rank)
            return try await body(state, repeat each values)
        }
        return ActorMethod(name: name, body: body)
    }

    /// A new instance of `actorClass` on `rank` (rank 0, the driver, by default; any rank of a
    /// cluster runtime). Its state is built there before its first call runs.
    public func makeActor<State: AnyObject>(_ actorClass: ActorClass<State>, on rank: Int = 0) throws(RuntimeError) -> RemoteActorHandle<State> {
        let ranks = cluster?.transport.size ?? 1
        guard (0..<ranks).contains(rank) else {
            throw RuntimeError(.workerLost, task: actorClass.name, "rank \(rank) is outside 0..<\(ranks): no such rank holds actors")
        }
        let actor = core.state.withLock { state -> ActorState in
            state.nextID += 1
            return ActorState(id: state.nextID, name: "\(actorClass.name)#\(state.nextID)")
        }
        let handle = RemoteActorHandle(runtime: self, actor: actor, actorClass: actorClass, rank: rank)
        _ = try submitActorCall(actor, on: rank, "\(actorClass.name).__new", options: TaskOptions()) { [self] (id: UInt64) async throws -> Int in
            guard let function = self.registry.withLock({ $0["\(actorClass.name).__new"] }) else {
                throw RuntimeError(.unregisteredFunction, task: actorClass.name, "actor class \(actorClass.name) is not registered here")
            }
            _ = try await function.call([id])
            return 0
        }
        return handle
    }

    /// Queues call `name` of `actor`, whose state lives on `target`: there through the cluster (the
    /// actor id first, then the arguments as a task's travel), or here through `local`.
    func submitActorCall<each A: Sendable, R: Sendable>(
        _ actor: ActorState, on target: Int, _ name: String, args: repeat Arg<each A>, options: TaskOptions,
        local: @escaping @Sendable (UInt64) async throws -> R
    ) throws(RuntimeError) -> ObjectRef<R> {
        let core = self.core
        let deps = try core.dependencies(repeat each args, of: "\(actor.name).\(name)")
        let captured = (repeat each args)
        let cluster = self.cluster
        let (id, actorName) = (actor.id, actor.name)
        let taskName = options.name ?? "\(actor.name).\(name.split(separator: ".").last ?? "")"
        let body: @Sendable () async throws -> any Sendable = {
            if let cluster, target != cluster.transport.rank, let context = ExecutionContext.current {
                var sources: [ArgumentSource] = [.inline(try Wire.encode(id))]
                for arg in repeat each captured { sources.append(try await core.source(of: arg, for: target)) }
                let lost: @Sendable (SkeinError) -> RuntimeError = { error in
                    RuntimeError(.workerLost, task: taskName, "rank \(target), holding actor \(actorName), was lost: \(error.message)")
                }
                // A call that may be retried waits for its reply, so that a retry cannot run behind a
                // later call; the others go out as fast as they are submitted.
                guard context.task.options.retries == 0 else {
                    return try await cluster.run(name, output: context.task.output, sources, on: target, actor: id, returning: R.self, lost: lost)
                }
                let (call, start) = (context.task, MonotonicClock.now())
                let listen = try cluster.start(name, output: call.output, sources, on: target, actor: id, returning: R.self, lost: lost) { result in
                    core.finish(call, with: result, start: start)
                }
                return InFlight(listen: listen)
            }
            return try await local(id)
        }
        let output = try core.submit(name: taskName, options: options, deps: deps, actor: actor, localOnly: true, body: body)
        return ObjectRef(id: output, core: core, retained: true)
    }
}
