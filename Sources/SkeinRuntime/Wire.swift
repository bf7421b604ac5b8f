import Foundation
import SkeinCore

/// A value on its way between processes: arrays of numbers (and numbers, strings) as raw bytes,
/// other `Codable` values in a compact binary property list.
struct WirePayload: Sendable {
    enum Kind: UInt8 { case raw = 1, encoded = 2 }
    var kind: Kind
    /// The bytes; a phantom chunk (their size only) when they lie `elsewhere`.
    var chunk: Chunk
    /// Where the bytes lie in another process of this host, when they were not copied here:
    /// `Wire.decode` copies them straight into the value it makes.
    var elsewhere: ProcessMemory?

    init(kind: Kind, chunk: Chunk) {
        (self.kind, self.chunk, elsewhere) = (kind, chunk, nil)
    }

    init(kind: Kind, elsewhere: ProcessMemory) {
        (self.kind, chunk, self.elsewhere) = (kind, Chunk.phantom(byteCount: elsewhere.count), elsewhere)
    }
}

/// Values that travel as their raw bytes, with no per-element encoding.
public protocol RawWire: Sendable {
    func rawChunk() -> Chunk
    static func fromRaw(_ bytes: UnsafeRawBufferPointer) throws -> Self
    /// A value of `byteCount` raw bytes that `fill` writes into memory the value will own (so an
    /// array arriving from another process is copied once, straight into its own storage).
    static func fromRaw(byteCount: Int, fill: (UnsafeMutableRawBufferPointer) throws -> Void) throws -> Self
    /// A value of the bytes in `chunk` (which may lie in another process's shared memory): a copy
    /// of them, unless the type reads them in place.
    static func fromRaw(chunk: Chunk) throws -> Self
    /// True when values read their bytes where they lie (`SharedArray`): then an argument from
    /// another process of the host is put in the shared arena, to be read there with no copy.
    static var readsInPlace: Bool { get }
}

extension RawWire {
    public static func fromRaw(byteCount: Int, fill: (UnsafeMutableRawBufferPointer) throws -> Void) throws -> Self {
        let bytes = UnsafeMutableRawBufferPointer.allocate(byteCount: byteCount, alignment: 16)
        defer { bytes.deallocate() }
        try fill(bytes)
        return try fromRaw(UnsafeRawBufferPointer(bytes))
    }

    public static func fromRaw(chunk: Chunk) throws -> Self { try chunk.withUnsafeBytes { try fromRaw($0) } }

    public static var readsInPlace: Bool { false }
}

extension PlainNumber {
    public func rawChunk() -> Chunk {
        let storage = AllocatedStorage(uninitializedByteCount: MemoryLayout<Self>.stride)
        storage.base.storeBytes(of: self, as: Self.self)
        return Chunk(storage: storage, offset: 0, byteCount: MemoryLayout<Self>.stride, isWritable: false)
    }

    public static func fromRaw(_ bytes: UnsafeRawBufferPointer) throws -> Self {
        guard bytes.count == MemoryLayout<Self>.stride else {
            throw RuntimeError(.wrongArgumentType, "\(bytes.count) bytes cannot be a \(Self.self)")
        }
        return bytes.loadUnaligned(as: Self.self)
    }
}

extension Int: RawWire {}
extension Int32: RawWire {}
extension Int64: RawWire {}
extension UInt8: RawWire {}
extension UInt64: RawWire {}
extension Float: RawWire {}
extension Double: RawWire {}
extension Bool: RawWire {}

extension Array: RawWire where Element: PlainNumber {
    public func rawChunk() -> Chunk {
        Chunk.partition(self, into: 1)[0]  // a large array is sent from its own memory
    }

    public static func fromRaw(_ bytes: UnsafeRawBufferPointer) throws -> [Element] {
        try fromRaw(byteCount: bytes.count) { parallelCopy(to: $0, from: bytes) }
    }

    public static func fromRaw(byteCount: Int, fill: (UnsafeMutableRawBufferPointer) throws -> Void) throws -> [Element] {
        let stride = MemoryLayout<Element>.stride
        guard byteCount % stride == 0 else {
            throw RuntimeError(.wrongArgumentType, "\(byteCount) bytes are not a whole number of \(Element.self)")
        }
        return try [Element](unsafeUninitializedCapacity: byteCount / stride) { buffer, initialized in
            if byteCount >= 4 << 20 { adviseHugePages(UnsafeMutableRawBufferPointer(buffer)) }
            try fill(UnsafeMutableRawBufferPointer(buffer))
            initialized = byteCount / stride
        }
    }
}

/// A fresh large allocation is mapped anew and faults a 4 KiB page at a time on first touch: three
/// quarters of the time of filling 100 MiB here. Asking for 2 MiB pages first cut it from ~50 ms to ~15.
func adviseHugePages(_ buffer: UnsafeMutableRawBufferPointer) {
    #if os(Linux)
    guard let base = buffer.baseAddress else { return }
    let huge: UInt = 2 << 20
    let start = (UInt(bitPattern: base) + huge - 1) & ~(huge - 1)
    let end = (UInt(bitPattern: base) + UInt(buffer.count)) & ~(huge - 1)
    if end > start { _ = madvise(UnsafeMutableRawPointer(bitPattern: start), Int(end - start), 14) }  // MADV_HUGEPAGE
    #endif
}

extension String: RawWire {
    public func rawChunk() -> Chunk { Chunk.partition(Array(utf8), into: 1)[0] }
    public static func fromRaw(_ bytes: UnsafeRawBufferPointer) throws -> String { String(decoding: bytes, as: UTF8.self) }
}

extension [UInt8] {
    /// Appends `value`'s little-endian bytes (the byte order of every header that crosses processes).
    mutating func appendLittleEndian<I: FixedWidthInteger>(_ value: I) {
        Swift.withUnsafeBytes(of: value.littleEndian) { append(contentsOf: $0) }
    }

    /// The little-endian integer at byte `offset`.
    func loadLittleEndian<I: FixedWidthInteger>(_: I.Type, at offset: Int) -> I {
        I(littleEndian: withUnsafeBytes { $0.loadUnaligned(fromByteOffset: offset, as: I.self) })
    }
}

enum Wire {
    static func encode(_ value: any Sendable) throws(RuntimeError) -> WirePayload {
        if let raw = value as? any RawWire { return WirePayload(kind: .raw, chunk: raw.rawChunk()) }
        if let codable = value as? any Encodable {
            let encoder = PropertyListEncoder()
            encoder.outputFormat = .binary
            do {
                let data = try encoder.encode(EncodableBox(codable))
                return WirePayload(kind: .encoded, chunk: Chunk.partition([UInt8](data), into: 1)[0])
            } catch {
                throw RuntimeError(.wrongArgumentType, "a \(type(of: value)) could not be encoded to travel between processes: \(error)")
            }
        }
        throw RuntimeError(
            .wrongArgumentType, "a \(type(of: value)) cannot travel between processes: make it Codable (or an array of numbers)")
    }

    static func decode<T>(_: T.Type, _ payload: WirePayload) throws(RuntimeError) -> T {
        do {
            switch payload.kind {
            case .raw:
                guard let raw = T.self as? any RawWire.Type else {
                    throw RuntimeError(.wrongArgumentType, "raw bytes arrived where a \(T.self) was expected")
                }
                // Bytes in another process are read straight into the value's own storage.
                if let elsewhere = payload.elsewhere { return try raw.fromRaw(byteCount: elsewhere.count) { try elsewhere.read(into: $0) } as! T }
                return try raw.fromRaw(chunk: payload.chunk) as! T
            case .encoded:
                guard let decodable = T.self as? any Decodable.Type else {
                    throw RuntimeError(.wrongArgumentType, "an encoded value arrived where a \(T.self), which is not Decodable, was expected")
                }
                var data = payload.elsewhere.map { Data(count: $0.count) } ?? payload.chunk.withUnsafeBytes { Data($0) }
                if let elsewhere = payload.elsewhere { try data.withUnsafeMutableBytes { try elsewhere.read(into: $0) } }
                return try decodeBox(decodable, data) as! T
            }
        } catch let error as RuntimeError {
            throw error
        } catch {
            throw RuntimeError(.wrongArgumentType, "a \(T.self) could not be decoded: \(error)")
        }
    }

    private static func decodeBox<D: Decodable>(_: D.Type, _ data: Data) throws -> D {
        try PropertyListDecoder().decode(DecodableBox<D>.self, from: data).value
    }
}

/// Property lists need a container at the top; these wrap a single value.
private struct EncodableBox: Encodable {
    let value: any Encodable
    init(_ value: any Encodable) { self.value = value }
    func encode(to encoder: any Encoder) throws {
        var container = encoder.unkeyedContainer()
        try container.encode(value)
    }
}

private struct DecodableBox<D: Decodable>: Decodable {
    let value: D
    init(from decoder: any Decoder) throws {
        var container = try decoder.unkeyedContainer()
        value = try container.decode(D.self)
    }
}
