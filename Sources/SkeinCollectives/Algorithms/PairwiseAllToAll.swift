import SkeinCore

/// Pairwise-exchange all-to-all: in step k each rank sends its block for rank + k and receives
/// from rank − k; (p−1)(α + nβ/p) with n each rank's whole send buffer.
public struct PairwiseAllToAll: AllToAllAlgorithm {
    public init() {}
    public var operation: CollectiveOperation { .allToAll }
    public var name: String { "pairwise" }
    public var code: UInt8 { 16 }

    public func schedule(rank: Int, size: Int, root: Int) -> Schedule {
        var b = ScheduleBuilder()
        b.move(slot: rank, to: size + rank)
        for k in 1..<max(size, 1) {
            let to = (rank + k) % size, from = (rank - k + size) % size
            b.send(to: to, to..<(to + 1))
            b.receive(from: from, (size + from)..<(size + from + 1))
        }
        return Schedule(slotCount: 2 * size, inputSlots: 0..<size, outputSlots: size..<(2 * size), steps: b.steps)
    }

    public func predictedSeconds(ranks p: Int, bytes: Int, cost: CostParameters) -> Double {
        Double(p - 1) * (cost.alpha + Double(bytes) / Double(p) * cost.keepBeta)
            + cost.delivery(Double(p - 1) * Double(bytes) / Double(p))
    }
}
