import Synchronization

/// Distinct-value estimates of base-table columns, computed on first use with HyperLogLog
/// (4096 registers, about 1.6% error) and kept for later queries.
public final class Statistics: Sendable {
    private let cache = Mutex<[String: Double]>([:])
    /// Figures for whole tables whose rows are spread over ranks, so every rank plans alike.
    private let global = Mutex<[String: (rows: Int, distinct: [Double])]>([:])

    public init() {}

    /// Plans `table` as having `rows` rows and these distinct counts per column (a distributed
    /// table's totals, where this rank holds only a part).
    func setGlobal(table: String, rows: Int, distinct: [Double]) {
        global.withLock { $0[table] = (rows, distinct) }
    }

    func rows(table: String) -> Int? { global.withLock { $0[table]?.rows } }

    func distinct(table: String, _ t: Table, column: Int) -> Double {
        if let g = global.withLock({ $0[table] }), column < g.distinct.count { return g.distinct[column] }
        let key = "\(table)/\(column)/\(t.rowCount)"
        if let v = cache.withLock({ $0[key] }) { return v }
        let v = Statistics.estimateDistinct(t.columns[column])
        cache.withLock { $0[key] = v }
        return v
    }

    static let registerBits = 12

    /// HyperLogLog registers of a column; registers of parts merge by element-wise max.
    static func registers(_ c: Column) -> [UInt8] {
        let b = registerBits
        var registers = [UInt8](repeating: 0, count: 1 << b)
        guard c.count > 0 else { return registers }
        var hashes = [UInt64](repeating: 0, count: c.count)
        hashes.withUnsafeMutableBufferPointer { c.hash(into: $0) }
        for h0 in hashes {
            let h = mix64(h0)
            let idx = Int(h >> UInt64(64 - b))
            let rank = UInt8(min(64 - b, (h << UInt64(b)).leadingZeroBitCount) + 1)
            if rank > registers[idx] { registers[idx] = rank }
        }
        return registers
    }

    static func estimateDistinct(_ c: Column) -> Double {
        estimate(registers: registers(c), rows: c.count)
    }

    static func estimate(registers: [UInt8], rows n: Int) -> Double {
        if n == 0 { return 1 }
        let m = registers.count
        var sum = 0.0
        var zeros = 0
        for r in registers {
            sum += 1.0 / Double(UInt64(1) << UInt64(r))
            if r == 0 { zeros += 1 }
        }
        let alpha = 0.7213 / (1 + 1.079 / Double(m))
        var e = alpha * Double(m) * Double(m) / sum
        if e <= 2.5 * Double(m), zeros > 0 { e = Double(m) * log(Double(m) / Double(zeros)) }
        return max(1, min(Double(n), e))
    }
}

import Foundation
