/// A reference to an object in a runtime's store: the result of a task, an actor call or a `put`.
/// Refs are counted: when the last `ObjectRef` to an object goes (and no pending task or lineage
/// needs it), the object is freed and its bytes leave the store's accounting.
public final class ObjectRef<T: Sendable>: Sendable, Hashable, CustomStringConvertible {
    public let id: UInt64
    let core: RuntimeCore

    init(id: UInt64, core: RuntimeCore, retained: Bool = false) {
        self.id = id
        self.core = core
        if !retained { core.retain(id) }
    }

    deinit { core.release(id) }

    public static func == (a: ObjectRef, b: ObjectRef) -> Bool { a.id == b.id && a.core === b.core }
    public func hash(into hasher: inout Hasher) { hasher.combine(id) }
    public var description: String { "ObjectRef<\(T.self)>(#\(id))" }

    /// The same object, as an untyped ref (for `wait` over refs of different types).
    public var untyped: AnyObjectRef { AnyObjectRef(id: id, core: core) }
}

/// A ref whose value type is not known statically: what `wait` takes and `submit(named:)` accepts.
public final class AnyObjectRef: Sendable, Hashable, CustomStringConvertible {
    public let id: UInt64
    let core: RuntimeCore

    init(id: UInt64, core: RuntimeCore, retained: Bool = false) {
        self.id = id
        self.core = core
        if !retained { core.retain(id) }
    }

    deinit { core.release(id) }

    public static func == (a: AnyObjectRef, b: AnyObjectRef) -> Bool { a.id == b.id && a.core === b.core }
    public func hash(into hasher: inout Hasher) { hasher.combine(id) }
    public var description: String { "ObjectRef(#\(id))" }
}

/// One argument of a task: a plain value, or a ref whose object the task receives once it is ready.
public enum Arg<T: Sendable>: Sendable {
    case value(T)
    case ref(ObjectRef<T>)
}

extension Arg: ExpressibleByIntegerLiteral where T == Int {
    public init(integerLiteral value: Int) { self = .value(value) }
}

extension Arg: ExpressibleByFloatLiteral where T == Double {
    public init(floatLiteral value: Double) { self = .value(value) }
}

extension Arg: ExpressibleByUnicodeScalarLiteral where T == String {
    public init(unicodeScalarLiteral value: String) { self = .value(value) }
}

extension Arg: ExpressibleByExtendedGraphemeClusterLiteral where T == String {
    public init(extendedGraphemeClusterLiteral value: String) { self = .value(value) }
}

extension Arg: ExpressibleByStringLiteral where T == String {
    public init(stringLiteral value: String) { self = .value(value) }
}

/// Values that know their size in bytes, for the store's memory accounting (arrays of plain numbers
/// count their elements; anything else counts its inline size).
public protocol ByteSized {
    var byteCount: Int { get }
}

/// Plain numbers: arrays of them are counted, spilled and moved as raw bytes.
public protocol PlainNumber: BitwiseCopyable, Sendable {}
extension Int: PlainNumber {}
extension Int8: PlainNumber {}
extension Int16: PlainNumber {}
extension Int32: PlainNumber {}
extension Int64: PlainNumber {}
extension UInt: PlainNumber {}
extension UInt8: PlainNumber {}
extension UInt16: PlainNumber {}
extension UInt32: PlainNumber {}
extension UInt64: PlainNumber {}
extension Float: PlainNumber {}
extension Double: PlainNumber {}
extension Bool: PlainNumber {}
#if !((os(macOS) || targetEnvironment(macCatalyst)) && arch(x86_64))
extension Float16: PlainNumber {}
#endif

extension Array: ByteSized where Element: PlainNumber {
    public var byteCount: Int { count * MemoryLayout<Element>.stride }
}

func byteCount(of value: any Sendable) -> Int {
    if let sized = value as? any ByteSized { return sized.byteCount }
    return inlineSize(value)
}

private func inlineSize<V>(_: V) -> Int { max(MemoryLayout<V>.size, 1) }
