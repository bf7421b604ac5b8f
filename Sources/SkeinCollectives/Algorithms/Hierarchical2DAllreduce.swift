import SkeinCore

/// 2-D allreduce: ranks form a grid of rows of `columns` consecutive ranks (a node, or a mesh row).
/// Ring reduce-scatter along each row, ring allreduce of each 1/c share down each column, ring
/// allgather along each row. With c columns and r = p/c rows:
/// 2(c−1)α + (c−1)/c·n(2β + γ) + 2(r−1)α + (r−1)/r·(n/c)(2β + γ).
public struct Hierarchical2DAllreduce: AllreduceAlgorithm {
    /// Ranks per row; nil picks the largest divisor of p not above √p.
    public var columns: Int?

    public init(columns: Int? = nil) { self.columns = columns }
    public var operation: CollectiveOperation { .allreduce }
    public var name: String { "2d" }
    public var code: UInt8 { 15 }
    public var variant: Int { columns ?? 0 }

    /// Row length used for `size` ranks: `columns` when it divides `size`, else the automatic choice.
    public func rowLength(size: Int) -> Int {
        if let columns, columns >= 1, size % columns == 0 { return columns }
        var best = 1, c = 1
        while c * c <= size {
            if size % c == 0 { best = c }
            c += 1
        }
        return best
    }

    public func schedule(rank: Int, size: Int, root: Int) -> Schedule {
        let c = rowLength(size: size), rows = size / c
        let row = rank / c, position = rank % c
        let rowMembers = (0..<c).map { row * c + $0 }
        let columnMembers = (0..<rows).map { $0 * c + position }
        let share = ScheduleBuilder.slots(0..<size, parts: c, blocks: position..<(position + 1))
        var b = ScheduleBuilder()
        b.ringReduceScatter(members: rowMembers, me: position, slots: 0..<size)
        b.ringReduceScatter(members: columnMembers, me: row, slots: share)
        b.ringAllgather(members: columnMembers, me: row, slots: share)
        b.ringAllgather(members: rowMembers, me: position, slots: 0..<size)
        return .inPlace(slots: size, b.steps)
    }

    public func predictedSeconds(ranks p: Int, bytes: Int, cost: CostParameters) -> Double {
        let c = rowLength(size: p), rows = p / c
        let n = Double(bytes)
        var onLinks = cost
        onLinks.deliveryBeta = 0
        return RingAllreduce.seconds(ranks: c, bytes: n, cost: onLinks)
            + RingAllreduce.seconds(ranks: rows, bytes: n / Double(c), cost: onLinks)
            + cost.delivery(n * Double(p - 1) / Double(p))
    }
}
