import Synchronization

/// Distinct-value estimates of base-table columns, computed on first use with HyperLogLog
/// (4096 registers, about 1.6% error) and kept for later queries.
public final class Statistics: Sendable {
    private let cache = Mutex<[String: Double]>([:])

    public init() {}

    func distinct(table: String, _ t: Table, column: Int) -> Double {
        let key = "\(table)/\(column)/\(t.rowCount)"
        if let v = cache.withLock({ $0[key] }) { return v }
        let v = Statistics.estimateDistinct(t.columns[column])
        cache.withLock { $0[key] = v }
        return v
    }

    static func estimateDistinct(_ c: Column) -> Double {
        let n = c.count
        if n == 0 { return 1 }
        var hashes = [UInt64](repeating: 0, count: n)
        hashes.withUnsafeMutableBufferPointer { c.hash(into: $0) }
        let b = 12
        let m = 1 << b
        var registers = [UInt8](repeating: 0, count: m)
        for h0 in hashes {
            let h = mix64(h0)
            let idx = Int(h >> UInt64(64 - b))
            let rank = UInt8(min(64 - b, (h << UInt64(b)).leadingZeroBitCount) + 1)
            if rank > registers[idx] { registers[idx] = rank }
        }
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
