#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Rank-addressed, tagged messages between the members of a group.
///
/// `send` never blocks: the message is buffered (or handed over by reference) and the call
/// returns. `receive` waits for the next message from `peer` with `tag`; messages of one
/// (source, tag) stream arrive in the order they were sent, and streams of different tags may
/// interleave freely. One rank's transport is used by one task at a time.
public protocol Transport: Sendable {
    var rank: Int { get }
    var size: Int { get }

    func send(_ message: Message, to peer: Int, tag: Tag) throws(SkeinError)

    /// Waits for a message; throws `.timeout` naming `peer` once `deadline` (on `now()`'s clock) passes,
    /// `.peerExited` if the peer's program ended, `.aborted` if any rank aborted `tag.context`.
    func receive(from peer: Int, tag: Tag, deadline: UInt64) async throws(SkeinError) -> Message

    /// Tells every rank that calls in `context` have failed with `error`; their waits end at once with
    /// `.aborted`, whose `peer` is the rank `error` names (the one at fault) or else the aborting rank.
    func abort(context: UInt32, because error: SkeinError)

    /// Nanoseconds on the clock this transport's deadlines and timings use (virtual under simulation).
    func now() -> UInt64

    /// Accounts for element-wise reduction of `byteCount` bytes (advances a simulated clock).
    func chargeReduction(byteCount: Int)

    /// True when a message reaches its receiver without its bytes being copied.
    var deliversByReference: Bool { get }
}

/// A transport whose ranks may run on the same host, and so may share memory.
public protocol HostTopology {
    /// True when `peer` runs on this rank's host.
    func sharesHost(with peer: Int) -> Bool
}

extension Transport {
    public func chargeReduction(byteCount: Int) {}
}

/// The host's monotonic clock in nanoseconds.
public enum MonotonicClock {
    @inline(__always)
    public static func now() -> UInt64 {
        var ts = timespec()
        clock_gettime(CLOCK_MONOTONIC, &ts)
        return UInt64(ts.tv_sec) &* 1_000_000_000 &+ UInt64(ts.tv_nsec)
    }
}

extension MonotonicClock {
    /// Whole nanoseconds in `duration`: 0 when negative, `.max` when it does not fit.
    public static func nanoseconds(_ duration: Duration) -> UInt64 {
        let (seconds, attoseconds) = duration.components
        guard seconds >= 0 else { return 0 }
        let (whole, overflow) = UInt64(seconds).multipliedReportingOverflow(by: 1_000_000_000)
        return overflow ? .max : whole &+ UInt64(attoseconds / 1_000_000_000)
    }

    /// The reading `duration` after `start` (now by default), saturating at `.max`, which never comes.
    public static func deadline(after duration: Duration, from start: UInt64 = now()) -> UInt64 {
        let (sum, overflow) = start.addingReportingOverflow(nanoseconds(duration))
        return overflow ? .max : sum
    }
}

/// A subgroup of another transport's ranks, renumbered 0..<members.count: how survivors of a
/// failure, or a row of a grid, form a group of their own.
public struct SubgroupTransport: Transport {
    public let base: any Transport
    /// Base ranks of the members, in their new rank order.
    public let members: [Int]
    public let rank: Int

    public init(base: any Transport, members: [Int]) throws(SkeinError) {
        guard let mine = members.firstIndex(of: base.rank) else {
            throw SkeinError(.invalidArgument, rank: base.rank, "rank \(base.rank) is not among the subgroup's members \(members)")
        }
        guard Set(members).count == members.count, members.allSatisfy({ (0..<base.size).contains($0) }) else {
            throw SkeinError(.invalidArgument, rank: base.rank, "subgroup members \(members) must be distinct ranks in 0..<\(base.size)")
        }
        self.base = base
        self.members = members
        self.rank = mine
    }

    public var size: Int { members.count }
    public var deliversByReference: Bool { base.deliversByReference }

    public func send(_ message: Message, to peer: Int, tag: Tag) throws(SkeinError) {
        try base.send(message, to: members[peer], tag: tag)
    }

    public func receive(from peer: Int, tag: Tag, deadline: UInt64) async throws(SkeinError) -> Message {
        do {
            return try await base.receive(from: members[peer], tag: tag, deadline: deadline)
        } catch {
            // Report the peer in this group's numbering as well as the base one.
            guard error.peer == members[peer] else { throw error }
            throw SkeinError(error.code, rank: rank, peer: peer, "\(error.message) (subgroup rank \(peer))")
        }
    }

    public func abort(context: UInt32, because error: SkeinError) { base.abort(context: context, because: error) }
    public func now() -> UInt64 { base.now() }
    public func chargeReduction(byteCount: Int) { base.chargeReduction(byteCount: byteCount) }
}
