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

extension Float: SkeinElement {
    public static var dataType: DataType { .float32 }
    public static func combine(
        _ op: ReduceOp, into d: UnsafeMutablePointer<Float>, _ a: UnsafePointer<Float>, _ b: UnsafePointer<Float>, count n: Int
    ) {
        switch op {
        case .sum: for i in 0..<n { d[i] = a[i] + b[i] }
        case .product: for i in 0..<n { d[i] = a[i] * b[i] }
        case .min: for i in 0..<n { d[i] = b[i] < a[i] ? b[i] : a[i] }
        case .max: for i in 0..<n { d[i] = b[i] > a[i] ? b[i] : a[i] }
        }
    }
}

extension Double: SkeinElement {
    public static var dataType: DataType { .float64 }
    public static func combine(
        _ op: ReduceOp, into d: UnsafeMutablePointer<Double>, _ a: UnsafePointer<Double>, _ b: UnsafePointer<Double>, count n: Int
    ) {
        switch op {
        case .sum: for i in 0..<n { d[i] = a[i] + b[i] }
        case .product: for i in 0..<n { d[i] = a[i] * b[i] }
        case .min: for i in 0..<n { d[i] = b[i] < a[i] ? b[i] : a[i] }
        case .max: for i in 0..<n { d[i] = b[i] > a[i] ? b[i] : a[i] }
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
        switch op {
        case .sum: for i in 0..<n { d[i] = Float16(Float(a[i]) + Float(b[i])) }
        case .product: for i in 0..<n { d[i] = Float16(Float(a[i]) * Float(b[i])) }
        case .min: for i in 0..<n { d[i] = b[i] < a[i] ? b[i] : a[i] }
        case .max: for i in 0..<n { d[i] = b[i] > a[i] ? b[i] : a[i] }
        }
    }
}
#endif

extension Int32: SkeinElement {
    public static var dataType: DataType { .int32 }
    public static func combine(
        _ op: ReduceOp, into d: UnsafeMutablePointer<Int32>, _ a: UnsafePointer<Int32>, _ b: UnsafePointer<Int32>, count n: Int
    ) {
        switch op {
        case .sum: for i in 0..<n { d[i] = a[i] &+ b[i] }
        case .product: for i in 0..<n { d[i] = a[i] &* b[i] }
        case .min: for i in 0..<n { d[i] = Swift.min(a[i], b[i]) }
        case .max: for i in 0..<n { d[i] = Swift.max(a[i], b[i]) }
        }
    }
}

extension Int64: SkeinElement {
    public static var dataType: DataType { .int64 }
    public static func combine(
        _ op: ReduceOp, into d: UnsafeMutablePointer<Int64>, _ a: UnsafePointer<Int64>, _ b: UnsafePointer<Int64>, count n: Int
    ) {
        switch op {
        case .sum: for i in 0..<n { d[i] = a[i] &+ b[i] }
        case .product: for i in 0..<n { d[i] = a[i] &* b[i] }
        case .min: for i in 0..<n { d[i] = Swift.min(a[i], b[i]) }
        case .max: for i in 0..<n { d[i] = Swift.max(a[i], b[i]) }
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
