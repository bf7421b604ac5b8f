import Foundation

/// Values the store can move to disk when it is over its memory limit: arrays of plain numbers, as
/// raw bytes (no per-element encoding). Other values stay in memory.
public protocol Spillable: Sendable {
    /// Writes the value's bytes to `url`.
    func spill(to url: URL) throws
    /// Reads a value written by `spill(to:)`.
    static func restore(from url: URL) throws -> Self
}

extension Array: Spillable where Element: PlainNumber {
    public func spill(to url: URL) throws {
        let data = withUnsafeBytes { Data($0) }
        try data.write(to: url)
    }

    public static func restore(from url: URL) throws -> [Element] {
        let data = try Data(contentsOf: url)
        let count = data.count / MemoryLayout<Element>.stride
        return [Element](unsafeUninitializedCapacity: count) { buffer, initialized in
            data.withUnsafeBytes { bytes in
                if count > 0 { UnsafeMutableRawBufferPointer(buffer).copyMemory(from: UnsafeRawBufferPointer(rebasing: bytes[0..<(count * MemoryLayout<Element>.stride)])) }
            }
            initialized = count
        }
    }
}

/// Where a spilled object lies and how to read it back.
struct SpilledObject: Sendable {
    let url: URL
    let restore: @Sendable (URL) throws -> any Sendable
}

func spill(_ value: any Sendable, to url: URL) throws -> SpilledObject? {
    guard let spillable = value as? any Spillable else { return nil }
    return try spillOpened(spillable, to: url)
}

private func spillOpened<V: Spillable>(_ value: V, to url: URL) throws -> SpilledObject {
    try value.spill(to: url)
    return SpilledObject(url: url) { url in try V.restore(from: url) }
}
