import Foundation

/// Writes a table as CSV with a header; strings are quoted when they hold the delimiter, a
/// quote, a line end, or nothing at all (so that an empty string reads back apart from NULL).
public enum CSVWriter {
    public static func write(_ t: Table, to path: String, delimiter: Character = ",") throws {
        guard FileManager.default.createFile(atPath: path, contents: nil), let h = FileHandle(forWritingAtPath: path) else {
            throw DataError(.io, "cannot create '\(path)'")
        }
        defer { try? h.close() }
        let d = String(delimiter)
        var buffer = t.names.map { quoteIfNeeded($0, d) }.joined(separator: d) + "\n"
        for i in 0..<t.rowCount {
            buffer += t.columns.map { c -> String in
                let v = c.value(at: i)
                if case .string(let s) = v { return quoteIfNeeded(s, d) }
                return v.isNull ? "" : v.description
            }.joined(separator: d)
            buffer += "\n"
            if buffer.utf8.count > 1 << 20 { try h.write(contentsOf: Data(buffer.utf8)); buffer = "" }
        }
        try h.write(contentsOf: Data(buffer.utf8))
    }

    static func quoteIfNeeded(_ s: String, _ d: String) -> String {
        if s.isEmpty || s.contains(d) || s.contains("\"") || s.contains("\n") || s.contains("\r") {
            return "\"" + s.replacingOccurrences(of: "\"", with: "\"\"") + "\""
        }
        return s
    }
}

/// Skein's own columnar file: a header with the schema, then each column's buffer as it lies in
/// memory, so loading is a few large copies instead of parsing text.
public enum ColumnarFile {
    static let magic = Array("SKEINCOL".utf8)

    public static func write(_ t: Table, to path: String) throws {
        let h = try handle(path)
        defer { try? h.close() }
        try h.write(contentsOf: encode(t))
    }

    /// The table in Skein's columnar format, as bytes (a file's contents, or a message).
    public static func encode(_ t: Table) -> Data {
        let encoding = Encoding(t)
        var out = Data(count: encoding.size)
        out.withUnsafeMutableBytes { encoding.write(into: $0.baseAddress!) }
        return out
    }

    /// A table's encoding, sized before it is written: a caller can place it in a buffer of its
    /// own (a shuffle writes every part straight into the send buffer).
    struct Encoding {
        let table: Table
        /// Bytes `write(into:)` writes.
        let size: Int
        private let stringBytes: [Int]

        init(_ t: Table) {
            table = t
            var size = ColumnarFile.magic.count + 16
            for f in t.fields { size += 4 + f.name.utf8.count + 2 }
            var stringBytes: [Int] = []
            for c in t.columns {
                size += 1 + (c.validity == nil ? 0 : c.count)
                switch c.storage {
                case .ints, .doubles: size += 8 * c.count
                case .bools: size += c.count
                case .strings:
                    let total = c.withStrings { r in (0..<c.count).reduce(0) { $0 + r.pointer($1).1 } }
                    stringBytes.append(total)
                    size += 4 * c.count + 8 + total
                }
            }
            self.size = size
            self.stringBytes = stringBytes
        }

        /// Writes exactly `size` bytes at `start`.
        func write(into start: UnsafeMutableRawPointer) {
            let t = table
            var at = start
            func put(_ bytes: UnsafeRawBufferPointer) {
                if let base = bytes.baseAddress, bytes.count > 0 { at.copyMemory(from: base, byteCount: bytes.count) }
                at += bytes.count
            }
            func put<T: FixedWidthInteger>(_ v: T) { withUnsafeBytes(of: v.littleEndian) { put($0) } }
            ColumnarFile.magic.withUnsafeBytes { put($0) }
            put(UInt32(1))
            put(UInt32(t.columns.count))
            put(UInt64(t.rowCount))
            for f in t.fields {
                let name = Array(f.name.utf8)
                put(UInt32(name.count))
                name.withUnsafeBytes { put($0) }
                let tag: UInt8
                switch f.type {
                case .int64: tag = 0
                case .double: tag = 1
                case .decimal: tag = 2
                case .bool: tag = 3
                case .date: tag = 4
                case .string: tag = 5
                }
                put(tag)
                put(UInt8(f.type.scale))
            }
            var strings = 0
            for c in t.columns {
                put(UInt8(c.validity == nil ? 0 : 1))
                c.withValidity { v in if let v { put(UnsafeRawBufferPointer(v)) } }
                switch c.storage {
                case .ints: c.withInts { put(UnsafeRawBufferPointer($0)) }
                case .doubles: c.withDoubles { put(UnsafeRawBufferPointer($0)) }
                case .bools: c.withBools { put(UnsafeRawBufferPointer($0)) }
                case .strings:
                    c.withStrings { r in
                        for i in 0..<c.count { put(UInt32(r.pointer(i).1)) }
                        put(UInt64(stringBytes[strings]))
                        for i in 0..<c.count {
                            let (p, l) = r.pointer(i)
                            at.copyMemory(from: p, byteCount: l)
                            at += l
                        }
                    }
                    strings += 1
                }
            }
            precondition(at == start + size, "ColumnarFile.Encoding: \(at - start) bytes written, \(size) expected")
        }
    }

    static func handle(_ path: String) throws -> FileHandle {
        guard FileManager.default.createFile(atPath: path, contents: nil), let h = FileHandle(forWritingAtPath: path) else {
            throw DataError(.io, "cannot create '\(path)'")
        }
        return h
    }

    public static func read(path: String) throws -> Table {
        let file = try MappedFile(path: path)
        return try file.withBytes { try decode($0, name: path) }
    }

    /// A table from `encode`'s bytes; `name` says where they came from in errors.
    public static func decode(_ b: UnsafeRawBufferPointer, name path: String = "<bytes>") throws -> Table {
        do {
            var p = 0
            func need(_ n: Int) throws {
                if p + n > b.count { throw DataError(.io, "'\(path)' is truncated at byte \(p) (wanted \(n) more); rewrite it") }
            }
            func get<T: FixedWidthInteger>(_: T.Type) throws -> T {
                try need(MemoryLayout<T>.size)
                defer { p += MemoryLayout<T>.size }
                return T(littleEndian: b.loadUnaligned(fromByteOffset: p, as: T.self))
            }
            try need(8)
            guard Array(b[0..<8]) == magic else { throw DataError(.io, "'\(path)' is not a Skein columnar file (bad magic)") }
            p = 8
            guard try get(UInt32.self) == 1 else { throw DataError(.io, "'\(path)' has an unknown version") }
            let ncols = Int(try get(UInt32.self))
            let rows = Int(try get(UInt64.self))
            var fields: [Field] = []
            for _ in 0..<ncols {
                let n = Int(try get(UInt32.self))
                try need(n)
                let name = String(decoding: b[p..<(p + n)], as: UTF8.self)
                p += n
                let tag = try get(UInt8.self)
                let scale = Int(try get(UInt8.self))
                let types: [DataType] = [.int64, .double, .decimal(scale: scale), .bool, .date, .string]
                guard Int(tag) < types.count else { throw DataError(.io, "'\(path)': unknown column type \(tag)") }
                fields.append(Field(name, types[Int(tag)]))
            }
            func array<T>(_: T.Type, _ count: Int) throws -> [T] {
                let bytes = count * MemoryLayout<T>.stride
                try need(bytes)
                defer { p += bytes }
                return [T](unsafeUninitializedCapacity: count) { out, c in
                    if bytes > 0 { memcpy(out.baseAddress!, b.baseAddress! + p, bytes) }
                    c = count
                }
            }
            var columns: [Column] = []
            for f in fields {
                let hasValidity = try get(UInt8.self) == 1
                let validity: [Bool]? = hasValidity ? try array(Bool.self, rows) : nil
                switch f.type {
                case .double: columns.append(Column(type: f.type, storage: .doubles(try array(Double.self, rows)), validity: validity))
                case .bool: columns.append(Column(type: f.type, storage: .bools(try array(Bool.self, rows)), validity: validity))
                case .string:
                    let lengths = try array(UInt32.self, rows)
                    let total = Int(try get(UInt64.self))
                    try need(total)
                    let heap = StringHeap(copying: UnsafeRawBufferPointer(rebasing: b[p..<(p + total)]))
                    p += total
                    var refs = [UInt64](repeating: 0, count: rows)
                    var off: UInt64 = 0
                    for i in 0..<rows { refs[i] = off; off += UInt64(lengths[i]) }
                    columns.append(Column(type: .string, storage: .strings(StringArray(refs: refs, lengths: lengths, heaps: [heap])), validity: validity))
                default: columns.append(Column(type: f.type, storage: .ints(try array(Int64.self, rows)), validity: validity))
                }
            }
            return Table(fields: fields, columns: columns)
        }
    }
}
