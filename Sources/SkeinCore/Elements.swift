/// The element types collectives carry.
public enum DataType: UInt8, Sendable, CaseIterable, CustomStringConvertible {
    case float16, float32, float64, int32, int64

    public var byteWidth: Int {
        switch self {
        case .float16: 2
        case .float32, .int32: 4
        case .float64, .int64: 8
        }
    }

    public var description: String {
        switch self {
        case .float16: "Float16"
        case .float32: "Float"
        case .float64: "Double"
        case .int32: "Int32"
        case .int64: "Int64"
        }
    }
}

/// An associative, commutative element-wise reduction.
public enum ReduceOp: UInt8, Sendable, CaseIterable, CustomStringConvertible {
    case sum, product, min, max
    public var description: String {
        switch self {
        case .sum: "sum"
        case .product: "product"
        case .min: "min"
        case .max: "max"
        }
    }
}

/// An element type that collectives can move and reduce. Integer sums and products wrap on overflow.
public protocol SkeinElement: BitwiseCopyable, Sendable, Equatable {
    static var dataType: DataType { get }
    /// `destination[i] = op(lhs[i], rhs[i])` for `i < count`; `destination` may alias `lhs` or `rhs`.
    static func combine(
        _ op: ReduceOp, into destination: UnsafeMutablePointer<Self>,
        _ lhs: UnsafePointer<Self>, _ rhs: UnsafePointer<Self>, count: Int
    )
}

// The loops below are written once per concrete type (not as one generic) so that each is
// compiled specialised and vectorised in this module; a generic would dispatch per element.
// They go through `combineVectors`, whose explicit vectors stay vectors when the destination is
// one of the operands: the compiler's own vectorizer checks the three ranges for overlap, finds the
// in-place fold (`d == a`, the common case) overlapping, and falls back to a scalar loop that ran at
// a third of the speed (10 against 28 GB/s of Float sums in L1 here).

/// `d[i] = vector(a, b)` a vector of `V` at a time, the tail by `scalar`. `d` may be `a` or `b`:
/// each vector is loaded before its result is stored. (Partial overlaps are not allowed.)
@inline(__always)
func combineVectors<V: SIMD>(
    into d: UnsafeMutablePointer<V.Scalar>, _ a: UnsafePointer<V.Scalar>, _ b: UnsafePointer<V.Scalar>, count n: Int,
    _ vector: (V, V) -> V, _ scalar: (V.Scalar, V.Scalar) -> V.Scalar
) {
    let (to, lhs, rhs) = (UnsafeMutableRawPointer(d), UnsafeRawPointer(a), UnsafeRawPointer(b))
    let stride = MemoryLayout<V.Scalar>.stride
    var i = 0
    while i + V.scalarCount <= n {
        let offset = i &* stride
        let result = vector(lhs.loadUnaligned(fromByteOffset: offset, as: V.self), rhs.loadUnaligned(fromByteOffset: offset, as: V.self))
        to.storeBytes(of: result, toByteOffset: offset, as: V.self)
        i &+= V.scalarCount
    }
    while i < n {
        d[i] = scalar(a[i], b[i])
        i &+= 1
    }
}

extension Float: SkeinElement {
    public static var dataType: DataType { .float32 }
    public static func combine(
        _ op: ReduceOp, into d: UnsafeMutablePointer<Float>, _ a: UnsafePointer<Float>, _ b: UnsafePointer<Float>, count n: Int
    ) {
        typealias V = SIMD16<Float>
        switch op {
        case .sum: combineVectors(into: d, a, b, count: n, { (x: V, y: V) in x + y }, +)
        case .product: combineVectors(into: d, a, b, count: n, { (x: V, y: V) in x * y }, *)
        case .min: combineVectors(into: d, a, b, count: n, { (x: V, y: V) in x.replacing(with: y, where: y .< x) }, { a, b in b < a ? b : a })
        case .max: combineVectors(into: d, a, b, count: n, { (x: V, y: V) in x.replacing(with: y, where: y .> x) }, { a, b in b > a ? b : a })
        }
    }
}

extension Double: SkeinElement {
    public static var dataType: DataType { .float64 }
    public static func combine(
        _ op: ReduceOp, into d: UnsafeMutablePointer<Double>, _ a: UnsafePointer<Double>, _ b: UnsafePointer<Double>, count n: Int
    ) {
        typealias V = SIMD8<Double>
        switch op {
        case .sum: combineVectors(into: d, a, b, count: n, { (x: V, y: V) in x + y }, +)
        case .product: combineVectors(into: d, a, b, count: n, { (x: V, y: V) in x * y }, *)
        case .min: combineVectors(into: d, a, b, count: n, { (x: V, y: V) in x.replacing(with: y, where: y .< x) }, { a, b in b < a ? b : a })
        case .max: combineVectors(into: d, a, b, count: n, { (x: V, y: V) in x.replacing(with: y, where: y .> x) }, { a, b in b > a ? b : a })
        }
    }
}

#if !((os(macOS) || targetEnvironment(macCatalyst)) && arch(x86_64))
extension Float16: SkeinElement {
    public static var dataType: DataType { .float16 }
    // Each result is computed in Float and rounded once: exact for sum and product of two halves
    // (24 ≥ 2·11 + 2 significand bits), so this equals native half-precision arithmetic.
    public static func combine(
        _ op: ReduceOp, into d: UnsafeMutablePointer<Float16>, _ a: UnsafePointer<Float16>, _ b: UnsafePointer<Float16>, count n: Int
    ) {
        typealias V = SIMD16<Float16>
        typealias Wide = SIMD16<Float>
        switch op {
        case .sum: combineVectors(into: d, a, b, count: n, { (x: V, y: V) in V(Wide(x) + Wide(y)) }, { a, b in Float16(Float(a) + Float(b)) })
        case .product: combineVectors(into: d, a, b, count: n, { (x: V, y: V) in V(Wide(x) * Wide(y)) }, { a, b in Float16(Float(a) * Float(b)) })
        case .min: combineVectors(into: d, a, b, count: n, { (x: V, y: V) in x.replacing(with: y, where: y .< x) }, { a, b in b < a ? b : a })
        case .max: combineVectors(into: d, a, b, count: n, { (x: V, y: V) in x.replacing(with: y, where: y .> x) }, { a, b in b > a ? b : a })
        }
    }
}
#endif

extension Int32: SkeinElement {
    public static var dataType: DataType { .int32 }
    public static func combine(
        _ op: ReduceOp, into d: UnsafeMutablePointer<Int32>, _ a: UnsafePointer<Int32>, _ b: UnsafePointer<Int32>, count n: Int
    ) {
        typealias V = SIMD16<Int32>
        switch op {
        case .sum: combineVectors(into: d, a, b, count: n, { (x: V, y: V) in x &+ y }, &+)
        case .product: combineVectors(into: d, a, b, count: n, { (x: V, y: V) in x &* y }, &*)
        case .min: combineVectors(into: d, a, b, count: n, { (x: V, y: V) in pointwiseMin(x, y) }, Swift.min)
        case .max: combineVectors(into: d, a, b, count: n, { (x: V, y: V) in pointwiseMax(x, y) }, Swift.max)
        }
    }
}

extension Int64: SkeinElement {
    public static var dataType: DataType { .int64 }
    public static func combine(
        _ op: ReduceOp, into d: UnsafeMutablePointer<Int64>, _ a: UnsafePointer<Int64>, _ b: UnsafePointer<Int64>, count n: Int
    ) {
        typealias V = SIMD8<Int64>
        switch op {
        case .sum: combineVectors(into: d, a, b, count: n, { (x: V, y: V) in x &+ y }, &+)
        case .product: combineVectors(into: d, a, b, count: n, { (x: V, y: V) in x &* y }, &*)
        case .min: combineVectors(into: d, a, b, count: n, { (x: V, y: V) in pointwiseMin(x, y) }, Swift.min)
        case .max: combineVectors(into: d, a, b, count: n, { (x: V, y: V) in pointwiseMax(x, y) }, Swift.max)
        }
    }
}

/// A type-erased element-wise reduction over raw bytes, built once per call from an element type
/// and op. Holds the metatype rather than a closure, so making one allocates nothing.
public struct Reducer: Sendable {
    public let op: ReduceOp
    private let element: any SkeinElement.Type

    public init<T: SkeinElement>(_: T.Type, _ op: ReduceOp) {
        self.op = op
        self.element = T.self
    }

    public var dataType: DataType { element.dataType }

    /// `destination = op(lhs, rhs)` over `byteCount` bytes.
    public func callAsFunction(
        into destination: UnsafeMutableRawPointer, _ lhs: UnsafeRawPointer, _ rhs: UnsafeRawPointer, byteCount: Int
    ) {
        func apply<T: SkeinElement>(_: T.Type) {
            T.combine(
                op, into: destination.assumingMemoryBound(to: T.self), lhs.assumingMemoryBound(to: T.self),
                rhs.assumingMemoryBound(to: T.self), count: byteCount / MemoryLayout<T>.stride)
        }
        apply(element)
    }
}
