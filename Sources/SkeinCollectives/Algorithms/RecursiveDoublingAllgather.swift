import SkeinCore

/// Recursive-doubling allgather: partners at distance 1, 2, 4, … swap everything they hold;
/// log p·α + (p−1)/p·nβ. For p not a power of two it runs Bruck's rounds, which cost the same
/// ⌈log p⌉ messages and need no extra fold steps.
public struct RecursiveDoublingAllgather: AllgatherAlgorithm {
    public init() {}
    public var operation: CollectiveOperation { .allgather }
    public var name: String { "recursive-doubling" }
    public var code: UInt8 { 8 }

    public func schedule(rank: Int, size: Int, root: Int) -> Schedule {
        guard size & (size - 1) == 0 else { return BruckAllgather.bruck(rank: rank, size: size) }
        var b = ScheduleBuilder()
        var mask = 1
        while mask < size {
            let partner = rank ^ mask
            let mine = (rank / mask) * mask, theirs = (partner / mask) * mask
            b.send(to: partner, mine..<(mine + mask))
            b.receive(from: partner, theirs..<(theirs + mask))
            mask *= 2
        }
        return Schedule(slotCount: size, inputSlots: rank..<(rank + 1), outputSlots: 0..<size, steps: b.steps)
    }

    public func predictedSeconds(ranks p: Int, bytes: Int, cost: CostParameters) -> Double {
        BruckAllgather.bruckSeconds(ranks: p, bytes: bytes, cost: cost)
    }
}
