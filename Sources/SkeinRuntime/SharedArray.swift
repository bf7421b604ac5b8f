import Foundation
import SkeinCore

/// A read-only array of numbers that a task reads where its bytes lie: in the putting rank's shared
/// arena when it comes from another process of the host (as Ray hands out numpy arrays over its
/// plasma store), in the caller's own array embedded. Getting one costs no copy; `Array(_:)` makes one.
public struct SharedArray<Element: PlainNumber>: RandomAccessCollection, @unchecked Sendable {
    // @unchecked: `elements` points into `chunk`'s storage, which keeps it alive and never writes it.
    private let chunk: Chunk
    private let elements: UnsafeBufferPointer<Element>

    /// Shares `array`'s own storage: no copy.
    public init(_ array: [Element]) {
        self.init(adopting: Chunk(storage: ArrayStorage(array), offset: 0, byteCount: array.count * MemoryLayout<Element>.stride, isWritable: false))!
    }

    /// Reads `chunk` in place when its bytes are aligned for `Element` (nil otherwise). Every
    /// `ByteStorage` keeps its bytes at one address while it lives (an allocation of its own,
    /// borrowed fixed memory, or an immutable array's buffer), so the address may be kept.
    init?(adopting chunk: Chunk) {
        guard chunk.storage != nil, chunk.byteCount % MemoryLayout<Element>.stride == 0 else { return nil }
        let base = chunk.withUnsafeBytes { $0.baseAddress }
        guard base.map({ Int(bitPattern: $0) % MemoryLayout<Element>.alignment == 0 }) ?? true else { return nil }
        self.chunk = chunk
        elements = UnsafeBufferPointer(start: base?.assumingMemoryBound(to: Element.self), count: chunk.byteCount / MemoryLayout<Element>.stride)
    }

    public var startIndex: Int { 0 }
    public var endIndex: Int { elements.count }
    public subscript(position: Int) -> Element { elements[position] }

    /// Calls `body` with the elements in contiguous memory, for loops that want no bounds checks.
    public func withUnsafeBufferPointer<R>(_ body: (UnsafeBufferPointer<Element>) throws -> R) rethrows -> R {
        try withExtendedLifetime(chunk) { try body(elements) }
    }

    public func withContiguousStorageIfAvailable<R>(_ body: (UnsafeBufferPointer<Element>) throws -> R) rethrows -> R? {
        try withUnsafeBufferPointer(body)
    }
}

extension SharedArray: Equatable where Element: Equatable {
    public static func == (lhs: SharedArray, rhs: SharedArray) -> Bool { lhs.elementsEqual(rhs) }
}

extension SharedArray: CustomStringConvertible {
    public var description: String { "SharedArray(\(Array(self)))" }
}

extension SharedArray: RawWire {
    public func rawChunk() -> Chunk { chunk }

    public static var readsInPlace: Bool { true }

    public static func fromRaw(chunk: Chunk) throws -> SharedArray {
        if let adopted = SharedArray(adopting: chunk) { return adopted }
        return try chunk.withUnsafeBytes { try fromRaw($0) }
    }

    public static func fromRaw(_ bytes: UnsafeRawBufferPointer) throws -> SharedArray {
        try fromRaw(byteCount: bytes.count) { $0.copyMemory(from: bytes) }
    }

    public static func fromRaw(byteCount: Int, fill: (UnsafeMutableRawBufferPointer) throws -> Void) throws -> SharedArray {
        guard byteCount % MemoryLayout<Element>.stride == 0 else {
            throw RuntimeError(.wrongArgumentType, "\(byteCount) bytes are not a whole number of \(Element.self)")
        }
        let storage = AllocatedStorage(uninitializedByteCount: byteCount)
        try fill(UnsafeMutableRawBufferPointer(start: storage.base, count: byteCount))
        return SharedArray(adopting: Chunk(storage: storage, offset: 0, byteCount: byteCount, isWritable: false))!
    }
}

extension SharedArray: ByteSized {
    public var byteCount: Int { elements.count * MemoryLayout<Element>.stride }
}

extension SharedArray: Spillable {
    public func spill(to url: URL) throws {
        try withUnsafeBufferPointer { try Data(buffer: $0).write(to: url) }
    }

    public static func restore(from url: URL) throws -> SharedArray {
        let data = try Data(contentsOf: url)
        return try data.withUnsafeBytes { try fromRaw($0) }
    }
}
