import SkeinCore

/// Ring (bucket) allgather: p − 1 steps, each passing one block right; (p−1)α + (p−1)/p·nβ.
public struct RingAllgather: AllgatherAlgorithm {
    public init() {}
    public var operation: CollectiveOperation { .allgather }
    public var name: String { "ring" }
    public var code: UInt8 { 7 }

    public func schedule(rank: Int, size: Int, root: Int) -> Schedule {
        var b = ScheduleBuilder()
        b.ringAllgather(members: Array(0..<size), me: rank, slots: 0..<size)
        return Schedule(slotCount: size, inputSlots: rank..<(rank + 1), outputSlots: 0..<size, steps: b.steps)
    }

    public func predictedSeconds(ranks p: Int, bytes: Int, cost: CostParameters) -> Double {
        Double(p - 1) * (cost.alpha + Double(bytes) / Double(p) * cost.keepBeta)
            + cost.delivery(Double(p - 1) * Double(bytes) / Double(p))
    }
}
