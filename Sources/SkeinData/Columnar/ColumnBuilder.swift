/// Grows one column of a known type row by row (CSV ingest, aggregation output).
final class ColumnBuilder {
    let type: DataType
    var ints: [Int64] = []
    var doubles: [Double] = []
    var bools: [Bool] = []
    var strings: StringArrayBuilder
    var validity: [Bool]? = nil
    private(set) var count = 0

    init(_ type: DataType, capacity: Int = 0, stringBytes: Int = 0) {
        self.type = type
        strings = StringArrayBuilder(capacity: type == .string ? max(64, stringBytes) : 64, rows: type == .string ? capacity : 0)
        switch type {
        case .double: doubles.reserveCapacity(capacity)
        case .bool: bools.reserveCapacity(capacity)
        case .string: break
        default: ints.reserveCapacity(capacity)
        }
    }

    @inline(__always) func appendInt(_ v: Int64) { ints.append(v); count += 1; validity?.append(true) }
    @inline(__always) func appendDouble(_ v: Double) { doubles.append(v); count += 1; validity?.append(true) }
    @inline(__always) func appendBool(_ v: Bool) { bools.append(v); count += 1; validity?.append(true) }
    @inline(__always) func appendString(_ p: UnsafePointer<UInt8>, _ n: Int) {
        if n == 0 { strings.appendEmpty() } else { strings.append(p, n) }
        count += 1
        validity?.append(true)
    }

    func appendInts(_ values: [Int64]) {
        ints.append(contentsOf: values)
        count += values.count
        if validity != nil { validity!.append(contentsOf: repeatElement(true, count: values.count)) }
    }

    func appendNull() {
        if validity == nil { validity = [Bool](repeating: true, count: count) }
        switch type {
        case .double: doubles.append(0)
        case .bool: bools.append(false)
        case .string: strings.appendEmpty()
        default: ints.append(0)
        }
        count += 1
        validity!.append(false)
    }

    func append(_ v: Value) {
        switch v {
        case .null: appendNull()
        case .string(let s):
            var s = s
            s.withUTF8 { b in appendString(b.baseAddress ?? UnsafePointer(bitPattern: 1)!, b.count) }
        case .bool(let b): appendBool(b)
        default:
            if type == .double { appendDouble(v.doubleValue ?? 0) } else { appendInt(v.integerRepresentation(as: type) ?? 0) }
        }
    }

    /// Drops rows past `n` (a malformed CSV row being skipped).
    func truncate(to n: Int) {
        guard count > n else { return }
        switch type {
        case .double: doubles.removeLast(count - n)
        case .bool: bools.removeLast(count - n)
        case .string:
            strings.refs.removeLast(count - n)
            strings.lengths.removeLast(count - n)
        default: ints.removeLast(count - n)
        }
        validity?.removeLast(count - n)
        count = n
    }

    func finish() -> Column {
        switch type {
        case .double: Column(type: type, storage: .doubles(doubles), validity: validity)
        case .bool: Column(type: type, storage: .bools(bools), validity: validity)
        case .string: Column(type: type, storage: .strings(strings.finish()), validity: validity)
        default: Column(type: type, storage: .ints(ints), validity: validity)
        }
    }
}
