import SkeinCore

/// Element types with a plain, loop-at-a-time reference for each reduction, written independently
/// of Skein's kernels, plus random test data and the tolerance a comparison allows.
public protocol ReferenceElement: SkeinElement {
    static func reference(_ op: ReduceOp, _ a: Self, _ b: Self) -> Self
    static func random(using rng: inout SeededGenerator, for op: ReduceOp) -> Self
    /// Largest difference allowed between Skein's result and the reference for `ranks` contributions.
    static func tolerance(ranks: Int) -> Double
    var asDouble: Double { get }
}

extension Float: ReferenceElement {
    public static func random(using rng: inout SeededGenerator, for op: ReduceOp) -> Float {
        op == .product ? Float.random(in: 0.8...1.25, using: &rng) : Float.random(in: -1...1, using: &rng)
    }
    /// Sums of p values in [−1, 1] in any order differ by at most p·ε·Σ|x| ≤ p²·ε.
    public static func tolerance(ranks: Int) -> Double { Double(ranks * ranks) * 1.2e-7 + 1e-7 }
}

extension Double: ReferenceElement {
    public static func random(using rng: inout SeededGenerator, for op: ReduceOp) -> Double {
        op == .product ? Double.random(in: 0.8...1.25, using: &rng) : Double.random(in: -1...1, using: &rng)
    }
    public static func tolerance(ranks: Int) -> Double { Double(ranks * ranks) * 2.3e-16 + 1e-15 }
}

extension Float16: ReferenceElement {
    /// Small integers (and ±1 for products) keep every partial result exact in half precision.
    public static func random(using rng: inout SeededGenerator, for op: ReduceOp) -> Float16 {
        op == .product ? (Bool.random(using: &rng) ? 1 : -1) : Float16(Int.random(in: -8...8, using: &rng))
    }
    public static func tolerance(ranks: Int) -> Double { 0 }
}

extension Int32: ReferenceElement {
    public static func random(using rng: inout SeededGenerator, for op: ReduceOp) -> Int32 {
        Int32.random(in: -100_000...100_000, using: &rng)
    }
    public static func tolerance(ranks: Int) -> Double { 0 }
}

extension Int64: ReferenceElement {
    public static func random(using rng: inout SeededGenerator, for op: ReduceOp) -> Int64 {
        Int64.random(in: -1_000_000_000...1_000_000_000, using: &rng)
    }
    public static func tolerance(ranks: Int) -> Double { 0 }
}

// One plain reference per family of types, independent of Skein's kernels.
extension ReferenceElement where Self: BinaryFloatingPoint {
    public static func reference(_ op: ReduceOp, _ a: Self, _ b: Self) -> Self {
        switch op {
        case .sum: a + b
        case .product: a * b
        case .min: Swift.min(a, b)
        case .max: Swift.max(a, b)
        }
    }
    public var asDouble: Double { Double(self) }
}

extension ReferenceElement where Self: FixedWidthInteger {
    public static func reference(_ op: ReduceOp, _ a: Self, _ b: Self) -> Self {
        switch op {
        case .sum: a &+ b
        case .product: a &* b
        case .min: Swift.min(a, b)
        case .max: Swift.max(a, b)
        }
    }
    public var asDouble: Double { Double(self) }
}

/// Naive references: everything gathered in one place, computed with plain loops.
public enum Reference {
    /// Element-wise `op` over the ranks' vectors, folded in rank order.
    public static func reduce<T: ReferenceElement>(_ inputs: [[T]], _ op: ReduceOp) -> [T] {
        guard var acc = inputs.first else { return [] }
        for rank in inputs.indices.dropFirst() {
            for i in acc.indices { acc[i] = T.reference(op, acc[i], inputs[rank][i]) }
        }
        return acc
    }

    /// Block `index` of `count` elements split into `parts` (the first count % parts one longer).
    public static func block<T>(_ values: [T], index: Int, parts: Int) -> [T] {
        let base = values.count / parts, extra = values.count % parts
        let start = index * base + Swift.min(index, extra)
        return Array(values[start..<(start + base + (index < extra ? 1 : 0))])
    }

    /// First index where `got` and `want` differ by more than `tolerance`, or nil if they agree.
    public static func firstDifference<T: ReferenceElement>(_ got: [T], _ want: [T], tolerance: Double) -> String? {
        guard got.count == want.count else { return "length \(got.count), expected \(want.count)" }
        for i in got.indices {
            let g = got[i].asDouble, w = want[i].asDouble
            if g == w { continue }
            if !(abs(g - w) <= tolerance * Swift.max(1, abs(w))) { return "element \(i): got \(got[i]), expected \(want[i])" }
        }
        return nil
    }
}
