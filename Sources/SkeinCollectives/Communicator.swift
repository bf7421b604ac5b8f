import SkeinCore
import Synchronization
import Foundation

/// A group of ranks over a transport, offering the collective operations. Each rank holds its own
/// `Communicator`; all ranks must call the same collectives in the same order with matching
/// arguments (a disagreement is reported as an error on every rank, not a hang), and a rank makes
/// its calls one at a time, as in MPI (a call made while another of the rank's still runs is an error).
///
/// Each call picks the algorithm with the lowest predicted time under the calibrated α-β-γ model,
/// unless one is pinned. Every call has a deadline (`timeout`); when a peer stops answering, the
/// call throws an error naming it, tells the other ranks to stop, and the communicator stays
/// broken: build a smaller one with `shrink(excluding:)` and go on.
public final class Communicator: Sendable {
    public let transport: any Transport
    /// The transport's own collectives, when it has them (MPI).
    let native: (any NativeCollectives)?
    /// This communicator's shared-memory board, or a stand-in that refuses every call where its ranks
    /// share no memory (`hasSharedMemory`). Not optional: a call through an optional (or an unowned)
    /// reference retained and released it, a locked instruction that waited for the slot's stores
    /// to reach the peer's core.
    let board: any SharedMemoryBoard
    public let context: UInt32
    /// Default time a call may take before it fails with `.timeout`.
    public let timeout: Duration
    let timeoutNanos: UInt64
    let state: Mutex<State>
    /// Calls counted. Like everything a call writes without `state`'s lock (`lastChoice`, the
    /// recorder), written by this rank's calls alone, one at a time, as MPI requires of a communicator.
    let sequence = Atomic<UInt64>(0)
    /// The call of this rank's that runs now (its sequence number; 0: none).
    let running = Atomic<UInt64>(0)
    /// The last call's choice, which a call that repeats it reads without taking `state`'s lock.
    let lastChoice = LastChoice()
    /// The last calls' records, written without taking `state`'s lock.
    let recorder = FlightRecorder(capacity: 256)

    struct State {
        /// The error that broke the communicator, and the number of the call that failed with it
        /// (the only call the flight recorder shows failed: once broken, no call is counted).
        var broken: SkeinError?
        var brokenCall: UInt64 = 0
        var cost: CostParameters
        /// The flight recorder's algorithm names.
        var names = CallNames()
        /// By operation (raw value): an array, since a dictionary hashed the operation on every call;
        /// of references, since testing an optional existential copied it through its value witnesses.
        var pins = [Pin?](repeating: nil, count: CollectiveOperation.allCases.count)
        var derived: UInt32 = 0
        /// Automatic choices: (operation, bytes, root) → algorithm, prediction and this rank's schedule.
        var selections: [Choice: Plan] = [:]
        /// The plan of `lastChoice` where its algorithm needs more than its code (not the board's:
        /// a loop of small calls then touches no reference count; taking a plan out of the state
        /// was a retain and two releases per call).
        var lastPlan: Plan?
        /// Schedules of pinned algorithms, by (code, variant, root): they depend on nothing else.
        var schedules: [ScheduleKey: Schedule] = [:]

        /// The plan of a pinned or passed `algorithm` (its schedule made once per root).
        mutating func plan(running algorithm: any CollectiveAlgorithm, rank: Int, size: Int, root: Int, bytes: Int) -> Plan {
            let key = ScheduleKey(code: algorithm.code, variant: algorithm.variant, root: root)
            let schedule: Schedule
            if let known = schedules[key] {
                schedule = known
            } else {
                schedule = algorithm.schedule(rank: rank, size: size, root: root)
                schedules[key] = schedule
            }
            return Plan(algorithm: algorithm, predicted: algorithm.modelSeconds(ranks: size, bytes: bytes, cost: cost), schedule: schedule)
        }

        /// Drops every cached choice (the costs changed); `last`: the communicator's `lastChoice`.
        mutating func forgetSelections(_ last: borrowing LastChoice) {
            selections.removeAll()
            forgetLast(last)
        }

        /// Drops the last call's choice (a pin, new costs, or a failure changed what comes next).
        mutating func forgetLast(_ last: borrowing LastChoice) {
            last.clear()
            lastPlan = nil
        }
    }

    struct Choice: Hashable {
        var operation: CollectiveOperation
        var bytes: Int
        var root: Int
        /// Whether the transport's own implementation could run this call (it may lack an element type).
        var native: Bool
        /// Whether the call's form writes its result into the caller's array (`Call.intoCaller`).
        var direct: Bool

        /// Everything but the bytes in one word, never 0.
        var key: UInt64 {
            UInt64(operation.rawValue) | (native ? 1 << 8 : 0) | (direct ? 1 << 9 : 0) | 1 << 10 | UInt64(truncatingIfNeeded: root) << 16
        }
    }

    /// The last call's choice (pinned or selected, not passed with the call), looked at first since
    /// loops repeat one call: its algorithm's code, name number and prediction, as words that this
    /// rank's calls write (under `state`'s lock) and read without it, so that a call the board's
    /// algorithm runs takes no lock at all (a lock was two locked instructions, and each waited for
    /// the slot lines the last call wrote to reach the peer's core). The plan of an algorithm that
    /// needs more than its code is `State.lastPlan`. A key of 0: none (`pin`, new costs and a
    /// failure clear it under the lock).
    struct LastChoice: ~Copyable, Sendable {
        private let key = Atomic<UInt64>(0)
        private let bytes = Atomic<Int>(0)
        private let code = Atomic<UInt8>(0)
        private let name = Atomic<Int>(0)
        private let predicted = Atomic<UInt64>(0)

        /// The algorithm's code, name number and prediction, if the last call's choice was `choice`.
        @inline(__always)
        func lookup(_ choice: Choice) -> (code: UInt8, name: Int, predicted: Double)? {
            guard key.load(ordering: .acquiring) == choice.key, bytes.load(ordering: .relaxed) == choice.bytes else { return nil }
            return (code.load(ordering: .relaxed), name.load(ordering: .relaxed), Double(bitPattern: predicted.load(ordering: .relaxed)))
        }

        /// Makes `choice` the last call's (under `state`'s lock).
        func store(_ choice: Choice, code: UInt8, name: Int, predicted: Double) {
            key.store(0, ordering: .relaxed)
            atomicMemoryFence(ordering: .releasing)
            bytes.store(choice.bytes, ordering: .relaxed)
            self.code.store(code, ordering: .relaxed)
            self.name.store(name, ordering: .relaxed)
            self.predicted.store(predicted.bitPattern, ordering: .relaxed)
            key.store(choice.key, ordering: .releasing)
        }

        func clear() { key.store(0, ordering: .relaxed) }
    }

    /// How to run a call: made once per choice and shared by reference, since copying the
    /// algorithm's existential and the schedule's arrays on every call cost more than the call.
    @usableFromInline
    final class Plan: Sendable {
        let algorithm: any CollectiveAlgorithm
        let operation: CollectiveOperation
        let code: UInt8
        let name: String
        let predicted: Double
        let schedule: Schedule
        /// The blocks the caller's input splits into (`schedule.inputSlots.count`), read without
        /// copying the schedule.
        let inputBlocks: Int

        init(algorithm: any CollectiveAlgorithm, predicted: Double, schedule: Schedule) {
            self.algorithm = algorithm
            operation = algorithm.operation
            code = algorithm.code
            name = algorithm.name
            self.predicted = predicted
            self.schedule = schedule
            inputBlocks = schedule.inputSlots.count
        }
    }

    /// An algorithm pinned for one operation on the communicator (its plan is `State.lastPlan` while
    /// calls repeat, where it needs more than its code). An algorithm passed with a call gets a plan of its own each time.
    final class Pin: Sendable {
        let algorithm: any CollectiveAlgorithm

        init(_ algorithm: any CollectiveAlgorithm) { self.algorithm = algorithm }
    }

    struct ScheduleKey: Hashable {
        var code: UInt8
        var variant: Int
        var root: Int
    }

    /// True when the transport has collectives of its own (MPI), which `NativeAlgorithm` runs.
    /// (Stored: comparing the optional existential with nil copied it, on every call.)
    public let hasNativeCollectives: Bool

    /// True when the ranks share memory (in-process ranks), so `SharedMemoryAlgorithm` can run.
    public let hasSharedMemory: Bool

    /// True when the ranks share one address space (in-process ranks), so `SharedAddressAlgorithm` can run.
    public var sharesAddressSpace: Bool { board.sharesAddressSpace }

    /// Every algorithm the selector weighs for `operation` on this communicator's transport.
    public func candidates(for operation: CollectiveOperation) -> [any CollectiveAlgorithm] {
        CostModel.candidates(operation, native: hasNativeCollectives, sharedMemory: hasSharedMemory, sharedAddressSpace: sharesAddressSpace)
    }

    /// The algorithm the selector picks for `bytes` of `operation` (as `CollectiveAlgorithm` counts
    /// bytes) under the current costs (or `cost`), with the seconds it expects; for a call whose
    /// result goes straight into the caller's array (the `into:` and in-place forms).
    public func selection(
        for operation: CollectiveOperation, bytes: Int, cost: CostParameters? = nil
    ) -> (algorithm: any CollectiveAlgorithm, seconds: Double) {
        select(operation, bytes: bytes, cost: cost ?? self.cost, native: hasNativeCollectives)
    }

    /// The selector's pick among this communicator's candidates under `cost`. A call whose result
    /// has no caller's array to go to (`direct` false: the forms that return a new array) leaves the
    /// shared-address algorithm out of `SharedAddressAlgorithm.needsDestination`'s operations.
    func select(
        _ operation: CollectiveOperation, bytes: Int, cost: CostParameters, native: Bool, direct: Bool = true
    ) -> (algorithm: any CollectiveAlgorithm, seconds: Double) {
        CostModel.select(
            operation, ranks: size, bytes: bytes, cost: cost, native: native, sharedMemory: hasSharedMemory,
            sharedAddressSpace: sharesAddressSpace && (direct || !SharedAddressAlgorithm.needsDestination.contains(operation)))
    }

    public let rank: Int
    public let size: Int

    public init(transport: any Transport, context: UInt32 = 0, cost: CostParameters = .inProcessDefault, timeout: Duration = .seconds(60)) {
        self.transport = transport
        self.native = transport as? any NativeCollectives
        hasNativeCollectives = native != nil
        rank = transport.rank
        size = transport.size
        let board = (transport as? any SharedMemoryTransport)?.sharedBoard(context: context) ?? nil
        self.board = board ?? AbsentBoard()
        hasSharedMemory = board != nil
        self.context = context
        self.timeout = timeout
        self.timeoutNanos = MonotonicClock.nanoseconds(timeout)
        state = Mutex(State(cost: cost))
    }

    /// The α-β-γ parameters the selector uses now.
    public var cost: CostParameters {
        get { state.withLock { $0.cost } }
        set {
            state.withLock { state in
                state.cost = newValue
                state.forgetSelections(lastChoice)
            }
        }
    }

    /// Always use `algorithm` for its operation (nil to go back to automatic choice). Every rank must pin alike.
    public func pin(_ algorithm: (any CollectiveAlgorithm)?, for operation: CollectiveOperation) {
        state.withLock { state in
            state.pins[Int(operation.rawValue)] = algorithm.map(Pin.init)
            state.forgetLast(lastChoice)
        }
    }

    /// The last `count` calls' records, oldest first: operation, algorithm, time, who arrived last.
    public func flightRecord(last count: Int = 32) -> [CollectiveRecord] {
        let (names, broken, brokenCall) = state.withLock { ($0.names, $0.broken, $0.brokenCall) }
        return recorder.last(count, name: names.name, error: { $0 == brokenCall ? broken : nil })
    }

    /// A communicator of the ranks not in `excluded`, renumbered in order. Every survivor must pass
    /// the same set (typically the ranks named by the errors of a failed call).
    public func shrink(excluding excluded: Set<Int>) throws(SkeinError) -> Communicator {
        let members = (0..<size).filter { !excluded.contains($0) }
        let subgroup = try SubgroupTransport(base: transport, members: members)
        let (generation, cost) = state.withLock { state -> (UInt32, CostParameters) in
            state.derived += 1
            return (state.derived, state.cost)
        }
        var hash: UInt32 = 2_166_136_261
        for value in [Int(context), Int(generation)] + members {
            hash = (hash ^ UInt32(truncatingIfNeeded: value)) &* 16_777_619
        }
        return Communicator(transport: subgroup, context: hash | 1, cost: cost, timeout: timeout)
    }

    // MARK: the engine every operation goes through

    @usableFromInline
    struct Call {
        // Plain values only, so that copying a call is a copy of bytes: the algorithm passed with a
        // call travels beside it (an existential or a reference in here made every copy go
        // through value witnesses, several percent of an 8 B call's time).
        @usableFromInline var operation: CollectiveOperation
        @usableFromInline var dataType: DataType
        @usableFromInline var reduceOp: ReduceOp
        @usableFromInline var reducer: Reducer?
        @usableFromInline var root: Int
        @usableFromInline var count: Int
        @usableFromInline var modelBytes: Int
        @usableFromInline var timeout: Duration?
        /// Where this rank's result goes (the caller's output array, sized and unique, untouched by
        /// anyone until the call returns), for an algorithm that can write it there directly.
        @usableFromInline var destination: UnsafeMutableRawBufferPointer?
        /// True for the forms that write into the caller's array (`into:`, in place), on every rank
        /// alike, also where this rank has no result (a reduce's or gather's other ranks): every
        /// rank must select alike.
        @usableFromInline var intoCaller = false
        /// True where the caller's input array is also where the result goes (in-place allreduce).
        @usableFromInline var inPlace = false
        /// What is wrong with the arguments, found before the call (reported once it is counted).
        @usableFromInline var problem: CallProblem?

        /// Marks the call as one of the forms that write into the caller's array; `destination`:
        /// where this rank's result goes, nil where it has none.
        @usableFromInline
        mutating func writes(into destination: UnsafeMutableRawBufferPointer?) {
            intoCaller = true
            self.destination = destination
        }

        /// Inlinable: called out of line, its dozen arguments went through the stack, and the
        /// loads of the 16-byte ones stalled on the 8-byte stores just made (4% of an 8 B call).
        @inlinable
        init(
            operation: CollectiveOperation, dataType: DataType, reduceOp: ReduceOp = .sum,
            reducer: Reducer? = nil, root: Int = 0, count: Int, modelBytes: Int, timeout: Duration?
        ) {
            self.operation = operation
            self.dataType = dataType
            self.reduceOp = reduceOp
            self.reducer = reducer
            self.root = root
            self.count = count
            self.modelBytes = modelBytes
            self.timeout = timeout
        }
    }

    /// What is wrong with a call's arguments: plain values, so that a call stays plain bytes; the
    /// error is made only when there is one.
    @usableFromInline
    enum CallProblem: Sendable {
        case rootOutOfRange
        case sizeDoesNotFit(factor: Int, width: Int)
        case scatterCount(passed: Int)
    }

    /// The error for `call`'s problem.
    func error(_ problem: CallProblem, in call: Call) -> SkeinError {
        let message =
            switch problem {
            case .rootOutOfRange: "root \(call.root) is outside 0..<\(size)"
            case .sizeDoesNotFit(let factor, let width): "\(call.count) elements × \(factor) ranks × \(width) bytes does not fit in a buffer"
            case .scatterCount(let passed): "scatter root passed \(passed) elements but totalCount \(call.count)"
            }
        return SkeinError(.invalidArgument, rank: rank, message)
    }

    /// Runs one collective; returns this rank's output blocks, or nil where the algorithm wrote the
    /// result into `call.destination` itself. `input` splits the caller's values into the given
    /// number of blocks (the schedule's input slots); `copyInput` copies them whole (into a
    /// shared-memory slot). `explicit`: the plan of an algorithm passed with the call
    /// (`plan(running:for:)`), made by the inlined entry point only where one was passed: an
    /// optional existential handed on to here cost value-witness calls to copy, test and destroy on
    /// every call, nil or not (8% of an 8 B call).
    ///
    /// Inlined into the entry points: `start` is synchronous and finishes a board call that finds
    /// every part it needs already there, so such a call makes no async frame at all; only a call
    /// that must wait, or runs by messages, goes on in `complete`.
    @inlinable
    func perform(
        _ call: Call, explicit: Plan?, input: (_ blocks: Int) -> [Chunk],
        copyInput: (UnsafeMutableRawBufferPointer) -> Void
    ) async throws(SkeinError) -> [Chunk]? {
        switch try start(call, explicit: explicit, input: input, copyInput: copyInput) {
        case .finished(let output): return output
        case .begun(let started): return try await complete(call, started, input: input, copyInput: copyInput)
        }
    }

    /// How far `start` took a call.
    @usableFromInline
    enum Progress {
        case finished([Chunk]?)
        case begun(Started)
    }

    /// A call as `begin` counted it: its number, its flight-recorder entry, and its plan, except
    /// for the board's algorithm, which needs only its code (a plan taken out of the lock was a
    /// retain and a release on every call).
    @usableFromInline
    struct Begun {
        let sequence: UInt64
        let entry: Int
        let operation: CollectiveOperation
        let code: UInt8
        let plan: Plan?

        var name: String { plan?.name ?? SharedMemoryAlgorithm(operation).name }
        /// The blocks the caller's input splits into (one for the board's algorithm).
        var inputBlocks: Int { plan?.inputBlocks ?? 1 }
    }

    /// A call `start` began but could not finish without waiting: what `complete` needs to go on.
    @usableFromInline
    struct Started {
        let begun: Begun
        let start: UInt64
        let signature: CallSignature
        let deadline: UInt64
        /// What the board said to this rank's publish (board calls only).
        let published: BoardPublish?
    }

    /// Counts the call and, for a board call, publishes this rank's part and finishes the call if
    /// every part it needs is there; otherwise leaves the rest to `complete`.
    @usableFromInline
    func start(
        _ call: Call, explicit: Plan?, input: (_ blocks: Int) -> [Chunk], copyInput: (UnsafeMutableRawBufferPointer) -> Void
    ) throws(SkeinError) -> Progress {
        let start = transport.now()
        let begun = try begin(call, explicit: explicit, start: start)
        do throws(SkeinError) {
            if let problem = call.problem { throw error(problem, in: call) }
            guard begun.operation == call.operation else {
                throw SkeinError(.invalidArgument, rank: rank, "algorithm \(begun.name) cannot run \(call.operation)")
            }
            let signature = CallSignature(
                operation: call.operation, algorithm: begun.code, dataType: call.dataType, reduceOp: call.reduceOp,
                root: Int32(call.root), count: Int64(call.count), sequence: begun.sequence)
            let nanos = call.timeout.map(MonotonicClock.nanoseconds) ?? timeoutNanos
            let (sum, overflow) = start.addingReportingOverflow(nanos)
            let deadline = overflow ? .max : sum
            guard begun.code == SharedMemoryAlgorithm.code else {
                // A schedule on one rank sends nothing. (Not MPI's own call, or the shared-address
                // algorithm: on one rank they fail where they would fail on more, for a type MPI lacks
                // or ranks in separate address spaces.)
                if size == 1 && begun.code != NativeAlgorithm.code && begun.code != SharedAddressAlgorithm.code {
                    let output = alone(call, input: input, copyInput: copyInput)
                    ended(begun, skew: ArrivalSkew(rank: rank, entry: start))
                    return .finished(output)
                }
                return .begun(Started(begun: begun, start: start, signature: signature, deadline: deadline, published: nil))
            }
            let (algorithm, shared) = try sharedCall(call, signature: signature)
            let published = try board.publish(
                rank: rank, signature: signature, entry: start, byteCount: algorithm.publishedBytes(shared),
                awaiting: algorithm.awaited(shared) ?? 0..<Int.max, readAhead: algorithm.isRooted, fill: copyInput)
            guard case .ready(let slots) = published else {
                return .begun(Started(begun: begun, start: start, signature: signature, deadline: deadline, published: published))
            }
            let (output, skew) = try algorithm.finish(shared, slots: slots, destination: call.destination)
            ended(begun, skew: skew)
            return .finished(output)
        } catch {
            throw failed(error, begun, skew: ArrivalSkew(rank: rank, entry: start))
        }
    }

    /// The result of a call on a communicator of one rank by one of Skein's schedules: its input (no
    /// bytes for a barrier), copied into the caller's array where it gave one, else handed back as
    /// it is. (Run through the schedule, such a call took 2–3× longer than on two ranks: 0.34 µs
    /// for an 8 B broadcast.)
    @inline(__always)
    func alone(_ call: Call, input: (_ blocks: Int) -> [Chunk], copyInput: (UnsafeMutableRawBufferPointer) -> Void) -> [Chunk]? {
        if call.operation == .barrier { return [] }
        if let destination = call.destination, destination.count == call.count &* call.dataType.byteWidth {
            if destination.count > 0 { copyInput(destination) }
            return nil
        }
        return input(1)
    }

    /// The rest of a call `start` began: waits on the board, or runs the algorithm's messages.
    @usableFromInline
    func complete(
        _ call: Call, _ started: Started, input: (_ blocks: Int) -> [Chunk], copyInput: (UnsafeMutableRawBufferPointer) -> Void
    ) async throws(SkeinError) -> [Chunk]? {
        let (begun, start, signature, deadline) = (started.begun, started.start, started.signature, started.deadline)
        var skew = ArrivalSkew(rank: rank, entry: start)
        do throws(SkeinError) {
            let output: [Chunk]?
            switch begun.code {
            case SharedMemoryAlgorithm.code:
                let (algorithm, shared) = try sharedCall(call, signature: signature)
                let slots = try await board.complete(
                    after: started.published ?? .full, rank: rank, signature: signature, entry: start,
                    byteCount: algorithm.publishedBytes(shared), awaiting: algorithm.awaited(shared) ?? 0..<Int.max, deadline: deadline,
                    fill: copyInput)
                (output, skew) = try algorithm.finish(shared, slots: slots, destination: call.destination)
            case SharedAddressAlgorithm.code:
                (output, skew) = try await runSharedAddress(
                    call, input: input(begun.inputBlocks).first, signature: signature, entry: start, deadline: deadline)
            case NativeAlgorithm.code:
                let blocking = (begun.plan?.algorithm as? NativeAlgorithm)?.blocking ?? false
                output = try await runNative(call, input: input(begun.inputBlocks), deadline: deadline, blocking: blocking)
            default:
                guard let schedule = begun.plan?.schedule else { throw SkeinError(.internalError, rank: rank, "call #\(begun.sequence) has no schedule") }
                var run = ScheduleRun(
                    schedule: schedule, input: input(begun.inputBlocks), signature: signature, reducer: call.reducer, rank: rank, entry: start)
                if !transport.deliversByReference {
                    run.placement = OutputPlacement(destination: call.destination, width: call.dataType.byteWidth, schedule: schedule)
                }
                try await run.execute(schedule, on: transport, tag: Tag(context: context, sequence: begun.sequence), deadline: deadline)
                output = try run.output(schedule)
                skew = run.skew
            }
            ended(begun, skew: skew)
            return output
        } catch {
            throw failed(error, begun, skew: skew)
        }
    }

    /// Notes the end of call `begun` in the flight recorder; the rank may make its next call.
    @inline(__always)
    func ended(_ begun: Begun, skew: ArrivalSkew) {
        recorder.finish(begun.entry, sequence: begun.sequence, end: transport.now(), skew: skew)
        running.store(0, ordering: .relaxed)
    }

    /// Marks the communicator broken by `error` in call `begun`, records it, and tells the other
    /// ranks to stop (unless they told this one); returns the error to throw.
    func failed(_ error: SkeinError, _ begun: Begun, skew: ArrivalSkew) -> SkeinError {
        state.withLock { state in
            if state.broken == nil { (state.broken, state.brokenCall) = (error, begun.sequence) }
            state.forgetLast(lastChoice)
        }
        ended(begun, skew: skew)
        if error.code != .aborted { transport.abort(context: context, because: error) }
        return error
    }

    /// The board algorithm's view of `call`, once there is a board to run it on.
    @inline(__always)
    func sharedCall(
        _ call: Call, signature: CallSignature
    ) throws(SkeinError) -> (algorithm: SharedMemoryAlgorithm, call: SharedMemoryAlgorithm.Call) {
        guard hasSharedMemory else {
            throw SkeinError(
                .unavailable, rank: rank,
                "the shared-memory algorithm needs ranks that share memory (in-process ranks, or MPI processes all on one host); these ranks share none")
        }
        let shared = SharedMemoryAlgorithm.Call(
            signature: signature, rank: rank, size: size, reducer: call.reducer, width: call.dataType.byteWidth)
        return (SharedMemoryAlgorithm(call.operation), shared)
    }

    /// The plan for running `call` with `algorithm`, passed with it.
    @usableFromInline
    func plan(running algorithm: any CollectiveAlgorithm, for call: Call) -> Plan {
        let root = planningRoot(call)
        return state.withLock { $0.plan(running: algorithm, rank: rank, size: size, root: root, bytes: call.modelBytes) }
    }

    /// The root a call's plan is made for: its own, or 0 for a root out of range, which `perform`
    /// reports once the call is counted (so every rank's count stays alike).
    func planningRoot(_ call: Call) -> Int {
        (0..<size).contains(call.root) ? call.root : 0
    }

    /// Counts a call and finds its plan (the algorithm passed with it, the one pinned for its
    /// operation, or the selector's), and notes it in the flight recorder. A call that repeats the
    /// last call's choice of the board's algorithm takes no lock; any other takes `state`'s lock
    /// once, also to check that the communicator is not broken (a failure clears `lastChoice`).
    private func begin(_ call: Call, explicit: Plan?, start: UInt64) throws(SkeinError) -> Begun {
        let root = planningRoot(call)
        let choice = Choice(
            operation: call.operation, bytes: call.modelBytes, root: root,
            native: hasNativeCollectives && native.unsafelyUnwrapped.supportsNative(call.operation, dataType: call.dataType),
            direct: call.intoCaller)
        let last = explicit == nil ? lastChoice.lookup(choice) : nil
        if let last, last.code == SharedMemoryAlgorithm.code {
            return try counted(call, operation: call.operation, code: last.code, plan: nil, name: last.name, predicted: last.predicted, start: start)
        }
        let (rank, size) = (self.rank, self.size)
        // A plain struct, not a Result of a tuple: that generic type's metadata was looked up on every call.
        var failure: SkeinError?
        let found = state.withLock { state -> (plan: Plan?, operation: CollectiveOperation, name: Int, predicted: Double)? in
            if let broken = state.broken {
                failure = SkeinError(
                    .aborted, rank: rank,
                    "this communicator failed earlier (\(broken.message)); build a new one with shrink(excluding:)")
                return nil
            }
            // The last call's plan, which only a pin, new costs or a failure drop (all under this lock).
            if let last, let plan = state.lastPlan { return (plan, call.operation, last.name, last.predicted) }
            // An algorithm passed with the call comes first, then one pinned on the communicator.
            let made: Plan
            if let explicit {
                made = explicit
            } else if let pin = state.pins[Int(call.operation.rawValue)] {
                made = state.plan(running: pin.algorithm, rank: rank, size: size, root: root, bytes: call.modelBytes)
            } else if let known = state.selections[choice] {
                made = known
            } else {
                let (algorithm, predicted) = select(call.operation, bytes: call.modelBytes, cost: state.cost, native: choice.native, direct: choice.direct)
                made = Plan(algorithm: algorithm, predicted: predicted, schedule: algorithm.schedule(rank: rank, size: size, root: root))
                if state.selections.count > 4096 { state.selections.removeAll() }
                state.selections[choice] = made
            }
            // Where the board's algorithm runs, only its code is needed: the plan is nil then.
            let plan = made.code == SharedMemoryAlgorithm.code ? nil : made
            let name = state.names.number(made.name)
            if explicit == nil && made.operation == call.operation {
                lastChoice.store(choice, code: made.code, name: name, predicted: made.predicted)
                state.lastPlan = plan
            }
            return (plan, made.operation, name, made.predicted)
        }
        guard let found else { throw failure ?? SkeinError(.internalError, rank: rank, "call did not begin") }
        return try counted(
            call, operation: found.operation, code: found.plan?.code ?? SharedMemoryAlgorithm.code, plan: found.plan, name: found.name,
            predicted: found.predicted, start: start)
    }

    /// Gives a call whose plan `begin` found its sequence number, and notes it in the flight
    /// recorder. Throws, counting nothing, while another call of this rank runs: calls from two
    /// tasks at once would take numbers in an order the other ranks do not share. (A look, not a
    /// lock: it catches a second call made while the first waits, not two begun in the same instant.)
    @inline(__always)
    private func counted(
        _ call: Call, operation: CollectiveOperation, code: UInt8, plan: Plan?, name: Int, predicted: Double, start: UInt64
    ) throws(SkeinError) -> Begun {
        let running = self.running.load(ordering: .relaxed)
        if running != 0 {
            throw SkeinError(
                .invalidArgument, rank: rank,
                "\(call.operation) called while call #\(running) still runs on rank \(rank): a rank makes its collective calls on a communicator one at a time (await each before the next), in the same order as the other ranks")
        }
        let number = sequence.load(ordering: .relaxed) &+ 1
        self.running.store(number, ordering: .relaxed)
        // Its second board call takes a number of its own: a peer still in the first must not
        // pass for one that runs the call by messages (see `InProcessBoard.check`).
        sequence.store(code == SharedAddressAlgorithm.code ? number &+ 1 : number, ordering: .relaxed)
        let entry = recorder.begin(sequence: number, operation: call.operation, bytes: call.modelBytes, start: start, name: name, predicted: predicted)
        return Begun(sequence: number, entry: entry, operation: operation, code: code, plan: plan)
    }

    /// Runs the call by `SharedAddressAlgorithm`: publish where this rank's input and output lie,
    /// fold this rank's block into the outputs, then wait until every rank has done the same.
    func runSharedAddress(
        _ call: Call, input: Chunk?, signature: CallSignature, entry: UInt64, deadline: UInt64
    ) async throws(SkeinError) -> (output: [Chunk], skew: ArrivalSkew) {
        guard board.sharesAddressSpace else {
            throw SkeinError(
                .unavailable, rank: rank,
                "the shared-address algorithm needs ranks in one address space (in-process ranks); these ranks are separate processes or share no memory")
        }
        let algorithm = SharedAddressAlgorithm(call.operation)
        guard SharedAddressAlgorithm.operations.contains(call.operation) else {
            throw SkeinError(
                .invalidArgument, rank: rank,
                "the shared-address algorithm runs \(SharedAddressAlgorithm.operations.map { "\($0)" }.joined(separator: ", ")), not \(call.operation)")
        }
        let width = call.dataType.byteWidth
        let outputBytes = algorithm.outputBytes(count: call.count, width: width, rank: rank, size: size, root: Int(signature.root))
        // The result goes straight into the caller's array where it has given one (then writing it
        // there afterwards finds it in place), else into memory of the call's own.
        let direct = call.destination.flatMap { $0.count == outputBytes && outputBytes > 0 ? $0 : nil }
        let output: ByteStorage? =
            if let direct { BorrowedStorage(UnsafeRawBufferPointer(direct), owner: nil) }
            else { outputBytes > 0 ? AllocatedStorage(uninitializedByteCount: outputBytes) : nil }
        let outputAddress = output.map { storage in storage.withUnsafeBytes { UInt(bitPattern: $0.baseAddress) } } ?? 0
        // Both addresses stay valid until the second board call: the input chunk and the output are
        // held here, and every ByteStorage keeps its bytes at one address.
        let inputAddress = input.map { chunk in chunk.withUnsafeBytes { UInt(bitPattern: $0.baseAddress) } } ?? 0
        let addresses = SharedAddressAlgorithm.Addresses(input: inputAddress, output: outputAddress)
        let slots = try await board.exchange(
            rank: rank, signature: signature, entry: entry, byteCount: MemoryLayout<SharedAddressAlgorithm.Addresses>.size, deadline: deadline
        ) { $0.storeBytes(of: addresses, as: SharedAddressAlgorithm.Addresses.self) }
        let skew = try SharedMemoryAlgorithm.skew(slots, signature: signature, rank: rank)
        algorithm.work(slots, rank: rank, root: Int(signature.root), count: call.count, width: width, reducer: call.reducer)
        var done = signature
        done.sequence += 1
        _ = try await board.exchange(rank: rank, signature: done, entry: entry, byteCount: 0, deadline: deadline) { _ in }
        return withExtendedLifetime(input) {
            (output.map { [Chunk(storage: $0, offset: 0, byteCount: outputBytes, isWritable: direct == nil)] } ?? [], skew)
        }
    }

    /// Hands the call to the transport's own implementation.
    func runNative(_ call: Call, input: [Chunk], deadline: UInt64, blocking: Bool) async throws(SkeinError) -> [Chunk] {
        guard let native, native.supportsNative(call.operation, dataType: call.dataType) else {
            throw SkeinError(
                .unavailable, rank: rank,
                native == nil
                    ? "the native algorithm needs a transport with collectives of its own (MPI); this one has none"
                    : "the transport has no native \(call.operation) for \(call.dataType); use one of Skein's algorithms")
        }
        let request = NativeCall(
            operation: call.operation, dataType: call.dataType, reduceOp: call.reduceOp, root: call.root, count: call.count, blocking: blocking)
        let empty = Chunk(storage: nil, offset: 0, byteCount: 0, isWritable: false)
        return [try await native.runNative(request, input: input.first ?? empty, deadline: deadline)]
    }
}

extension Communicator {
    /// Whether a call's copies should stream past the cache (`MemoryCopy`): every rank's input and
    /// output of `inputBytes` and `outputBytes` together outgrow it.
    @inlinable
    func streams(inputBytes: Int, outputBytes: Int) -> Bool {
        MemoryCopy.streams(workingSet: (inputBytes &+ outputBytes) &* size)
    }

    /// Joins output blocks into one array; hands back the caller's own array when it is a single
    /// whole block. `inputCount`: the elements this rank passed in, for the choice of copy. (Never
    /// nil here: a call whose form returns a new array gives no destination to write into.)
    @inlinable
    func assemble<T: SkeinElement>(_ output: [Chunk]?, as _: T.Type, inputCount: Int) -> [T] {
        let chunks = output ?? []
        if chunks.count == 1, let storage = chunks[0].storage, ObjectIdentifier(type(of: storage)) == ObjectIdentifier(ArrayStorage<T>.self),
            chunks[0].offset == 0, chunks[0].byteCount == storage.byteCount
        {
            return unsafeDowncast(storage, to: ArrayStorage<T>.self).array
        }
        var result: [T] = []
        write(chunks, into: &result, inputCount: inputCount)
        return result
    }

    /// Copies output blocks into `values`, resized to fit if its length differs, skipping blocks that
    /// already are its memory; nothing where the algorithm wrote there itself (nil). `inputCount`:
    /// the elements this rank passed in (nil: as many as `values` holds, for the in-place forms),
    /// for the choice of copy.
    @inlinable
    func write<T: SkeinElement>(_ output: [Chunk]?, into values: inout [T], inputCount: Int? = nil) {
        guard let chunks = output else { return }
        let stride = MemoryLayout<T>.stride
        let total = chunks.reduce(0) { $0 + $1.byteCount } / stride
        let target = destination(&values, count: total)
        let streaming = streams(inputBytes: (inputCount ?? total) &* stride, outputBytes: total &* stride)
        var offset = 0
        for chunk in chunks {
            chunk.withUnsafeBytes { bytes in
                if bytes.count > 0, let from = bytes.baseAddress, let to = target.baseAddress?.advanced(by: offset), from != UnsafeRawPointer(to) {
                    MemoryCopy.copy(to: to, from: from, byteCount: bytes.count, streaming: streaming)
                }
            }
            offset += chunk.byteCount
        }
    }
}

/// The board of a communicator whose ranks share no memory: never called, since `sharedCall`
/// refuses the board's algorithm first; it throws if it is.
private final class AbsentBoard: SharedMemoryBoard {
    var sharesAddressSpace: Bool { false }

    private var absent: SkeinError { SkeinError(.unavailable, rank: -1, "this communicator's ranks share no memory board") }

    func publish(
        rank: Int, signature: CallSignature, entry: UInt64, byteCount: Int, awaiting: Range<Int>, readAhead: Bool,
        fill: (UnsafeMutableRawBufferPointer) -> Void
    ) throws(SkeinError) -> BoardPublish { throw absent }

    func awaitRoom(rank: Int, sequence: UInt64, byteCount: Int, deadline: UInt64) async throws(SkeinError) { throw absent }

    func awaitAll(rank: Int, sequence: UInt64, awaiting: Range<Int>, deadline: UInt64) async throws(SkeinError) -> SharedSlots { throw absent }
}
