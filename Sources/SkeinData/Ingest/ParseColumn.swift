import Foundation

/// One column being parsed, in raw growable buffers. The parser keeps these in a buffer of its
/// own and mutates them through a pointer, so appending a value costs a store and a compare,
/// not the exclusivity and uniqueness checks of a class's array properties.
struct ParseColumn {
    let type: DataType
    private(set) var count = 0
    private var capacity: Int
    /// 8 bytes a row (Int64 or Double), or 1 (Bool).
    private var values: UnsafeMutableRawPointer
    private let width: Int
    private var valid: UnsafeMutablePointer<Bool>? = nil
    var strings: StringArrayBuilder

    init(_ type: DataType, capacity: Int) {
        self.type = type
        self.capacity = max(16, capacity)
        width = type == .bool ? 1 : 8
        values = .allocate(byteCount: type == .string ? 1 : self.capacity * width, alignment: 8)
        strings = StringArrayBuilder(capacity: type == .string ? self.capacity * 16 : 64, rows: type == .string ? self.capacity : 0)
    }

    private mutating func grow() {
        let newCap = capacity * 2
        if type != .string {
            let v = UnsafeMutableRawPointer.allocate(byteCount: newCap * width, alignment: 8)
            v.copyMemory(from: values, byteCount: count * width)
            values.deallocate()
            values = v
        }
        if let old = valid {
            let nv = UnsafeMutablePointer<Bool>.allocate(capacity: newCap)
            nv.update(from: old, count: count)
            old.deallocate()
            valid = nv
        }
        capacity = newCap
    }

    @inline(__always) mutating func appendInt(_ v: Int64) {
        if count == capacity { grow() }
        values.storeBytes(of: v, toByteOffset: count &* 8, as: Int64.self)
        valid?[count] = true
        count &+= 1
    }

    @inline(__always) mutating func appendDouble(_ v: Double) {
        if count == capacity { grow() }
        values.storeBytes(of: v, toByteOffset: count &* 8, as: Double.self)
        valid?[count] = true
        count &+= 1
    }

    @inline(__always) mutating func appendBool(_ v: Bool) {
        if count == capacity { grow() }
        values.storeBytes(of: v, toByteOffset: count, as: Bool.self)
        valid?[count] = true
        count &+= 1
    }

    @inline(__always) mutating func appendString(_ p: UnsafePointer<UInt8>, _ n: Int) {
        if count == capacity { grow() }
        if n == 0 { strings.appendEmpty() } else { strings.append(p, n) }
        valid?[count] = true
        count &+= 1
    }

    mutating func appendNull() {
        if count == capacity { grow() }
        if valid == nil {
            valid = .allocate(capacity: capacity)
            valid!.initialize(repeating: true, count: count)
        }
        switch type {
        case .string: strings.appendEmpty()
        case .bool: values.storeBytes(of: false, toByteOffset: count, as: Bool.self)
        default: values.storeBytes(of: Int64(0), toByteOffset: count * 8, as: Int64.self)
        }
        valid![count] = false
        count += 1
    }

    /// Drops rows past `n` (a malformed row being skipped).
    mutating func truncate(to n: Int) {
        guard count > n else { return }
        if type == .string {
            strings.refs.removeLast(count - n)
            strings.lengths.removeLast(count - n)
        }
        count = n
    }

    /// The column, copying the values out once; the buffers are freed.
    mutating func finish() -> Column {
        let n = count
        let validity = valid.map { Array(UnsafeBufferPointer(start: $0, count: n)) }
        defer {
            values.deallocate()
            valid?.deallocate()
        }
        switch type {
        case .string:
            return Column(type: type, storage: .strings(strings.finish()), validity: validity)
        case .bool:
            return Column(type: type, storage: .bools(Array(UnsafeBufferPointer(start: values.assumingMemoryBound(to: Bool.self), count: n))), validity: validity)
        case .double:
            return Column(type: type, storage: .doubles(Array(UnsafeBufferPointer(start: values.assumingMemoryBound(to: Double.self), count: n))), validity: validity)
        default:
            return Column(type: type, storage: .ints(Array(UnsafeBufferPointer(start: values.assumingMemoryBound(to: Int64.self), count: n))), validity: validity)
        }
    }
}
