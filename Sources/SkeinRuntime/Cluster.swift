import Foundation
import Synchronization
import SkeinCore

/// The runtime across the ranks of a transport (MPI processes): rank 0 drives (it keeps the task
/// graph and the store and runs tasks too), the other ranks serve tasks sent to them. Functions are
/// registered by name on every rank, as in SPMD; arguments and results travel as raw bytes (arrays of
/// numbers) or a compact binary encoding (other Codable values); large arrays between ranks of one
/// host are read where they lie instead (`SameHostTransfer`). Tasks whose arguments cannot travel
/// run on rank 0.
final class Cluster: Sendable {
    let transport: any Transport
    let workersPerRank: Int
    private let calls = Atomic<UInt64>(0)
    /// Which ranks share this rank's host (this rank's own entry is false).
    private let sharesHost: [Bool]
    /// How large objects reach ranks of this host: `.messages` when no other rank shares it or
    /// messages are not copied anyway.
    let sameHost: SameHostTransfer
    /// This rank's shared arena: for every large object without cross-memory attach; with it, on
    /// rank 0 for refs read more than once (a worker's results are read by attach every time).
    private let arena: SharedArena?
    /// Other ranks' arenas, as mapped here.
    private let arenaReader = SharedArenaReader()

    static let requestTag = Tag(context: 0x5EED_0001, sequence: 0)
    private let replies: ReplyRouter

    init(transport: any Transport, workersPerRank: Int, sameHost: SameHostTransfer, arenaWarmBytes: Int? = nil) {
        self.transport = transport
        self.workersPerRank = workersPerRank
        replies = ReplyRouter(transport: transport)
        let topology = transport as? any HostTopology
        sharesHost = (0..<transport.size).map { $0 != transport.rank && topology?.sharesHost(with: $0) == true }
        var chosen = sameHost.resolved(environment: ProcessInfo.processInfo.environment)
        if !sharesHost.contains(true) || transport.deliversByReference { chosen = .messages }
        let warm = arenaWarmBytes ?? SharedArena.defaultWarmBytes(ranksOnHost: sharesHost.filter { $0 }.count + 1)
        arena = chosen == .sharedArena || (chosen == .crossMemory && transport.rank == 0) ? SharedArena(warmBytes: warm) : nil
        self.sameHost = chosen == .sharedArena && arena == nil ? .messages : chosen
    }

    /// How `rank` can read `payload` where it lies on this host, or nil when it should travel as a
    /// message (small, encoded, another host, messages chosen, or the arena is full). With
    /// cross-memory attach, an object goes `inArena` when it is a ref read before, or a type read in
    /// place: it is copied there once, and a copy out of the arena's mapping runs at memcpy speed,
    /// the kernel's copy out of another process at half that (100 MiB: 8.5 GB/s against 3.9 here).
    func share(_ payload: WirePayload, with rank: Int, inArena: Bool = false) -> SameHostBytes? {
        guard sharesHost[rank], payload.kind == .raw, payload.elsewhere == nil, payload.chunk.byteCount >= SharedArena.threshold else { return nil }
        let attached = { SameHostBytes.attached(payload, SharedDescriptor(attaching: payload)) }
        switch sameHost {
        case .crossMemory where !inArena: return attached()
        case .crossMemory, .sharedArena:
            let block = payload.chunk.withUnsafeBytes { arena?.store($0, kind: payload.kind) }
            return block.map(SameHostBytes.arena) ?? (sameHost == .crossMemory ? attached() : nil)
        case .automatic, .messages: return nil
        }
    }

    /// The payload a descriptor from another rank of this host points at: in that rank's memory
    /// (read when decoded), or in its arena (read in place).
    func payload(_ descriptor: SharedDescriptor) throws(RuntimeError) -> WirePayload {
        guard descriptor.fd == SharedDescriptor.inProcessMemory else { return try arenaReader.payload(descriptor) }
        return WirePayload(kind: descriptor.kind, elsewhere: ProcessMemory(pid: descriptor.pid, address: UInt64(descriptor.offset), count: descriptor.count))
    }

    /// Bytes held in this rank's shared arena (zero once every object that went through it is freed).
    var sharedBytesInUse: Int { arena?.bytesInUse ?? 0 }

    /// The rank whose worker slot `lane` is.
    func rank(ofLane lane: Int) -> Int { lane / workersPerRank }

    private static let signature = CallSignature(
        operation: .pointToPoint, algorithm: 0, dataType: .float32, reduceOp: .sum, root: 0, count: 0, sequence: 0)

    /// `actorCall` is a task that runs after the earlier calls to the same actor, whose id ends its
    /// header; `push` sends an object to the rank that ends its header, as transfer `call`.
    enum Operation: UInt8 { case task = 0, stop = 1, fetch = 2, drop = 3, actorCall = 4, push = 5 }

    /// Objects one worker sends another directly (`push`) travel on this context, the transfer
    /// number as the sequence.
    static let pushContext: UInt32 = 0x5EED_0003

    private func request(
        _ operation: Operation, call: UInt64, object: UInt64, name: String = "", sources: [ArgumentSource] = [], actor: UInt64 = 0,
        reader: Int = 0
    ) -> Message {
        var header = [UInt8]()
        header.appendLittleEndian(call)
        header.append(operation.rawValue)
        header.appendLittleEndian(object)
        header.appendLittleEndian(UInt32(name.utf8.count))
        header += Array(name.utf8)
        header.appendLittleEndian(UInt32(sources.count))
        var chunks: [Chunk] = []
        for source in sources {
            switch source {
            case .inline(let payload):
                header.append(0)
                header.append(payload.kind.rawValue)
                header.appendLittleEndian(UInt64(0))
                chunks.append(payload.chunk)
            case .stored(let id):
                header.append(1)
                header.append(0)
                header.appendLittleEndian(id)
            case .shared(let bytes):
                header.append(2)
                bytes.descriptor.append(to: &header)
            case .sharedByAnotherRank(let descriptor):
                header.append(2)
                descriptor.append(to: &header)
            case .pushed(let holder, let transfer):
                header.append(3)
                header.appendLittleEndian(UInt32(holder))
                header.appendLittleEndian(transfer)
            }
        }
        if operation == .actorCall { header.appendLittleEndian(actor) }
        if operation == .push { header.appendLittleEndian(UInt32(reader)) }
        return Message(signature: Self.signature, skew: ArrivalSkew(rank: transport.rank, entry: 0), chunks: [Chunk.partition(header, into: 1)[0]] + chunks)
    }

    private func nextCall() -> UInt64 { calls.wrappingAdd(1, ordering: .relaxed).newValue }

    /// Results up to this size come back with the reply; larger ones stay on the rank that made them.
    static let inlineResultLimit = 4096

    /// Sends rank `rank` the request to run function `name` (after that rank's earlier calls to
    /// `actor`, if given) for object `output`; returns the call id its reply will carry.
    private func send(_ name: String, output: UInt64, _ sources: [ArgumentSource], on rank: Int, actor: UInt64?) throws -> UInt64 {
        let call = nextCall()
        let message = request(actor == nil ? .task : .actorCall, call: call, object: output, name: name, sources: sources, actor: actor ?? 0)
        try transport.send(message, to: rank, tag: Self.requestTag)
        return call
    }

    /// What a task's reply says: a small result comes back (`payload`); a larger one stays on the
    /// rank that made it and only its size comes back.
    private func made(by reply: Message, on rank: Int) throws -> (kind: WirePayload.Kind, bytes: Int, payload: WirePayload?) {
        let head: [UInt8] = reply.chunks[0].withUnsafeBytes { Array($0.dropFirst(8)) }
        if head.first == 3, head.count >= 5 {
            // An argument pushed from a third rank never came: that rank is gone, and with it what it held.
            let holder = Int(head.loadLittleEndian(UInt32.self, at: 1))
            holderLost.withLock { $0 }?(holder)
            throw RuntimeError(.workerLost, String(decoding: head.dropFirst(5), as: UTF8.self))
        }
        guard head.first == 0, head.count >= 10, let kind = WirePayload.Kind(rawValue: head[1]) else {
            throw RemoteTaskError(rank: rank, description: String(decoding: head.dropFirst(2), as: UTF8.self))
        }
        let bytes = Int(head.loadLittleEndian(UInt64.self, at: 2))
        return (kind, bytes, reply.chunks.count == 2 ? WirePayload(kind: kind, chunk: reply.chunks[1]) : nil)
    }

    /// The task's value when its result came back with the reply, else a `RemoteObject` kept on `rank`.
    private func value<R: Sendable>(of reply: Message, on rank: Int, returning _: R.Type) throws -> any Sendable {
        let made = try made(by: reply, on: rank)
        if let payload = made.payload { return try Wire.decode(R.self, payload) }
        return RemoteObject(rank: rank, bytes: made.bytes) { payload throws(RuntimeError) in try Wire.decode(R.self, payload) }
    }

    /// A lost rank's error (it exited, or its reply timed out) as `lost` words it; others as they are.
    private static func losing(_ error: any Error, _ lost: (SkeinError) -> RuntimeError) -> any Error {
        guard let error = error as? SkeinError, error.code == .peerExited || error.code == .timeout else { return error }
        return lost(error)
    }

    /// Runs `name` on `rank` for a task whose output is `output`: its value when the result came
    /// back with the reply, else a `RemoteObject` kept there. A lost rank becomes `lost(error)`.
    func run<R: Sendable>(
        _ name: String, output: UInt64, _ sources: [ArgumentSource], on rank: Int, actor: UInt64? = nil, returning _: R.Type,
        lost: (SkeinError) -> RuntimeError
    ) async throws -> any Sendable {
        do {
            let call = try send(name, output: output, sources, on: rank, actor: actor)
            // Arguments read where they lie on this host must stay until the task is done with them.
            defer { withExtendedLifetime(sources) {} }
            return try value(of: try await replies.reply(to: call, from: rank), on: rank, returning: R.self)
        } catch {
            throw Self.losing(error, lost)
        }
    }

    /// Sends actor call `name` to `rank`, which runs it after its earlier calls to `actor`, and
    /// returns at once; `then` gets what `run` would have returned, when the reply comes. The result
    /// says who receives the reply: nil when a task already listens to `rank`, else what the caller
    /// must run.
    func start<R: Sendable>(
        _ name: String, output: UInt64, _ sources: [ArgumentSource], on rank: Int, actor: UInt64, returning _: R.Type,
        lost: @escaping @Sendable (SkeinError) -> RuntimeError, then: @escaping @Sendable (Result<any Sendable, any Error>) -> Void
    ) throws -> (@Sendable () async -> Void)? {
        let call: UInt64
        do {
            call = try send(name, output: output, sources, on: rank, actor: actor)
        } catch {
            throw Self.losing(error, lost)
        }
        let mustListen = replies.onReply(to: call, from: rank) { [self] reply in
            withExtendedLifetime(sources) {}  // read where they lie until the reply says the call is done
            then(Result { try value(of: try reply.get(), on: rank, returning: R.self) }.mapError { Self.losing($0, lost) })
        }
        guard mustListen else { return nil }
        return { [replies] in await replies.listen(to: rank) }
    }

    /// The bytes of object `id`, kept on `rank`.
    func fetch(_ id: UInt64, from rank: Int) async throws -> WirePayload {
        switch try await locate(id, on: rank) {
        case .inline(let payload): return payload
        case .elsewhere(let descriptor): return try payload(descriptor)
        }
    }

    /// Where object `id`, kept on `rank`, can be read: its bytes, sent here (small, or not on this
    /// host), or where they lie on this host (`rank` keeps them there until the object is dropped).
    func locate(_ id: UInt64, on rank: Int) async throws -> Located {
        let call = nextCall()
        try transport.send(request(.fetch, call: call, object: id), to: rank, tag: Self.requestTag)
        let reply = try await replies.reply(to: call, from: rank)
        let head: [UInt8] = reply.chunks[0].withUnsafeBytes { Array($0.dropFirst(8)) }
        if head.first == 2, let descriptor = SharedDescriptor(head, at: 1) { return .elsewhere(descriptor) }
        guard head.first == 0, reply.chunks.count == 2, let kind = WirePayload.Kind(rawValue: head[1]) else {
            throw RemoteTaskError(rank: rank, description: String(decoding: head.dropFirst(2), as: UTF8.self))
        }
        return .inline(WirePayload(kind: kind, chunk: reply.chunks[1]))
    }

    enum Located {
        case inline(WirePayload)
        case elsewhere(SharedDescriptor)
    }

    /// Tells `holder` to send object `id` straight to `reader` (a rank of another host, so it cannot
    /// read the object in place), which receives it as transfer number (the result) when its task
    /// starts: the bytes cross the network once, and never through this rank.
    func push(_ id: UInt64, from holder: Int, to reader: Int) throws -> UInt64 {
        let transfer = nextCall()
        try transport.send(request(.push, call: transfer, object: id, reader: reader), to: holder, tag: Self.requestTag)
        return transfer
    }

    /// Called with a rank found gone by a worker that waited for an object it was to push.
    let holderLost = Mutex<(@Sendable (Int) -> Void)?>(nil)

    /// True when large objects on `holder` can be read in place by `reader` (both on this host, and
    /// objects move through shared memory).
    func readsInPlace(_ reader: Int, from holder: Int) -> Bool {
        sameHost != .messages && sharesHost[reader] && sharesHost[holder]
    }

    /// Tells `rank` to let go of object `id`.
    func drop(_ id: UInt64, at rank: Int) {
        try? transport.send(request(.drop, call: 0, object: id), to: rank, tag: Self.requestTag)
    }

    /// Tells every other rank to stop serving.
    func stopWorkers() {
        for rank in 0..<transport.size where rank != transport.rank {
            try? transport.send(request(.stop, call: 0, object: 0), to: rank, tag: Self.requestTag)
        }
    }

    /// Serves requests from rank 0 until it says stop; returns how many objects it still held then.
    @discardableResult
    func serve(_ lookup: @escaping @Sendable (String) -> Runtime.ErasedFunction?) async throws -> Int {
        let store = WorkerStore()
        let chains = ActorChains()
        let transport = self.transport
        let reply: @Sendable (UInt64, [UInt8], Chunk?) -> Void = { call, head, payload in
            // The call id first: `ReplyRouter` hands the reply to its call by it.
            let storage = AllocatedStorage(uninitializedByteCount: 8 + head.count)
            storage.base.storeBytes(of: call.littleEndian, as: UInt64.self)
            head.withUnsafeBytes { (storage.base + 8).copyMemory(from: $0.baseAddress!, byteCount: $0.count) }
            let chunks = [Chunk(storage: storage, offset: 0, byteCount: storage.byteCount, isWritable: true)] + (payload.map { [$0] } ?? [])
            try? transport.send(
                Message(signature: Self.signature, skew: ArrivalSkew(rank: transport.rank, entry: 0), chunks: chunks), to: 0,
                tag: ReplyRouter.tag)
        }
        while true {
            let request = try await transport.receive(from: 0, tag: Self.requestTag, deadline: .max)
            let head: [UInt8] = request.chunks[0].withUnsafeBytes { Array($0) }
            let call = head.loadLittleEndian(UInt64.self, at: 0)
            let object = head.loadLittleEndian(UInt64.self, at: 9)
            switch Operation(rawValue: head[8]) {
            case .stop:
                return store.withLock { $0.objects.count }
            case .drop:
                store.withLock { $0.drop(object) }
            case .fetch:
                let (payload, shared) = store.withLock { ($0.objects[object], $0.shared[object]) }
                if let payload {
                    // Large bytes are read where they lie on this host, kept until the object is dropped.
                    if let bytes = shared ?? share(payload, with: 0) {
                        store.withLock { $0.shared[object] = bytes }
                        var head: [UInt8] = [2]
                        bytes.descriptor.append(to: &head)
                        reply(call, head, nil)
                    } else {
                        reply(call, [0, payload.kind.rawValue], payload.chunk)
                    }
                } else {
                    reply(call, [1, 0] + Array("rank \(transport.rank) does not hold object #\(object)".utf8), nil)
                }
            case .push:
                let reader = Int(head.loadLittleEndian(UInt32.self, at: 25))
                let payload = store.withLock { $0.objects[object] }
                let answer: [UInt8] = payload.map { [0, $0.kind.rawValue] } ?? [1, 0] + Array("rank \(transport.rank) does not hold object #\(object)".utf8)
                let chunks = [Chunk.partition(answer, into: 1)[0]] + (payload.map { [$0.chunk] } ?? [])
                try? transport.send(
                    Message(signature: Self.signature, skew: ArrivalSkew(rank: transport.rank, entry: 0), chunks: chunks), to: reader,
                    tag: Tag(context: Self.pushContext, sequence: call))
            case .task, .actorCall, .none:
                let nameLength = Int(head.loadLittleEndian(UInt32.self, at: 17))
                let name = String(decoding: head[21..<(21 + nameLength)], as: UTF8.self)
                let count = Int(head.loadLittleEndian(UInt32.self, at: 21 + nameLength))
                var offset = 25 + nameLength
                var inline = 1
                var arguments: [WirePayload] = []
                var missing: UInt64?
                var unreadable: RuntimeError?
                var pushed: [(index: Int, holder: Int, transfer: UInt64)] = []
                for _ in 0..<count {
                    switch head[offset] {
                    case 3:
                        // Sent by a third rank, received when the task starts.
                        pushed.append((arguments.count, Int(head.loadLittleEndian(UInt32.self, at: offset + 1)), head.loadLittleEndian(UInt64.self, at: offset + 5)))
                        arguments.append(WirePayload(kind: .raw, chunk: .phantom(byteCount: 0)))
                        offset += 13
                    case 0:
                        arguments.append(WirePayload(kind: WirePayload.Kind(rawValue: head[offset + 1]) ?? .raw, chunk: request.chunks[inline]))
                        inline += 1
                        offset += 10
                    case 2:
                        // Rank 0 keeps the bytes until this task's reply reaches it.
                        do throws(RuntimeError) {
                            guard let descriptor = SharedDescriptor(head, at: offset + 1) else {
                                throw RuntimeError(.wrongArgumentType, task: name, "a malformed shared-memory argument reached rank \(transport.rank)")
                            }
                            arguments.append(try payload(descriptor))
                        } catch {
                            unreadable = error
                        }
                        offset += 1 + SharedDescriptor.encodedSize
                    default:
                        let id = head.loadLittleEndian(UInt64.self, at: offset + 2)
                        if let payload = store.withLock({ $0.objects[id] }) { arguments.append(payload) } else { missing = id }
                        offset += 10
                    }
                }
                let work: @Sendable () async -> Void = { [arguments, missing, unreadable, pushed] in
                    var arguments = arguments
                    for (index, holder, transfer) in pushed {
                        do {
                            let message = try await transport.receive(from: holder, tag: Tag(context: Cluster.pushContext, sequence: transfer), deadline: .max)
                            let answer: [UInt8] = message.chunks[0].withUnsafeBytes { Array($0) }
                            guard answer.count >= 2, answer[0] == 0, message.chunks.count == 2, let kind = WirePayload.Kind(rawValue: answer[1]) else {
                                // The holder's own refusal ([1, 0] and why) is this task's reply as it stands.
                                reply(call, answer.first == 1 ? answer : [1, 0] + Array("a malformed object reached rank \(transport.rank) from rank \(holder)".utf8), nil)
                                return
                            }
                            arguments[index] = WirePayload(kind: kind, chunk: message.chunks[1])
                        } catch {
                            var lost: [UInt8] = [3]
                            lost.appendLittleEndian(UInt32(holder))
                            lost += Array("an argument of \(name) that rank \(holder) was to send rank \(transport.rank) never came: \(error)".utf8)
                            reply(call, lost, nil)
                            return
                        }
                    }
                    do {
                        if let unreadable { throw unreadable }
                        if let missing { throw RuntimeError(.freedObject, task: name, "rank \(transport.rank) does not hold object #\(missing)") }
                        guard let function = lookup(name) else {
                            throw RuntimeError(.unregisteredFunction, task: name, "no function is registered as \"\(name)\" on rank \(transport.rank)")
                        }
                        let result = try await function.wire(arguments)
                        var head: [UInt8] = [0, result.kind.rawValue]
                        head.appendLittleEndian(UInt64(result.chunk.byteCount))
                        if result.chunk.byteCount <= Cluster.inlineResultLimit {
                            reply(call, head, result.chunk)  // small: it goes back at once, nothing is kept
                        } else {
                            store.withLock { $0.objects[object] = result }
                            reply(call, head, nil)
                        }
                    } catch {
                        reply(call, [1, 0] + Array("\(error)".utf8), nil)
                    }
                }
                if Operation(rawValue: head[8]) == .actorCall {
                    chains.run(after: head.loadLittleEndian(UInt64.self, at: offset), work)
                } else {
                    Task { await work() }
                }
            }
        }
    }
}

/// A serving rank's actor calls, queued per actor and run one after another in arrival order
/// (rank 0's submission order) by one task per actor while any are queued.
final class ActorChains: Sendable {
    /// An actor's calls not yet started, oldest at `head` (taken in O(1): pipelined calls queue up
    /// by the thousand).
    private struct Queue {
        var calls: [(@Sendable () async -> Void)?] = []
        var head = 0

        /// The oldest call, let go of here (it holds its arguments).
        mutating func take() -> (@Sendable () async -> Void)? {
            guard head < calls.count else { return nil }
            defer {
                calls[head] = nil
                head += 1
                if head == calls.count {
                    (calls, head) = ([], 0)
                } else if head > 1024 && head * 2 > calls.count {
                    calls.removeFirst(head)
                    head = 0
                }
            }
            return calls[head]
        }
    }
    private let queues = Mutex<[UInt64: Queue]>([:])

    func run(after actor: UInt64, _ work: @escaping @Sendable () async -> Void) {
        let start = queues.withLock { queues -> Bool in
            if queues[actor] != nil {
                queues[actor]!.calls.append(work)
                return false
            }
            queues[actor] = Queue()  // present: the actor's task is running `work`
            return true
        }
        guard start else { return }
        Task {
            var next: (@Sendable () async -> Void)? = work
            while let work = next {
                await work()
                next = queues.withLock { queues in
                    guard let call = queues[actor]?.take() else {
                        queues[actor] = nil  // an idle or dropped actor leaves nothing behind
                        return nil
                    }
                    return call
                }
            }
        }
    }
}

/// The objects a serving rank keeps for rank 0, and how rank 0 reads them on this host.
final class WorkerStore: Sendable {
    struct Contents {
        var objects: [UInt64: WirePayload] = [:]
        var shared: [UInt64: SameHostBytes] = [:]

        mutating func drop(_ id: UInt64) {
            objects[id] = nil
            shared[id] = nil
        }
    }
    private let contents = Mutex(Contents())
    func withLock<R>(_ body: (inout Contents) -> R) -> R { contents.withLock { body(&$0) } }
}

/// An object made by a task on another rank and kept there, with how to read its bytes here.
struct RemoteObject: Sendable {
    let rank: Int
    let bytes: Int
    let decode: @Sendable (WirePayload) throws(RuntimeError) -> any Sendable
}

/// Where a remote task finds one argument: in the request, in its own rank's store, or where it
/// lies on their common host (in rank 0's memory or arena, or in a third rank's, which keeps it
/// there until the object is dropped: the task's ref keeps it from being dropped first).
enum ArgumentSource: Sendable {
    case inline(WirePayload)
    case stored(UInt64)
    case shared(SameHostBytes)
    case sharedByAnotherRank(SharedDescriptor)
    /// Sent to the remote rank by the rank that holds it (of another host), as transfer `transfer`.
    case pushed(holder: Int, transfer: UInt64)

    /// The object bytes this argument moves to the remote rank.
    var bytesMoved: Int {
        switch self {
        case .inline(let payload): payload.chunk.byteCount
        case .stored: 0
        case .shared(let bytes): bytes.descriptor.count
        case .sharedByAnotherRank, .pushed: 0
        }
    }
}

/// Bytes another rank of this host reads where they lie; holding this keeps them valid.
enum SameHostBytes: Sendable {
    /// A copy in this rank's shared arena.
    case arena(SharedBlock)
    /// The object's own memory, read by cross-memory attach.
    case attached(WirePayload, SharedDescriptor)

    var descriptor: SharedDescriptor {
        switch self {
        case .arena(let block): block.descriptor
        case .attached(_, let descriptor): descriptor
        }
    }

    /// The arena copy, if the bytes are one.
    var arenaBlock: SharedBlock? {
        if case .arena(let block) = self { block } else { nil }
    }
}

/// How large objects (1 MiB and more, arrays of numbers) move between processes of one host.
public enum SameHostTransfer: Sendable, Equatable {
    /// Cross-memory attach where this system allows it, else a shared arena; the environment can
    /// turn either off (`SKEIN_CROSS_MEMORY=0`: the arena; `SKEIN_SHARED_ARENA=0`: messages).
    case automatic
    /// The reader copies the bytes straight out of the owner's memory (Linux `process_vm_readv`):
    /// one copy, nothing kept; a ref read a second time is then copied into the shared arena for
    /// every later reader. The arena alone where the system forbids reading another process.
    case crossMemory
    /// The owner copies the bytes into a shared arena once; every reader copies them out.
    case sharedArena
    /// As messages over the transport (MPI copies them through its own buffers).
    case messages

    func resolved(environment: [String: String]) -> SameHostTransfer {
        switch self {
        case .automatic:
            if environment["SKEIN_SHARED_ARENA"] == "0" { return .messages }
            return environment["SKEIN_CROSS_MEMORY"] != "0" && ProcessMemory.available ? .crossMemory : .sharedArena
        case .crossMemory: return ProcessMemory.available ? .crossMemory : .sharedArena
        case .sharedArena, .messages: return self
        }
    }
}

/// A task that threw on another rank: its error as that rank described it.
public struct RemoteTaskError: Error, Sendable, CustomStringConvertible {
    public let rank: Int
    public let description: String
}

extension Runtime {
    /// A runtime over every rank of `transport` (an `MPITransport`: it must allow concurrent sends and
    /// receives), with `workersPerRank` worker slots on each. Every rank creates it and registers the
    /// same functions; rank 0 then submits work while the others call `serve()`.
    /// `sameHost` says how large objects move between ranks of one host. Rank 0's store keeps to
    /// `memoryLimit` as an embedded runtime's does, counting the copies it keeps in the shared arena.
    /// `arenaWarmBytes` of that arena are faulted in at start (default: `SKEIN_ARENA_WARM_MIB`, else 256 MiB).
    public convenience init(
        cluster transport: any Transport, workersPerRank: Int = ProcessInfo.processInfo.activeProcessorCount, sameHost: SameHostTransfer = .automatic,
        memoryLimit: Int = Int.max, spillDirectory: URL? = nil, arenaWarmBytes: Int? = nil
    ) {
        self.init(
            workers: workersPerRank * transport.size, memoryLimit: memoryLimit, spillDirectory: spillDirectory,
            cluster: Cluster(transport: transport, workersPerRank: workersPerRank, sameHost: sameHost, arenaWarmBytes: arenaWarmBytes))
    }

    /// How large objects move between this rank and others of its host (`.messages` when none shares it).
    public var sameHostTransfer: SameHostTransfer { cluster?.sameHost ?? .messages }

    /// True on the rank that submits work (rank 0, or an embedded runtime).
    public var isDriver: Bool { cluster.map { $0.transport.rank == 0 } ?? true }

    /// On ranks other than 0: runs the tasks rank 0 sends until it shuts the runtime down.
    public func serve() async throws {
        guard let cluster, !isDriver else { return }
        let left = try await cluster.serve { [self] name in registry.withLock { $0[name] } }
        guard left == 0 else {
            throw RuntimeError(.freedObject, "rank \(cluster.transport.rank) still held \(left) objects when the runtime shut down (a leak)")
        }
        guard cluster.sharedBytesInUse == 0 else {
            throw RuntimeError(.freedObject, "rank \(cluster.transport.rank) still held \(cluster.sharedBytesInUse) bytes in shared memory when the runtime shut down (a leak)")
        }
        guard actorStatesHeld == 0 else {
            throw RuntimeError(.freedObject, "rank \(cluster.transport.rank) still held \(actorStatesHeld) actor states when the runtime shut down (a leak)")
        }
    }
}
