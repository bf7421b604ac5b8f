import Synchronization
import SkeinCore

/// Hands the replies serving ranks send rank 0 to the calls awaiting them. Every reply from one rank
/// travels on one tag, its call id first; one task at a time receives them (the first caller that
/// finds nobody listening, then, if others still wait when its own reply comes, a task of its own);
/// a call may instead leave a handler, which the listening task runs when the reply comes.
/// Each call receiving on a tag of its own instead would have every outstanding call poll the
/// transport: with thousands of pipelined actor calls, the polls cost more than the calls.
final class ReplyRouter: Sendable {
    private struct Peer {
        var listening = false
        var waiting: [UInt64: Waiter] = [:]
        /// Replies that came before their call began waiting.
        var early: [UInt64: Message] = [:]
    }

    private enum Turn {
        case arrived(Message)
        case listen
    }

    private enum Waiter {
        case task(CheckedContinuation<Turn, any Error>)
        case handler(@Sendable (Result<Message, any Error>) -> Void)

        func resume(_ result: Result<Message, any Error>) {
            switch self {
            case .task(let continuation): continuation.resume(with: result.map(Turn.arrived))
            case .handler(let handler): handler(result)
            }
        }
    }

    static let tag = Tag(context: 0x5EED_0002, sequence: 0)

    private let transport: any Transport
    private let peers: Mutex<[Peer]>

    init(transport: any Transport) {
        self.transport = transport
        peers = Mutex(Array(repeating: Peer(), count: transport.size))
    }

    /// The reply to `call`, sent by `rank` (the call id is the reply's first 8 bytes).
    func reply(to call: UInt64, from rank: Int) async throws -> Message {
        let turn: Turn = try await withCheckedThrowingContinuation { continuation in
            let now = peers.withLock { peers -> Turn? in
                if let message = peers[rank].early.removeValue(forKey: call) { return .arrived(message) }
                if peers[rank].listening {
                    peers[rank].waiting[call] = .task(continuation)
                    return nil
                }
                peers[rank].listening = true
                return .listen
            }
            if let now { continuation.resume(returning: now) }
        }
        switch turn {
        case .arrived(let message): return message
        case .listen: return try await listen(to: rank, for: call)!
        }
    }

    /// Runs `handler` with the reply to `call` from `rank` when it comes (on the task receiving
    /// replies, so it should be short), or with the error that ended the wait. Returns true when no
    /// task listens to `rank` yet: the caller must then run `listen(to:)` (in a task of its own, or
    /// inline when it has nothing else to do).
    func onReply(to call: UInt64, from rank: Int, _ handler: @escaping @Sendable (Result<Message, any Error>) -> Void) -> Bool {
        let (early, listen) = peers.withLock { peers -> (Message?, Bool) in
            if let message = peers[rank].early.removeValue(forKey: call) { return (message, false) }
            peers[rank].waiting[call] = .handler(handler)
            if peers[rank].listening { return (nil, false) }
            peers[rank].listening = true
            return (nil, true)
        }
        if let early { handler(.success(early)) }
        return listen
    }

    /// Receives `rank`'s replies and hands each to its call, until the reply to `call` comes (and is
    /// returned) or, for `call` nil, until no call waits.
    private func listen(to rank: Int, for call: UInt64?) async throws -> Message? {
        while true {
            let message: Message
            do {
                message = try await transport.receive(from: rank, tag: Self.tag, deadline: .max)
            } catch {
                let waiting = peers.withLock { peers in
                    peers[rank].listening = false
                    defer { peers[rank].waiting = [:] }
                    return peers[rank].waiting
                }
                for waiter in waiting.values { waiter.resume(.failure(error)) }
                if call != nil { throw error }
                return nil
            }
            let id = message.chunks[0].withUnsafeBytes { $0.loadUnaligned(as: UInt64.self) }.littleEndian
            if id == call {
                let others = peers.withLock { peers in
                    if peers[rank].waiting.isEmpty { peers[rank].listening = false }
                    return peers[rank].listening
                }
                if others { Task { await self.listen(to: rank) } }
                return message
            }
            let (waiter, done) = peers.withLock { peers in
                let waiter = peers[rank].waiting.removeValue(forKey: id)
                if waiter == nil { peers[rank].early[id] = message }
                let done = call == nil && peers[rank].waiting.isEmpty
                if done { peers[rank].listening = false }
                return (waiter, done)
            }
            waiter?.resume(.success(message))
            if done { return nil }
        }
    }

    /// Receives `rank`'s replies for the calls that wait on handlers, until none waits.
    func listen(to rank: Int) async {
        _ = try? await listen(to: rank, for: nil)
    }
}
