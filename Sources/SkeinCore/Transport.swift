#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import CMemoryCopy

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

    /// `receive`, where a transport that copies bytes in may land the payload straight in
    /// `destination` when it is exactly the payload's size and no send of this rank still reads it
    /// (the message's chunks then lie there). The others ignore `destination`.
    func receive(from peer: Int, tag: Tag, deadline: UInt64, into destination: UnsafeMutableRawBufferPointer?) async throws(SkeinError) -> Message

    /// False once no send of this rank reads `bytes` any more, so that they may be overwritten.
    /// Always true where a message hands its bytes over by reference (the receiver reads them when it likes).
    func sendsMayRead(_ bytes: UnsafeRawBufferPointer) -> Bool

    /// Returns once no send of this rank reads `bytes` any more (their receivers have them), so that
    /// the caller may change them; throws as `receive` does when a receiver dies or `deadline` passes.
    func settleSends(reading bytes: UnsafeRawBufferPointer, deadline: UInt64) async throws(SkeinError)
}

/// A transport whose ranks may run on the same host, and so may share memory.
public protocol HostTopology {
    /// True when `peer` runs on this rank's host.
    func sharesHost(with peer: Int) -> Bool
}

extension Transport {
    public func chargeReduction(byteCount: Int) {}

    public func receive(from peer: Int, tag: Tag, deadline: UInt64, into destination: UnsafeMutableRawBufferPointer?) async throws(SkeinError) -> Message {
        try await receive(from: peer, tag: tag, deadline: deadline)
    }

    public func sendsMayRead(_ bytes: UnsafeRawBufferPointer) -> Bool { true }

    public func settleSends(reading bytes: UnsafeRawBufferPointer, deadline: UInt64) async throws(SkeinError) {}
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

/// Nanoseconds on a clock that only this process's threads compare: the processor's cycle counter,
/// scaled to the host's monotonic clock once, at first use (about 2 ms of measuring). Reading it
/// takes 11 ns where `MonotonicClock` takes 27 (vDSO `clock_gettime`, whose ordered counter read
/// alone takes 20), which was 15% of an 8 B in-process collective, read twice per call.
///
/// Only where the kernel itself keeps time by that counter (its clocksource is `tsc`, so the
/// counters of all cores agree and tick at a constant rate), or on ARM64, whose virtual counter is
/// architected so; elsewhere it is `MonotonicClock`. It drifts from `MonotonicClock` by the
/// measurement's error (about 10⁻⁵: 10 µs a second), so readings of the two, or of two processes,
/// must not be compared: processes that compare times (the MPI board's entry times) use `MonotonicClock`.
///
/// A value, so that a holder reads it without the check of a lazily made global on every reading.
public struct ProcessClock: Sendable {
    let scale: Scale?

    /// This process's clock, measured at first use.
    public static let shared = ProcessClock(scale: Scale.measure())

    @inline(__always)
    public func now() -> UInt64 {
        guard let scale else { return MonotonicClock.now() }
        return scale.nanoseconds(atCount: skein_cycle_counter())
    }

    /// Counter readings to nanoseconds: `anchor` nanoseconds at count `origin`, then
    /// `perCount` / 2³² nanoseconds per count.
    struct Scale: Sendable {
        let origin: UInt64
        let anchor: UInt64
        let perCount: UInt64

        @inline(__always)
        func nanoseconds(atCount count: UInt64) -> UInt64 {
            // A core whose counter reads a hair behind the measuring core's reads the anchor.
            let elapsed = count > origin ? count &- origin : 0
            let (high, low) = elapsed.multipliedFullWidth(by: perCount)
            return anchor &+ (high << 32 | low >> 32)
        }

        /// Pairs the counter with the host's clock twice, 2 ms apart, each from the tightest of a
        /// few tries; nil where the counter is not one the kernel trusts (see `ProcessClock`).
        static func measure() -> Scale? {
            #if arch(x86_64)
            guard kernelClockSource() == "tsc" else { return nil }
            #elseif !arch(arm64)
            return nil
            #endif
            func pair() -> (count: UInt64, nanoseconds: UInt64) {
                var best: (count: UInt64, nanoseconds: UInt64, width: UInt64) = (0, 0, .max)
                for _ in 0..<16 {
                    let before = MonotonicClock.now()
                    let count = skein_cycle_counter()
                    let after = MonotonicClock.now()
                    if after &- before < best.width { best = (count, before &+ (after &- before) / 2, after &- before) }
                }
                return (best.count, best.nanoseconds)
            }
            let first = pair()
            while MonotonicClock.now() < first.nanoseconds &+ 2_000_000 {}
            let second = pair()
            guard second.count > first.count, second.nanoseconds > first.nanoseconds else { return nil }
            let perCount = (Double(second.nanoseconds - first.nanoseconds) / Double(second.count - first.count)) * 4_294_967_296
            guard perCount.isFinite, perCount >= 1, perCount < 1e15 else { return nil }
            return Scale(origin: first.count, anchor: first.nanoseconds, perCount: UInt64(perCount))
        }

        /// The kernel's clocksource ("tsc", "kvm-clock", …), or nil where it cannot be read.
        static func kernelClockSource() -> String? {
            let file = open("/sys/devices/system/clocksource/clocksource0/current_clocksource", O_RDONLY)
            guard file >= 0 else { return nil }
            defer { close(file) }
            var bytes = [UInt8](repeating: 0, count: 64)
            let count = bytes.withUnsafeMutableBytes { read(file, $0.baseAddress, $0.count) }
            guard count > 0 else { return nil }
            return String(decoding: bytes[..<count], as: UTF8.self).split(separator: "\n").first.map(String.init)
        }
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
        try await receive(from: peer, tag: tag, deadline: deadline, into: nil)
    }

    public func receive(from peer: Int, tag: Tag, deadline: UInt64, into destination: UnsafeMutableRawBufferPointer?) async throws(SkeinError) -> Message {
        do {
            return try await base.receive(from: members[peer], tag: tag, deadline: deadline, into: destination)
        } catch {
            // Report the peer in this group's numbering as well as the base one.
            guard error.peer == members[peer] else { throw error }
            throw SkeinError(error.code, rank: rank, peer: peer, "\(error.message) (subgroup rank \(peer))")
        }
    }

    public func sendsMayRead(_ bytes: UnsafeRawBufferPointer) -> Bool { base.sendsMayRead(bytes) }

    public func settleSends(reading bytes: UnsafeRawBufferPointer, deadline: UInt64) async throws(SkeinError) {
        try await base.settleSends(reading: bytes, deadline: deadline)
    }

    public func abort(context: UInt32, because error: SkeinError) { base.abort(context: context, because: error) }
    public func now() -> UInt64 { base.now() }
    public func chargeReduction(byteCount: Int) { base.chargeReduction(byteCount: byteCount) }
}
