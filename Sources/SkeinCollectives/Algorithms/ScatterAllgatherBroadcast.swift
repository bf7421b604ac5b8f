import SkeinCore

/// Broadcast as binomial scatter + ring allgather (van de Geijn):
/// (log p + p − 1)α + 2(p−1)/p·nβ. Best for large messages on links that copy bytes.
public struct ScatterAllgatherBroadcast: BroadcastAlgorithm {
    public init() {}
    public var operation: CollectiveOperation { .broadcast }
    public var name: String { "scatter-allgather" }
    public var code: UInt8 { 2 }

    public func schedule(rank: Int, size: Int, root: Int) -> Schedule {
        var b = ScheduleBuilder()
        b.binomialScatter(members: Array(0..<size), me: rank, root: root, slots: 0..<size)
        b.ringAllgather(members: relativeMembers(size: size, root: root), me: (rank - root + size) % size, slots: 0..<size)
        return Schedule(
            slotCount: size, inputSlots: rank == root ? 0..<size : 0..<0, inputRotation: size - root,
            outputSlots: 0..<size, outputRotation: size - root, steps: b.steps)
    }

    public func predictedSeconds(ranks p: Int, bytes: Int, cost: CostParameters) -> Double {
        let block = Double(bytes) / Double(p)
        let scatter = TreeCost.down(p) { c in cost.alpha + Double(c) * block * cost.keepBeta }
        return scatter + Double(p - 1) * (cost.alpha + block * cost.keepBeta) + cost.delivery(Double(bytes))
    }
}
