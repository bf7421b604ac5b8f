import Foundation

/// A column or a constant while an expression is evaluated over a chunk; constants stay scalar
/// so that `col < 24` compares against a register, not a filled array.
enum Vec {
    case column(Column)
    case constant(Value, DataType)

    var type: DataType {
        switch self {
        case .column(let c): c.type
        case .constant(_, let t): t
        }
    }

    func materialize(_ n: Int) -> Column {
        switch self {
        case .column(let c): c
        case .constant(let v, let t): Column(repeating: v, type: t, count: n)
        }
    }
}

/// Evaluates bound expressions over a chunk, column at a time.
struct Evaluator {
    let chunk: Chunk
    var n: Int { chunk.count }

    func evaluate(_ e: Expr) throws -> Column { try vec(e).materialize(n) }

    /// The rows where a predicate is true (null counts as false).
    func select(_ predicate: Expr) throws -> [Int32] {
        switch try vec(predicate) {
        case .constant(let v, _):
            if case .bool(true) = v { return (0..<Int32(n)).map { $0 } }
            return []
        case .column(let c):
            return c.withBools { b in
                c.withValidity { v in
                    var out = [Int32]()
                    out.reserveCapacity(n / 4)
                    if let v {
                        for i in 0..<n where b[i] && v[i] { out.append(Int32(i)) }
                    } else {
                        for i in 0..<n where b[i] { out.append(Int32(i)) }
                    }
                    return out
                }
            }
        }
    }

    func vec(_ e: Expr) throws -> Vec {
        switch e {
        case .column(let i, _): return .column(chunk.columns[i])
        case .outer(_, let name): throw DataError(.unsupported, "a correlated reference to \(name) was left in a plan; this subquery form is not supported")
        case .literal(let v, let t): return .constant(v, t)
        case .binary(let op, let l, let r):
            let a = try vec(l), b = try vec(r)
            if op == .and || op == .or { return logical(op, a, b) }
            if op.isComparison { return try compare(op, a, b) }
            if op == .concat { return concat(a, b) }
            return try arithmetic(op, a, b)
        case .not(let x):
            let a = try vec(x)
            if case .constant(let v, let t) = a {
                if case .bool(let b) = v { return .constant(.bool(!b), t) }
                return a
            }
            let c = a.materialize(n)
            let out = c.withBools { b in [Bool](unsafeUninitializedCapacity: n) { o, k in for i in 0..<n { o[i] = !b[i] }; k = n } }
            return .column(Column(type: .bool, storage: .bools(out), validity: c.slicedValidity))
        case .negate(let x):
            return try arithmetic(.sub, .constant(.int(0), .int64), try vec(x))
        case .isNull(let x, let negated):
            let a = try vec(x)
            if case .constant(let v, _) = a { return .constant(.bool(v.isNull != negated), .bool) }
            let c = a.materialize(n)
            let out = c.withValidity { v in
                [Bool](unsafeUninitializedCapacity: n) { o, k in for i in 0..<n { o[i] = ((v?[i] ?? true) == negated) }; k = n }
            }
            return .column(Column(bools: out))
        case .like(let x, let pattern, let negated):
            let c = try vec(x).materialize(n)
            let m = LikeMatcher(pattern)
            let out = c.withStrings { r in
                [Bool](unsafeUninitializedCapacity: n) { o, k in
                    for i in 0..<n { let (p, l) = r.pointer(i); o[i] = m.matches(p, l) != negated }
                    k = n
                }
            }
            return .column(Column(type: .bool, storage: .bools(out), validity: c.slicedValidity))
        case .inList(let x, let values, let negated):
            return try inList(try vec(x), values, negated)
        case .caseWhen(let whens, let otherwise):
            return try caseWhen(whens, otherwise, resultType(e, chunk.columns.map(\.type)))
        case .extractYear(let x):
            return try extract(.year, try vec(x))
        case .extract(let f, let x):
            return try extract(f, try vec(x))
        case .substring(let x, let start, let length):
            return substring(try vec(x).materialize(n), start, length)
        case .cast(let x, let t):
            return try cast(try vec(x), to: t)
        case .addMonths(let x, let months):
            let a = try vec(x)
            if case .constant(let v, _) = a {
                if case .date(let d) = v { return .constant(.date(SkeinData.addMonths(d, months)), .date) }
                return .constant(.null, .date)
            }
            let c = a.materialize(n)
            let out = c.withInts { d in d.map { Int64(SkeinData.addMonths(Int32(truncatingIfNeeded: $0), months)) } }
            return .column(Column(type: .date, storage: .ints(out), validity: c.slicedValidity))
        }
    }

    // MARK: logic

    func logical(_ op: BinaryOp, _ a: Vec, _ b: Vec) -> Vec {
        let ca = a.materialize(n), cb = b.materialize(n)
        let and = op == .and
        var valid: [Bool]? = nil
        let out: [Bool] = ca.withBools { x in
            cb.withBools { y in
                ca.withValidity { va in
                    cb.withValidity { vb in
                        if va == nil && vb == nil {
                            return [Bool](unsafeUninitializedCapacity: n) { o, k in
                                if and { for i in 0..<n { o[i] = x[i] && y[i] } } else { for i in 0..<n { o[i] = x[i] || y[i] } }
                                k = n
                            }
                        }
                        // Three-valued logic: false AND null is false, true OR null is true.
                        var v = [Bool](repeating: true, count: n)
                        let r = [Bool](unsafeUninitializedCapacity: n) { o, k in
                            for i in 0..<n {
                                let av = va?[i] ?? true, bv = vb?[i] ?? true
                                let xa = x[i], yb = y[i]
                                if and {
                                    if (av && !xa) || (bv && !yb) { o[i] = false } else if av && bv { o[i] = true } else { o[i] = false; v[i] = false }
                                } else {
                                    if (av && xa) || (bv && yb) { o[i] = true } else if av && bv { o[i] = false } else { o[i] = false; v[i] = false }
                                }
                            }
                            k = n
                        }
                        valid = v
                        return r
                    }
                }
            }
        }
        return .column(Column(type: .bool, storage: .bools(out), validity: valid))
    }

    // MARK: comparison

    func compare(_ op: BinaryOp, _ a: Vec, _ b: Vec) throws -> Vec {
        if case .constant(let x, _) = a, case .constant(let y, _) = b {
            if x.isNull || y.isNull { return .constant(.null, .bool) }
            let c = compareValues(x, y)
            return .constant(.bool(test(op, c)), .bool)
        }
        let valid = combinedValidity(a, b)
        if case .constant(.null, _) = a { return .constant(.null, .bool) }
        if case .constant(.null, _) = b { return .constant(.null, .bool) }
        let ta = a.type, tb = b.type
        let out: [Bool]
        if ta == .string || tb == .string {
            guard ta == tb else { throw DataError(.type, "cannot compare \(ta) with \(tb)") }
            out = compareStrings(op, a, b)
        } else if ta == .bool || tb == .bool {
            out = compareGeneric(op, numeric(a, as: .int64), numeric(b, as: .int64))
        } else {
            let common = unify(ta, tb)
            if common == .double || !fitsRescaled(a, common) || !fitsRescaled(b, common) {
                out = compareGeneric(op, doubles(a), doubles(b))
            } else {
                out = compareGeneric(op, numeric(a, as: common), numeric(b, as: common))
            }
        }
        return .column(Column(type: .bool, storage: .bools(out), validity: valid))
    }

    @inline(__always) func test(_ op: BinaryOp, _ c: Int) -> Bool {
        switch op {
        case .eq: c == 0
        case .ne: c != 0
        case .lt: c < 0
        case .le: c <= 0
        case .gt: c > 0
        default: c >= 0
        }
    }

    func compareGeneric<T: Comparable>(_ op: BinaryOp, _ a: Operand<T>, _ b: Operand<T>) -> [Bool] {
        switch op {
        case .eq: map2(a, b, n) { $0 == $1 }
        case .ne: map2(a, b, n) { $0 != $1 }
        case .lt: map2(a, b, n) { $0 < $1 }
        case .le: map2(a, b, n) { $0 <= $1 }
        case .gt: map2(a, b, n) { $0 > $1 }
        default: map2(a, b, n) { $0 >= $1 }
        }
    }

    func compareStrings(_ op: BinaryOp, _ a: Vec, _ b: Vec) -> [Bool] {
        let n = self.n
        func withBytes<R>(_ v: Vec, _ body: ((Int) -> (UnsafePointer<UInt8>, Int)) -> R) -> R {
            switch v {
            case .column(let c): return c.withStrings { r in body { r.pointer($0) } }
            case .constant(let value, _):
                guard case .string(let s) = value else { return body { _ in (UnsafePointer(bitPattern: 1)!, 0) } }
                var s2 = s
                return s2.withUTF8 { u in
                    let p = u.baseAddress ?? UnsafePointer(bitPattern: 1)!
                    let l = u.count
                    return body { _ in (p, l) }
                }
            }
        }
        return withBytes(a) { fa in
            withBytes(b) { fb in
                [Bool](unsafeUninitializedCapacity: n) { o, k in
                    if op == .eq || op == .ne {
                        let want = op == .eq
                        for i in 0..<n { let (p, l) = fa(i), (q, m) = fb(i); o[i] = bytesEqual(p, l, q, m) == want }
                    } else {
                        for i in 0..<n { let (p, l) = fa(i), (q, m) = fb(i); o[i] = test(op, bytesCompare(p, l, q, m)) }
                    }
                    k = n
                }
            }
        }
    }

    // MARK: arithmetic

    func arithmetic(_ op: BinaryOp, _ a: Vec, _ b: Vec) throws -> Vec {
        let ta = a.type, tb = b.type
        guard (ta.isNumeric || ta == .date), (tb.isNumeric || tb == .date) else {
            throw DataError(.type, "cannot apply \(op.rawValue) to \(ta) and \(tb)")
        }
        let rt = arithmeticType(op, ta, tb)
        if case .constant(let x, _) = a, case .constant(let y, _) = b {
            return .constant(foldArithmetic(op, x, ta, y, tb, rt), rt)
        }
        let valid = combinedValidity(a, b)
        if case .constant(.null, _) = a { return .constant(.null, rt) }
        if case .constant(.null, _) = b { return .constant(.null, rt) }
        if rt == .double {
            let x = doubles(a), y = doubles(b)
            let out: [Double]
            var v = valid
            switch op {
            case .add: out = map2(x, y, n) { $0 + $1 }
            case .sub: out = map2(x, y, n) { $0 - $1 }
            case .mul: out = map2(x, y, n) { $0 * $1 }
            case .div:
                out = map2(x, y, n) { $0 / $1 }
                // Division by zero is NULL, as in DuckDB and PostgreSQL's NULLIF idiom.
                let zeros = map2(y, y, n) { d, _ in d == 0 }
                if zeros.contains(true) {
                    var vv = v ?? [Bool](repeating: true, count: n)
                    for i in 0..<n where zeros[i] { vv[i] = false }
                    v = vv
                }
            default: out = map2(x, y, n) { $0.truncatingRemainder(dividingBy: $1) }
            }
            return .column(Column(type: .double, storage: .doubles(out), validity: v))
        }
        // Integer-backed: int, decimal, date.
        let x: Operand<Int64>, y: Operand<Int64>
        if op == .mul {
            x = numeric(a, as: ta == .date ? .int64 : (ta == .int64 ? .int64 : ta))
            y = numeric(b, as: tb == .date ? .int64 : (tb == .int64 ? .int64 : tb))
        } else if rt == .date || (ta == .date && tb == .date) {
            x = numeric(a, as: .int64)
            y = numeric(b, as: .int64)
        } else {
            x = numeric(a, as: rt)
            y = numeric(b, as: rt)
        }
        let out: [Int64]
        switch op {
        case .add: out = map2(x, y, n) { $0 &+ $1 }
        case .sub: out = map2(x, y, n) { $0 &- $1 }
        case .mul: out = map2(x, y, n) { $0 &* $1 }
        default: out = map2(x, y, n) { $1 == 0 ? 0 : $0 % $1 }
        }
        return .column(Column(type: rt, storage: .ints(out), validity: valid))
    }

    func foldArithmetic(_ op: BinaryOp, _ x: Value, _ ta: DataType, _ y: Value, _ tb: DataType, _ rt: DataType) -> Value {
        if x.isNull || y.isNull { return .null }
        if rt == .double {
            let a = x.doubleValue ?? Double(x.integerRepresentation(as: .int64) ?? 0)
            let b = y.doubleValue ?? Double(y.integerRepresentation(as: .int64) ?? 0)
            switch op {
            case .add: return .double(a + b)
            case .sub: return .double(a - b)
            case .mul: return .double(a * b)
            case .div: return b == 0 ? .null : .double(a / b)
            default: return .double(a.truncatingRemainder(dividingBy: b))
            }
        }
        let a: Int64, b: Int64
        if op == .mul || rt == .date || (ta == .date && tb == .date) {
            a = x.integerRepresentation(as: ta == .date ? .int64 : ta)!
            b = y.integerRepresentation(as: tb == .date ? .int64 : tb)!
        } else {
            a = x.integerRepresentation(as: rt)!
            b = y.integerRepresentation(as: rt)!
        }
        let r: Int64
        switch op {
        case .add: r = a &+ b
        case .sub: r = a &- b
        case .mul: r = a &* b
        default: r = b == 0 ? 0 : a % b
        }
        switch rt {
        case .date: return .date(Int32(truncatingIfNeeded: r))
        case .decimal(let s): return .decimal(r, scale: s)
        default: return .int(r)
        }
    }

    // MARK: operands

    /// An integer-backed operand in `type`'s representation (decimals rescaled to its scale).
    func numeric(_ v: Vec, as type: DataType) -> Operand<Int64> {
        switch v {
        case .constant(let value, _):
            return .scalar(value.integerRepresentation(as: type) ?? 0)
        case .column(let c):
            if c.type == .bool {
                return .owned(c.withBools { b in b.map { $0 ? 1 : 0 } })
            }
            if c.type == .double {
                let s = type.scale
                return .owned(c.withDoubles { d in d.map { Int64(($0 * pow10Double(s)).rounded()) } })
            }
            let shift = type.scale - c.type.scale
            if shift == 0 || !(c.type.isIntegerBacked) || type == .int64 && c.type == .date {
                return .column(c)
            }
            if shift > 0 {
                let m = pow10Int(shift)
                return .owned(c.withInts { a in a.map { $0 &* m } })
            }
            let m = pow10Int(-shift)
            return .owned(c.withInts { a in a.map { $0 / m } })
        }
    }

    /// Whether a decimal operand can be rescaled to `type` without overflowing 64 bits.
    func fitsRescaled(_ v: Vec, _ type: DataType) -> Bool {
        let shift = type.scale - v.type.scale
        guard shift > 0, v.type.isIntegerBacked else { return true }
        let limit = Int64.max / pow10Int(shift)
        switch v {
        case .constant(let value, _): return abs(value.integerRepresentation(as: v.type) ?? 0) < limit
        case .column(let c): return c.withInts { a in a.allSatisfy { $0 < limit && $0 > -limit } }
        }
    }

    func doubles(_ v: Vec) -> Operand<Double> {
        switch v {
        case .constant(let value, _):
            return .scalar(value.doubleValue ?? Double(value.integerRepresentation(as: .int64) ?? 0))
        case .column(let c):
            switch c.type {
            case .double: return .column(c)
            case .decimal(let s):
                let d = pow10Double(s)
                return .owned(c.withInts { a in a.map { Double($0) / d } })
            case .bool: return .owned(c.withBools { a in a.map { $0 ? 1 : 0 } })
            default: return .owned(c.withInts { a in a.map { Double($0) } })
            }
        }
    }

    func combinedValidity(_ a: Vec, _ b: Vec) -> [Bool]? {
        let va: [Bool]? = { if case .column(let c) = a { return c.slicedValidity }; return nil }()
        let vb: [Bool]? = { if case .column(let c) = b { return c.slicedValidity }; return nil }()
        switch (va, vb) {
        case (nil, nil): return nil
        case (let x?, nil): return x
        case (nil, let y?): return y
        case (let x?, let y?): return zip(x, y).map { $0 && $1 }
        }
    }

    // MARK: IN, CASE, EXTRACT, SUBSTRING, CAST, ||

    func inList(_ a: Vec, _ values: [Value], _ negated: Bool) throws -> Vec {
        let c = a.materialize(n)
        var out: [Bool]
        if c.type == .string {
            // All candidates in one buffer; a row compares lengths first, bytes only on a length match.
            let strings = values.compactMap { v -> [UInt8]? in if case .string(let s) = v { return Array(s.utf8) }; return nil }
            let flat = strings.flatMap { $0 }
            var starts: [Int] = []
            var acc = 0
            for w in strings { starts.append(acc); acc += w.count }
            let lengths = strings.map(\.count)
            out = c.withStrings { r in
                flat.withUnsafeBufferPointer { f in
                    [Bool](unsafeUninitializedCapacity: n) { o, k in
                        for i in 0..<n {
                            let (p, l) = r.pointer(i)
                            var hit = false
                            for w in 0..<lengths.count where lengths[w] == l {
                                if l == 0 || memcmp(p, f.baseAddress! + starts[w], l) == 0 { hit = true; break }
                            }
                            o[i] = hit
                        }
                        k = n
                    }
                }
            }
        } else if c.type == .double {
            let wanted = Set(values.compactMap(\.doubleValue))
            out = c.withDoubles { d in d.map { wanted.contains($0) } }
        } else if c.type == .bool {
            let wanted = Set(values.compactMap { v -> Bool? in if case .bool(let b) = v { return b }; return nil })
            out = c.withBools { d in d.map { wanted.contains($0) } }
        } else {
            let wanted = Set(values.compactMap { $0.integerRepresentation(as: c.type) })
            out = c.withInts { d in d.map { wanted.contains($0) } }
        }
        if negated { out = out.map { !$0 } }
        return .column(Column(type: .bool, storage: .bools(out), validity: c.slicedValidity))
    }

    func caseWhen(_ whens: [WhenClause], _ otherwise: Expr?, _ rt: DataType) throws -> Vec {
        var chosen = [Int](repeating: whens.count, count: n)  // which branch each row takes
        var open = (0..<n).map { _ in true }
        for (k, w) in whens.enumerated() {
            let c = try evaluate(w.condition)
            c.withBools { b in c.withValidity { v in
                for i in 0..<n where open[i] && b[i] && (v?[i] ?? true) { chosen[i] = k; open[i] = false }
            } }
        }
        let results = try (whens.map(\.result) + [otherwise ?? .literal(.null, rt)]).map { try cast(try vec($0), to: rt).materialize(n) }
        let b = ColumnBuilder(rt, capacity: n)
        for i in 0..<n { b.append(results[chosen[i]].value(at: i)) }
        return .column(b.finish())
    }

    func extract(_ f: Expr.DateField, _ a: Vec) throws -> Vec {
        guard a.type == .date else { throw DataError(.type, "EXTRACT needs a DATE, found \(a.type)") }
        let c = a.materialize(n)
        let out: [Int64] = c.withInts { d in
            d.map { x in
                let (y, m, day) = civilFromDays(Int32(truncatingIfNeeded: x))
                return Int64(f == .year ? y : f == .month ? m : day)
            }
        }
        return .column(Column(type: .int64, storage: .ints(out), validity: c.slicedValidity))
    }

    /// SUBSTRING by characters (1-based), as a view into the same heap: no bytes are copied.
    func substring(_ c: Column, _ start: Int, _ length: Int?) -> Vec {
        guard case .strings(let sa) = c.storage else { return .column(c) }
        var refs = [UInt64](repeating: 0, count: n)
        var lens = [UInt32](repeating: 0, count: n)
        c.withStrings { r in
            for i in 0..<n {
                let (p, l) = r.pointer(i)
                // Character positions → byte offsets (UTF-8 continuation bytes are 0b10xxxxxx).
                var from = max(start, 1) - 1
                var count = length.map { max(0, $0 - (max(start, 1) - start)) } ?? Int.max
                var b = 0
                while from > 0, b < l { b += 1; while b < l, p[b] & 0xC0 == 0x80 { b += 1 }; from -= 1 }
                var e = b
                while count > 0, e < l { e += 1; while e < l, p[e] & 0xC0 == 0x80 { e += 1 }; count -= 1 }
                let ref = sa.refs[c.offset + i]
                refs[i] = ref &+ UInt64(b)
                lens[i] = UInt32(e - b)
            }
        }
        return .column(Column(type: .string, storage: .strings(StringArray(refs: refs, lengths: lens, heaps: sa.heaps)), validity: c.slicedValidity))
    }

    func cast(_ a: Vec, to t: DataType) throws -> Vec {
        if a.type == t { return a }
        if case .constant(let v, _) = a {
            if v.isNull { return .constant(.null, t) }
            return .constant(try castValue(v, to: t), t)
        }
        let c = a.materialize(n)
        switch (c.type, t) {
        case (_, .double):
            guard c.type.isNumeric || c.type == .bool else { break }
            return .column(Column(type: .double, storage: .doubles(doubles(a).array(n)), validity: c.slicedValidity))
        case (.int64, .decimal), (.decimal, .decimal), (.decimal, .int64), (.double, .decimal), (.bool, .int64):
            return .column(Column(type: t, storage: .ints(numeric(a, as: t).array(n)), validity: c.slicedValidity))
        case (.double, .int64):
            return .column(Column(type: t, storage: .ints(c.withDoubles { $0.map { Int64($0.rounded()) } }), validity: c.slicedValidity))
        default: break
        }
        let b = ColumnBuilder(t, capacity: n)
        for i in 0..<n { b.append(try castValue(c.value(at: i), to: t)) }
        return .column(b.finish())
    }

    func concat(_ a: Vec, _ b: Vec) -> Vec {
        let ca = a.materialize(n), cb = b.materialize(n)
        let builder = ColumnBuilder(.string, capacity: n)
        for i in 0..<n {
            let x = ca.value(at: i), y = cb.value(at: i)
            if x.isNull || y.isNull { builder.appendNull() } else { builder.append(.string(x.description + y.description)) }
        }
        return .column(builder.finish())
    }
}

/// A value converted to another type (CAST), or a type error naming both.
func castValue(_ v: Value, to t: DataType) throws -> Value {
    if v.isNull { return .null }
    if v.type == t { return v }
    switch t {
    case .string: return .string(v.description)
    case .double:
        if let d = v.doubleValue { return .double(d) }
        if case .string(let s) = v, let d = Double(s.trimmingCharacters(in: .whitespaces)) { return .double(d) }
    case .int64:
        if case .string(let s) = v, let i = Int64(s.trimmingCharacters(in: .whitespaces)) { return .int(i) }
        if case .double(let d) = v { return .int(Int64(d.rounded())) }
        if let i = v.integerRepresentation(as: .int64) { return .int(i) }
    case .decimal(let s):
        if case .string(let str) = v {
            var u = Array(str.trimmingCharacters(in: .whitespaces).utf8)
            if let d = u.withUnsafeMutableBufferPointer({ parseDecimal($0.baseAddress!, $0.count, scale: s) }) { return .decimal(d, scale: s) }
        } else if let i = v.integerRepresentation(as: t) { return .decimal(i, scale: s) }
    case .date:
        if case .string(let s) = v, let d = parseDate(s.trimmingCharacters(in: .whitespaces)) { return .date(d) }
    case .bool:
        if case .string(let s) = v {
            if ["true", "t", "1"].contains(s.lowercased()) { return .bool(true) }
            if ["false", "f", "0"].contains(s.lowercased()) { return .bool(false) }
        }
        if case .int(let i) = v { return .bool(i != 0) }
    }
    throw DataError(.type, "cannot cast \(v) (\(v.type.map { "\($0)" } ?? "NULL")) to \(t)")
}

/// Orders two non-null values of comparable types.
func compareValues(_ x: Value, _ y: Value) -> Int {
    switch (x, y) {
    case (.string(let a), .string(let b)): return a == b ? 0 : (Array(a.utf8).lexicographicallyPrecedes(Array(b.utf8)) ? -1 : 1)
    case (.bool(let a), .bool(let b)): return a == b ? 0 : (!a ? -1 : 1)
    case (.date(let a), .date(let b)): return a == b ? 0 : (a < b ? -1 : 1)
    default:
        if case .double = x, let a = x.doubleValue, let b = y.doubleValue { return a == b ? 0 : (a < b ? -1 : 1) }
        if case .double = y, let a = x.doubleValue, let b = y.doubleValue { return a == b ? 0 : (a < b ? -1 : 1) }
        let s = max(x.type?.scale ?? 0, y.type?.scale ?? 0)
        let a = x.integerRepresentation(as: .decimal(scale: s)) ?? 0
        let b = y.integerRepresentation(as: .decimal(scale: s)) ?? 0
        return a == b ? 0 : (a < b ? -1 : 1)
    }
}

extension Column {
    /// The validity of this window as its own array (nil when all valid).
    var slicedValidity: [Bool]? {
        guard let v = validity else { return nil }
        if offset == 0 && count == v.count { return v }
        return Array(v[offset..<(offset + count)])
    }
}

/// One side of an element-wise kernel: a column's buffer, a computed array, or a scalar.
enum Operand<T> {
    case column(Column)
    case owned([T])
    case scalar(T)

    func withBuffer<R>(_ body: (UnsafeBufferPointer<T>?, T?) -> R) -> R {
        switch self {
        case .scalar(let s): return body(nil, s)
        case .owned(let a): return a.withUnsafeBufferPointer { body($0, nil) }
        case .column(let c):
            switch c.storage {
            case .ints: return c.withInts { p in p.withMemoryRebound(to: T.self) { body($0, nil) } }
            case .doubles: return c.withDoubles { p in p.withMemoryRebound(to: T.self) { body($0, nil) } }
            case .bools: return c.withBools { p in p.withMemoryRebound(to: T.self) { body($0, nil) } }
            case .strings: preconditionFailure("a string column used as a number")
            }
        }
    }

    func array(_ n: Int) -> [T] {
        withBuffer { b, s in b.map { Array($0) } ?? [T](repeating: s!, count: n) }
    }
}

/// Applies `f` element-wise; specialised per (vector, scalar) shape so the loop has no branches.
@inline(__always) func map2<T, R>(_ a: Operand<T>, _ b: Operand<T>, _ n: Int, _ f: (T, T) -> R) -> [R] {
    a.withBuffer { pa, sa in
        b.withBuffer { pb, sb in
            [R](unsafeUninitializedCapacity: n) { o, k in
                if let pa, let pb {
                    for i in 0..<n { o[i] = f(pa[i], pb[i]) }
                } else if let pa, let sb {
                    for i in 0..<n { o[i] = f(pa[i], sb) }
                } else if let sa, let pb {
                    for i in 0..<n { o[i] = f(sa, pb[i]) }
                } else {
                    let r = f(sa!, sb!)
                    for i in 0..<n { o[i] = r }
                }
                k = n
            }
        }
    }
}

/// SQL LIKE over bytes: '%' any run, '_' one character; without '_' it is a chain of substring
/// searches anchored at the ends the pattern anchors.
struct LikeMatcher {
    let segments: [[UInt8]]
    let anchoredStart: Bool
    let anchoredEnd: Bool
    let general: [UInt8]?

    init(_ pattern: String) {
        let bytes = Array(pattern.utf8)
        if bytes.contains(UInt8(ascii: "_")) {
            general = bytes
            segments = []; anchoredStart = false; anchoredEnd = false
            return
        }
        general = nil
        anchoredStart = bytes.first != UInt8(ascii: "%")
        anchoredEnd = bytes.last != UInt8(ascii: "%")
        segments = bytes.split(separator: UInt8(ascii: "%"), omittingEmptySubsequences: true).map(Array.init)
    }

    @inline(__always) func matches(_ p: UnsafePointer<UInt8>, _ n: Int) -> Bool {
        if let g = general { return g.withUnsafeBufferPointer { matchGeneral($0, 0, p, n, 0) } }
        if segments.isEmpty { return !(anchoredStart && anchoredEnd) || n == 0 }
        var pos = 0
        var end = n
        var segs = segments[...]
        if anchoredStart {
            let s = segs.first!
            guard s.count <= n, memcmp(p, s, s.count) == 0 else { return false }
            pos = s.count
            segs = segs.dropFirst()
            if segs.isEmpty && anchoredEnd { return pos == n }
        }
        if anchoredEnd, let s = segs.last {
            guard s.count <= end - pos, memcmp(p + end - s.count, s, s.count) == 0 else { return false }
            end -= s.count
            segs = segs.dropLast()
        }
        for s in segs {
            guard let hit = s.withUnsafeBufferPointer({ find($0, in: p + pos, end - pos) }) else { return false }
            pos += hit + s.count
        }
        return pos <= end
    }

    /// The offset of the first occurrence of `needle` in the haystack.
    @inline(__always) private func find(_ needle: UnsafeBufferPointer<UInt8>, in h: UnsafePointer<UInt8>, _ n: Int) -> Int? {
        let m = needle.count
        guard m > 0 else { return 0 }
        guard m <= n else { return nil }
        let first = Int32(needle[0])
        var i = 0
        let last = n - m
        while i <= last {
            guard let hit = memchr(h + i, first, last - i + 1) else { return nil }
            let k = UnsafePointer<UInt8>(hit.assumingMemoryBound(to: UInt8.self)) - h
            if m == 1 || memcmp(h + k + 1, needle.baseAddress! + 1, m - 1) == 0 { return k }
            i = k + 1
        }
        return nil
    }

    private func matchGeneral(_ pat: UnsafeBufferPointer<UInt8>, _ pi0: Int, _ s: UnsafePointer<UInt8>, _ n: Int, _ si0: Int) -> Bool {
        var pi = pi0, si = si0
        while pi < pat.count {
            let c = pat[pi]
            if c == UInt8(ascii: "%") {
                while pi < pat.count, pat[pi] == UInt8(ascii: "%") { pi += 1 }
                if pi == pat.count { return true }
                var k = si
                while k <= n {
                    if matchGeneral(pat, pi, s, n, k) { return true }
                    k += 1
                    while k < n, s[k] & 0xC0 == 0x80 { k += 1 }
                }
                return false
            }
            guard si < n else { return false }
            if c == UInt8(ascii: "_") {
                si += 1
                while si < n, s[si] & 0xC0 == 0x80 { si += 1 }
            } else {
                guard s[si] == c else { return false }
                si += 1
            }
            pi += 1
        }
        return si == n
    }
}
