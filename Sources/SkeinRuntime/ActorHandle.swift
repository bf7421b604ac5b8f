/// A stateful worker-side object: its method calls run one at a time, in the order they were
/// submitted, each returning a ref at once. The handle can be passed to tasks, which may call it too.
public final class ActorHandle<State: AnyObject>: Sendable {
    let runtime: Runtime
    let actor: ActorState
    let box: StateBox<State>

    /// Holds the actor's state; only the one call running at a time touches it.
    final class StateBox<Value: AnyObject>: @unchecked Sendable {
        // @unchecked: the actor's queue runs its calls strictly one after another, so the state is
        // never touched by two threads at once.
        let value: Value
        init(_ value: Value) { self.value = value }
    }

    init(runtime: Runtime, actor: ActorState, state: State) {
        self.runtime = runtime
        self.actor = actor
        box = StateBox(state)
    }

    public var name: String { actor.name }

    /// Queues `method(state, args…)` behind the actor's earlier calls; returns a ref to its result.
    public func call<each A: Sendable, R: Sendable>(
        _ name: String = "call", _ method: @escaping @Sendable (State, repeat each A) async throws -> R, _ args: repeat Arg<each A>,
        options: TaskOptions = TaskOptions()
    ) throws(RuntimeError) -> ObjectRef<R> {
        let core = runtime.core
        let deps = try core.dependencies(repeat each args, of: "\(actor.name).\(name)")
        let captured = (repeat each args)
        let box = self.box
        let body: @Sendable () async throws -> any Sendable = {
            try await method(box.value, repeat try await core.argument(each captured))
        }
        let id = try core.submit(name: options.name ?? "\(actor.name).\(name)", options: options, deps: deps, actor: actor, localOnly: true, body: body)
        return ObjectRef(id: id, core: core, retained: true)
    }
}

extension Runtime {
    /// Creates an actor whose state `make` builds; its calls run one at a time in submission order.
    public func makeActor<State: AnyObject>(_ name: String, _ make: () -> State) -> ActorHandle<State> {
        let actor = core.state.withLock { state -> ActorState in
            state.nextID += 1
            return ActorState(id: state.nextID, name: name)
        }
        return ActorHandle(runtime: self, actor: actor, state: make())
    }
}
