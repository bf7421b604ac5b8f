import SkeinCore

/// Recursive-doubling allreduce: partners at distance 1, 2, 4, … swap and reduce whole vectors;
/// log p·(α + nβ + nγ). For p not a power of two the first 2r ranks fold pairwise first and get
/// the result back last (two more steps). Best for the smallest messages.
public struct RecursiveDoublingAllreduce: AllreduceAlgorithm {
    public init() {}
    public var operation: CollectiveOperation { .allreduce }
    public var name: String { "recursive-doubling" }
    public var code: UInt8 { 13 }

    public func schedule(rank: Int, size: Int, root: Int) -> Schedule {
        var b = ScheduleBuilder()
        b.recursiveDoublingAllreduce(members: Array(0..<size), me: rank, slots: 0..<1)
        return .inPlace(slots: 1, b.steps)
    }

    public func predictedSeconds(ranks p: Int, bytes: Int, cost: CostParameters) -> Double {
        let n = Double(bytes), power = TreeCost.floorPowerOfTwo(p)
        let exchange = cost.alpha + n * (cost.beta + cost.gamma)
        let fold = p > power ? exchange + cost.alpha + n * cost.keepBeta : 0
        return Double(TreeCost.ceilLog2(power)) * exchange + fold + cost.delivery(p > power ? n : 0)
    }
}
