import Foundation

/// A typed column: one contiguous buffer of values plus optional validity (nil when nothing is
/// null). A column may be a window (offset, count) on a larger buffer, so slicing copies nothing.
public struct Column: Sendable {
    public enum Storage: Sendable {
        case ints([Int64])
        case doubles([Double])
        case bools([Bool])
        case strings(StringArray)
    }

    public let type: DataType
    public let storage: Storage
    /// true = the row holds a value.
    public let validity: [Bool]?
    public let offset: Int
    public let count: Int

    public init(type: DataType, storage: Storage, validity: [Bool]? = nil) {
        self.type = type
        self.storage = storage
        self.validity = validity
        offset = 0
        switch storage {
        case .ints(let a): count = a.count
        case .doubles(let a): count = a.count
        case .bools(let a): count = a.count
        case .strings(let a): count = a.refs.count
        }
    }

    init(type: DataType, storage: Storage, validity: [Bool]?, offset: Int, count: Int) {
        self.type = type
        self.storage = storage
        self.validity = validity
        self.offset = offset
        self.count = count
    }

    public init(ints: [Int64], type: DataType = .int64, validity: [Bool]? = nil) {
        self.init(type: type, storage: .ints(ints), validity: validity)
    }

    public init(doubles: [Double], validity: [Bool]? = nil) {
        self.init(type: .double, storage: .doubles(doubles), validity: validity)
    }

    public init(bools: [Bool], validity: [Bool]? = nil) {
        self.init(type: .bool, storage: .bools(bools), validity: validity)
    }

    public init(strings: [String], validity: [Bool]? = nil) {
        self.init(type: .string, storage: .strings(StringArray(strings)), validity: validity)
    }

    /// A column of `count` copies of one value.
    public init(repeating v: Value, type: DataType, count: Int) {
        let valid: [Bool]? = v.isNull ? [Bool](repeating: false, count: count) : nil
        switch type {
        case .double:
            self.init(type: type, storage: .doubles([Double](repeating: v.doubleValue ?? 0, count: count)), validity: valid)
        case .bool:
            var b = false
            if case .bool(let x) = v { b = x }
            self.init(type: type, storage: .bools([Bool](repeating: b, count: count)), validity: valid)
        case .string:
            var s = ""
            if case .string(let x) = v { s = x }
            var builder = StringArrayBuilder(capacity: s.utf8.count + 1, rows: count)
            builder.append(s)
            var sa = builder.finish()
            sa.refs = [UInt64](repeating: sa.refs.first ?? 0, count: count)
            sa.lengths = [UInt32](repeating: sa.lengths.first ?? 0, count: count)
            self.init(type: type, storage: .strings(sa), validity: valid)
        default:
            self.init(type: type, storage: .ints([Int64](repeating: v.integerRepresentation(as: type) ?? 0, count: count)), validity: valid)
        }
    }

    /// The rows in `range`, sharing this column's buffers.
    public func slice(_ range: Range<Int>) -> Column {
        Column(type: type, storage: storage, validity: validity, offset: offset + range.lowerBound, count: range.count)
    }

    /// Whether any row in the window is null.
    public var hasNulls: Bool {
        guard let v = validity else { return false }
        return v[offset..<(offset + count)].contains(false)
    }

    @inline(__always) public func isValid(_ i: Int) -> Bool {
        validity?[offset + i] ?? true
    }

    public func withInts<R>(_ body: (UnsafeBufferPointer<Int64>) throws -> R) rethrows -> R {
        guard case .ints(let a) = storage else { preconditionFailure("column of \(type) read as integers") }
        return try a.withUnsafeBufferPointer { try body(UnsafeBufferPointer(rebasing: $0[offset..<(offset + count)])) }
    }

    public func withDoubles<R>(_ body: (UnsafeBufferPointer<Double>) throws -> R) rethrows -> R {
        guard case .doubles(let a) = storage else { preconditionFailure("column of \(type) read as doubles") }
        return try a.withUnsafeBufferPointer { try body(UnsafeBufferPointer(rebasing: $0[offset..<(offset + count)])) }
    }

    public func withBools<R>(_ body: (UnsafeBufferPointer<Bool>) throws -> R) rethrows -> R {
        guard case .bools(let a) = storage else { preconditionFailure("column of \(type) read as booleans") }
        return try a.withUnsafeBufferPointer { try body(UnsafeBufferPointer(rebasing: $0[offset..<(offset + count)])) }
    }

    /// Validity of the window, or nil when every row is valid.
    public func withValidity<R>(_ body: (UnsafeBufferPointer<Bool>?) throws -> R) rethrows -> R {
        guard let v = validity else { return try body(nil) }
        return try v.withUnsafeBufferPointer { try body(UnsafeBufferPointer(rebasing: $0[offset..<(offset + count)])) }
    }

    public func withStrings<R>(_ body: (StringReader) throws -> R) rethrows -> R {
        guard case .strings(let a) = storage else { preconditionFailure("column of \(type) read as strings") }
        let bases = a.heaps.map { UnsafePointer($0.base) }
        return try a.refs.withUnsafeBufferPointer { refs in
            try a.lengths.withUnsafeBufferPointer { lens in
                try withExtendedLifetime(a.heaps) {
                    try body(StringReader(bases: bases, refs: refs.baseAddress! + offset, lengths: lens.baseAddress! + offset,
                                          single: bases.count == 1 ? bases[0] : nil))
                }
            }
        }
    }

    /// The value of row i (slow path: printing, tests, constants).
    public func value(at i: Int) -> Value {
        if !isValid(i) { return .null }
        let j = offset + i
        switch storage {
        case .ints(let a):
            switch type {
            case .decimal(let s): return .decimal(a[j], scale: s)
            case .date: return .date(Int32(truncatingIfNeeded: a[j]))
            default: return .int(a[j])
            }
        case .doubles(let a): return .double(a[j])
        case .bools(let a): return .bool(a[j])
        case .strings: return .string(withStrings { $0.string(i) })
        }
    }

    public var values: [Value] { (0..<count).map { value(at: $0) } }
}

extension Value {
    /// The Int64 that an integer-backed column of `type` stores for this value.
    func integerRepresentation(as type: DataType) -> Int64? {
        switch (self, type) {
        case (.int(let v), .decimal(let s)): return v * pow10Int(s)
        case (.int(let v), _): return v
        case (.decimal(let v, let s), .decimal(let t)):
            return t >= s ? v * pow10Int(t - s) : v / pow10Int(s - t)
        case (.decimal(let v, let s), _): return v / pow10Int(s)
        case (.date(let d), _): return Int64(d)
        case (.double(let d), .decimal(let s)): return Int64((d * pow10Double(s)).rounded())
        case (.double(let d), _): return Int64(d)
        case (.bool(let b), _): return b ? 1 : 0
        default: return nil
        }
    }
}

/// Rows of several columns together: a table, a batch, a morsel.
public struct Chunk: Sendable {
    public var columns: [Column]
    public var count: Int

    public init(columns: [Column], count: Int) {
        self.columns = columns
        self.count = count
    }

    public func slice(_ range: Range<Int>) -> Chunk {
        Chunk(columns: columns.map { $0.slice(range) }, count: range.count)
    }
}
