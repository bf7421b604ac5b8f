import Foundation

/// The type of a column: what its buffer holds and how its values compare, print and compute.
public enum DataType: Hashable, Sendable, CustomStringConvertible {
    case int64
    case double
    /// Fixed point: the value times 10^scale, held exactly in an Int64 (precision 18).
    case decimal(scale: Int)
    case bool
    /// Days since 1970-01-01.
    case date
    case string

    public var description: String {
        switch self {
        case .int64: "BIGINT"
        case .double: "DOUBLE"
        case .decimal(let s): "DECIMAL(18,\(s))"
        case .bool: "BOOLEAN"
        case .date: "DATE"
        case .string: "VARCHAR"
        }
    }

    /// Whether values live in the Int64 buffer (integers, fixed point, dates).
    public var isIntegerBacked: Bool {
        switch self {
        case .int64, .decimal, .date: true
        default: false
        }
    }

    public var isNumeric: Bool {
        switch self {
        case .int64, .double, .decimal: true
        default: false
        }
    }

    public var scale: Int {
        if case .decimal(let s) = self { return s }
        return 0
    }
}

/// One value, for literals, results read back, and the naive references of the tests.
public enum Value: Hashable, Sendable, CustomStringConvertible {
    case null
    case int(Int64)
    case double(Double)
    case decimal(Int64, scale: Int)
    case bool(Bool)
    case date(Int32)
    case string(String)

    public var isNull: Bool { if case .null = self { return true }; return false }

    public var type: DataType? {
        switch self {
        case .null: nil
        case .int: .int64
        case .double: .double
        case .decimal(_, let s): .decimal(scale: s)
        case .bool: .bool
        case .date: .date
        case .string: .string
        }
    }

    /// The value as a Double, for numeric types.
    public var doubleValue: Double? {
        switch self {
        case .int(let v): Double(v)
        case .double(let v): v
        case .decimal(let v, let s): Double(v) / pow10Double(s)
        default: nil
        }
    }

    public var description: String {
        switch self {
        case .null: "NULL"
        case .int(let v): String(v)
        case .double(let v): formatDouble(v)
        case .decimal(let v, let s): formatDecimal(v, scale: s)
        case .bool(let v): v ? "true" : "false"
        case .date(let d): formatDate(d)
        case .string(let s): s
        }
    }
}

@inline(__always) func pow10Int(_ n: Int) -> Int64 {
    var r: Int64 = 1
    for _ in 0..<max(0, n) { r &*= 10 }
    return r
}

@inline(__always) func pow10Double(_ n: Int) -> Double {
    Double(pow10Int(n))
}

func formatDouble(_ v: Double) -> String {
    if v.isNaN || v.isInfinite { return String(v) }
    if v == v.rounded(), abs(v) < 1e15 { return String(Int64(v)) + ".0" }
    return String(v)
}

func formatDecimal(_ v: Int64, scale: Int) -> String {
    if scale == 0 { return String(v) }
    let p = pow10Int(scale)
    let sign = v < 0 ? "-" : ""
    let m = v.magnitude
    let whole = m / UInt64(p)
    var frac = String(m % UInt64(p))
    frac = String(repeating: "0", count: scale - frac.count) + frac
    return "\(sign)\(whole).\(frac)"
}

/// Days since the epoch of a proleptic Gregorian date (Howard Hinnant's days_from_civil).
@inline(__always) public func daysFromCivil(_ y0: Int, _ m: Int, _ d: Int) -> Int32 {
    let y = m <= 2 ? y0 - 1 : y0
    let era = (y >= 0 ? y : y - 399) / 400
    let yoe = y - era * 400
    let mp = (m + 9) % 12
    let doy = (153 * mp + 2) / 5 + d - 1
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy
    return Int32(era * 146097 + doe - 719468)
}

/// The (year, month, day) of days since the epoch.
@inline(__always) public func civilFromDays(_ z0: Int32) -> (year: Int, month: Int, day: Int) {
    let z = Int(z0) + 719468
    let era = (z >= 0 ? z : z - 146096) / 146097
    let doe = z - era * 146097
    let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365
    let y = yoe + era * 400
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100)
    let mp = (5 * doy + 2) / 153
    let d = doy - (153 * mp + 2) / 5 + 1
    let m = mp < 10 ? mp + 3 : mp - 9
    return (m <= 2 ? y + 1 : y, m, d)
}

public func formatDate(_ d: Int32) -> String {
    let (y, m, day) = civilFromDays(d)
    func two(_ v: Int) -> String { v < 10 ? "0\(v)" : "\(v)" }
    return "\(y)-\(two(m))-\(two(day))"
}

/// Parses YYYY-MM-DD; nil when the text is not a valid date.
public func parseDate<S: StringProtocol>(_ s: S) -> Int32? {
    let parts = s.split(separator: "-", omittingEmptySubsequences: false)
    guard parts.count == 3, let y = Int(parts[0]), let m = Int(parts[1]), let d = Int(parts[2]),
          (1...12).contains(m), (1...31).contains(d) else { return nil }
    return daysFromCivil(y, m, d)
}

/// Adds months to a date, clamping the day to the month's length (SQL's date + INTERVAL 'n' MONTH).
public func addMonths(_ days: Int32, _ months: Int) -> Int32 {
    let (y, m, d) = civilFromDays(days)
    let total = y * 12 + (m - 1) + months
    let ny = total >= 0 ? total / 12 : (total - 11) / 12
    let nm = total - ny * 12 + 1
    let lengths = [31, (ny % 4 == 0 && (ny % 100 != 0 || ny % 400 == 0)) ? 29 : 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31]
    return daysFromCivil(ny, nm, min(d, lengths[nm - 1]))
}
