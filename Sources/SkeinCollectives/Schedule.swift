import SkeinCore

/// One action of one rank in a collective. Slots are the rank's working blocks of the vector;
/// a message carries the chunks of a contiguous slot range.
public struct Step: Sendable, Equatable {
    public enum Kind: UInt8, Sendable {
        /// Send slots `first..<first+count` to `peer`.
        case send
        /// Receive `count` chunks from `peer` into slots `first...`.
        case receive
        /// Receive `count` chunks from `peer` and reduce each into the slot it names.
        case receiveReduce
        /// Local: slot `peer` takes slot `first`'s chunk (no bytes move).
        case move
    }

    public var kind: Kind
    public var peer: Int32
    public var first: Int32
    public var count: Int32

    public var slots: Range<Int> { Int(first)..<Int(first + count) }
}

/// A rank's whole part in one collective: its steps, and how the caller's data maps onto slots.
///
/// Input is split into `inputSlots.count` near-equal blocks; block k goes to slot
/// `inputSlots.lowerBound + (k + inputRotation) % inputSlots.count`. Output is the concatenation,
/// for j in order, of slot `outputSlots.lowerBound + (j + outputRotation) % outputSlots.count`.
public struct Schedule: Sendable {
    public var slotCount: Int
    public var inputSlots: Range<Int>
    public var inputRotation: Int = 0
    public var outputSlots: Range<Int>
    public var outputRotation: Int = 0
    public var steps: [Step]

    public func inputSlot(ofBlock k: Int) -> Int {
        inputSlots.lowerBound + (k + inputRotation) % inputSlots.count
    }

    public func outputSlot(ofBlock j: Int) -> Int {
        outputSlots.lowerBound + (j + outputRotation) % outputSlots.count
    }
}

/// Builds schedules from the classic communication patterns. A pattern runs over `members`
/// (ranks of the communicator, in the pattern's order) with `me` this rank's index among them,
/// on a range of slots it splits into near-equal blocks, one per member where it needs blocks.
struct ScheduleBuilder {
    var steps: [Step] = []

    mutating func send(to peer: Int, _ slots: Range<Int>) {
        steps.append(Step(kind: .send, peer: Int32(peer), first: Int32(slots.lowerBound), count: Int32(slots.count)))
    }

    mutating func receive(from peer: Int, _ slots: Range<Int>) {
        steps.append(Step(kind: .receive, peer: Int32(peer), first: Int32(slots.lowerBound), count: Int32(slots.count)))
    }

    mutating func receiveReduce(from peer: Int, _ slots: Range<Int>) {
        steps.append(Step(kind: .receiveReduce, peer: Int32(peer), first: Int32(slots.lowerBound), count: Int32(slots.count)))
    }

    mutating func move(slot source: Int, to destination: Int) {
        steps.append(Step(kind: .move, peer: Int32(destination), first: Int32(source), count: 1))
    }

    /// Slot range of blocks `blocks` when `slots` is split into `parts` blocks.
    static func slots(_ slots: Range<Int>, parts: Int, blocks: Range<Int>) -> Range<Int> {
        guard !blocks.isEmpty else { return slots.lowerBound..<slots.lowerBound }
        let split = BlockPartition(count: slots.count, parts: parts)
        return (slots.lowerBound + split.range(blocks.lowerBound).lowerBound)..<(slots.lowerBound + split.range(blocks.upperBound - 1).upperBound)
    }

    // MARK: binomial trees (relative rank v = (me - root) mod q; children of v are v + m for powers
    // of two m below v's lowest set bit, within q)

    static func lowestBit(_ v: Int, _ q: Int) -> Int { v == 0 ? Int.max : v & -v }

    /// Root's whole `slots` to every member: receive from the parent, then send to children far to near.
    mutating func binomialBroadcast(members: [Int], me: Int, root: Int, slots: Range<Int>) {
        let q = members.count, v = (me - root + q) % q
        let low = Self.lowestBit(v, q)
        if v != 0 { receive(from: members[(v - low + root) % q], slots) }
        var m = 1
        while m < q && m < low { m <<= 1 }
        m >>= 1
        while m >= 1 {
            if m < low && v + m < q { send(to: members[(v + m + root) % q], slots) }
            m >>= 1
        }
    }

    /// Reduction of every member's `slots` into the root's: children near to far, then to the parent.
    mutating func binomialReduce(members: [Int], me: Int, root: Int, slots: Range<Int>) {
        let q = members.count, v = (me - root + q) % q
        let low = Self.lowestBit(v, q)
        var m = 1
        while m < low && v + m < q {
            receiveReduce(from: members[(v + m + root) % q], slots)
            m <<= 1
        }
        if v != 0 { send(to: members[(v - low + root) % q], slots) }
    }

    /// Block v of `slots` (split into q, relative order) goes to relative rank v.
    mutating func binomialScatter(members: [Int], me: Int, root: Int, slots: Range<Int>) {
        let q = members.count, v = (me - root + q) % q
        let low = Self.lowestBit(v, q)
        let subtree = Swift.min(low, q - v)
        if v != 0 { receive(from: members[(v - low + root) % q], Self.slots(slots, parts: q, blocks: v..<(v + subtree))) }
        var m = 1
        while m < subtree { m <<= 1 }
        m >>= 1
        while m >= 1 {
            if m < subtree {
                let child = v + m
                send(to: members[(child + root) % q], Self.slots(slots, parts: q, blocks: child..<(child + Swift.min(m, subtree - m))))
            }
            m >>= 1
        }
    }

    /// Relative rank v's block v of `slots` is collected at the root.
    mutating func binomialGather(members: [Int], me: Int, root: Int, slots: Range<Int>) {
        let q = members.count, v = (me - root + q) % q
        let low = Self.lowestBit(v, q)
        let subtree = Swift.min(low, q - v)
        var m = 1
        while m < subtree {
            let child = v + m
            receive(from: members[(child + root) % q], Self.slots(slots, parts: q, blocks: child..<(child + Swift.min(m, subtree - m))))
            m <<= 1
        }
        if v != 0 { send(to: members[(v - low + root) % q], Self.slots(slots, parts: q, blocks: v..<(v + subtree))) }
    }

    // MARK: rings (member i sends to i+1, receives from i-1)

    /// Afterwards member i holds block i of `slots` reduced over all members.
    mutating func ringReduceScatter(members: [Int], me: Int, slots: Range<Int>) {
        let q = members.count
        guard q > 1 else { return }
        let right = members[(me + 1) % q], left = members[(me - 1 + q) % q]
        for s in 0..<(q - 1) {
            let out = (me - s - 1 + 2 * q) % q, into = (me - s - 2 + 2 * q) % q
            send(to: right, Self.slots(slots, parts: q, blocks: out..<(out + 1)))
            receiveReduce(from: left, Self.slots(slots, parts: q, blocks: into..<(into + 1)))
        }
    }

    /// Member i starts with block i of `slots`; afterwards every member holds every block.
    mutating func ringAllgather(members: [Int], me: Int, slots: Range<Int>) {
        let q = members.count
        guard q > 1 else { return }
        let right = members[(me + 1) % q], left = members[(me - 1 + q) % q]
        for s in 0..<(q - 1) {
            let out = (me - s + q) % q, into = (me - s - 1 + q) % q
            send(to: right, Self.slots(slots, parts: q, blocks: out..<(out + 1)))
            receive(from: left, Self.slots(slots, parts: q, blocks: into..<(into + 1)))
        }
    }

    // MARK: recursive doubling with the non-power-of-two fold (MPICH's scheme)

    /// Folds the first 2·rem members pairwise so that a power of two p' take part; returns this
    /// member's rank among those p' (nil if it sits out) and p'.
    mutating func foldIn(members: [Int], me: Int, slots: Range<Int>) -> (newRank: Int?, power: Int) {
        let q = members.count
        var power = 1
        while power * 2 <= q { power *= 2 }
        let rem = q - power
        if me < 2 * rem {
            if me % 2 == 0 {
                send(to: members[me + 1], slots)
                return (nil, power)
            }
            receiveReduce(from: members[me - 1], slots)
            return (me / 2, power)
        }
        return (me - rem, power)
    }

    /// Member index of the participant with folded rank `newRank`.
    static func unfold(_ newRank: Int, members: Int, power: Int) -> Int {
        let rem = members - power
        return newRank < rem ? newRank * 2 + 1 : newRank + rem
    }

    /// Hands the result back to the members that sat out.
    mutating func foldOut(members: [Int], me: Int, power: Int, slots: Range<Int>) {
        let rem = members.count - power
        guard me < 2 * rem else { return }
        if me % 2 == 0 { receive(from: members[me + 1], slots) } else { send(to: members[me - 1], slots) }
    }

    /// Allreduce of whole `slots` by pairwise exchange at distances 1, 2, 4, …
    mutating func recursiveDoublingAllreduce(members: [Int], me: Int, slots: Range<Int>) {
        let q = members.count
        guard q > 1 else { return }
        let (newRank, power) = foldIn(members: members, me: me, slots: slots)
        if let newRank {
            var mask = 1
            while mask < power {
                let partner = members[Self.unfold(newRank ^ mask, members: q, power: power)]
                send(to: partner, slots)
                receiveReduce(from: partner, slots)
                mask <<= 1
            }
        }
        foldOut(members: members, me: me, power: power, slots: slots)
    }

    /// Rabenseifner: recursive-halving reduce-scatter then recursive-doubling allgather over p'
    /// blocks of `slots`.
    mutating func rabenseifnerAllreduce(members: [Int], me: Int, slots: Range<Int>) {
        let q = members.count
        guard q > 1 else { return }
        let (newRank, power) = foldIn(members: members, me: me, slots: slots)
        if let newRank {
            var lo = 0, hi = power
            var history: [(lo: Int, hi: Int, partner: Int)] = []
            var mask = 1
            while mask < power {
                let partner = members[Self.unfold(newRank ^ mask, members: q, power: power)]
                let mid = (lo + hi) / 2
                let (keep, give) = newRank & mask == 0 ? (lo..<mid, mid..<hi) : (mid..<hi, lo..<mid)
                history.append((lo, hi, partner))
                send(to: partner, Self.slots(slots, parts: power, blocks: give))
                receiveReduce(from: partner, Self.slots(slots, parts: power, blocks: keep))
                lo = keep.lowerBound
                hi = keep.upperBound
                mask <<= 1
            }
            for (wideLo, wideHi, partner) in history.reversed() {
                let other = lo == wideLo ? hi..<wideHi : wideLo..<lo
                send(to: partner, Self.slots(slots, parts: power, blocks: lo..<hi))
                receive(from: partner, Self.slots(slots, parts: power, blocks: other))
                lo = wideLo
                hi = wideHi
            }
        }
        foldOut(members: members, me: me, power: power, slots: slots)
    }
}
