import Foundation
import Synchronization
import SkeinCore

/// The runtime across the ranks of a transport (MPI processes): rank 0 drives (it keeps the task
/// graph and the store and runs tasks too), the other ranks serve tasks sent to them. Functions are
/// registered by name on every rank, as in SPMD; arguments and results travel as raw bytes (arrays of
/// numbers) or a compact binary encoding (other Codable values). Actor calls, and tasks whose
/// arguments cannot travel, run on rank 0.
final class Cluster: Sendable {
    let transport: any Transport
    let workersPerRank: Int
    private let calls = Atomic<UInt64>(0)

    static let requestTag = Tag(context: 0x5EED_0001, sequence: 0)
    static let replyContext: UInt32 = 0x5EED_0002

    init(transport: any Transport, workersPerRank: Int) {
        self.transport = transport
        self.workersPerRank = workersPerRank
    }

    /// The rank whose worker slot `lane` is.
    func rank(ofLane lane: Int) -> Int { lane / workersPerRank }

    private static let signature = CallSignature(
        operation: .pointToPoint, algorithm: 0, dataType: .float32, reduceOp: .sum, root: 0, count: 0, sequence: 0)

    /// Runs function `name` on `rank` with `arguments`; returns its encoded result.
    func invoke(_ name: String, _ arguments: [WirePayload], on rank: Int) async throws -> WirePayload {
        let call = calls.wrappingAdd(1, ordering: .relaxed).newValue
        var header = [UInt8]()
        append(&header, call)
        header.append(0)  // a request
        append(&header, UInt32(name.utf8.count))
        header += Array(name.utf8)
        append(&header, UInt32(arguments.count))
        header += arguments.map(\.kind.rawValue)
        let chunks = [Chunk.partition(header, into: 1)[0]] + arguments.map(\.chunk)
        try transport.send(Message(signature: Self.signature, skew: ArrivalSkew(rank: transport.rank, entry: 0), chunks: chunks), to: rank, tag: Self.requestTag)
        let reply = try await transport.receive(from: rank, tag: Tag(context: Self.replyContext, sequence: call), deadline: .max)
        let head: [UInt8] = reply.chunks[0].withUnsafeBytes { Array($0) }
        guard head.first == 0, reply.chunks.count == 2, let kind = WirePayload.Kind(rawValue: head[1]) else {
            let text = String(decoding: head.dropFirst(2), as: UTF8.self)
            throw RemoteTaskError(rank: rank, description: text)
        }
        return WirePayload(kind: kind, chunk: reply.chunks[1])
    }

    /// Tells every other rank to stop serving.
    func stopWorkers() {
        var header = [UInt8]()
        append(&header, UInt64(0))
        header.append(1)  // stop
        for rank in 0..<transport.size where rank != transport.rank {
            try? transport.send(
                Message(signature: Self.signature, skew: ArrivalSkew(rank: transport.rank, entry: 0), chunks: [Chunk.partition(header, into: 1)[0]]),
                to: rank, tag: Self.requestTag)
        }
    }

    /// Serves requests from rank 0 until it says stop.
    func serve(_ lookup: @escaping @Sendable (String) -> Runtime.ErasedFunction?) async throws {
        while true {
            let request = try await transport.receive(from: 0, tag: Self.requestTag, deadline: .max)
            let head: [UInt8] = request.chunks[0].withUnsafeBytes { Array($0) }
            let call = head.withUnsafeBytes { $0.loadUnaligned(as: UInt64.self) }
            if head[8] == 1 { return }
            let nameLength = Int(head.withUnsafeBytes { $0.loadUnaligned(fromByteOffset: 9, as: UInt32.self) })
            let name = String(decoding: head[13..<(13 + nameLength)], as: UTF8.self)
            let count = Int(head.withUnsafeBytes { $0.loadUnaligned(fromByteOffset: 13 + nameLength, as: UInt32.self) })
            var arguments: [WirePayload] = []
            for index in 0..<count {
                arguments.append(WirePayload(kind: WirePayload.Kind(rawValue: head[17 + nameLength + index]) ?? .raw, chunk: request.chunks[1 + index]))
            }
            let transport = self.transport
            Task {
                var replyHead: [UInt8] = []
                var chunks: [Chunk] = []
                do {
                    guard let function = lookup(name) else {
                        throw RuntimeError(.unregisteredFunction, task: name, "no function is registered as \"\(name)\" on rank \(transport.rank)")
                    }
                    let result = try await function.wire(arguments)
                    replyHead = [0, result.kind.rawValue]
                    chunks = [Chunk.partition(replyHead, into: 1)[0], result.chunk]
                } catch {
                    replyHead = [1, 0] + Array("\(error)".utf8)
                    chunks = [Chunk.partition(replyHead, into: 1)[0]]
                }
                try? transport.send(
                    Message(signature: Self.signature, skew: ArrivalSkew(rank: transport.rank, entry: 0), chunks: chunks), to: 0,
                    tag: Tag(context: Self.replyContext, sequence: call))
            }
        }
    }

    private func append<I: FixedWidthInteger>(_ bytes: inout [UInt8], _ value: I) {
        withUnsafeBytes(of: value.littleEndian) { bytes += $0 }
    }
}

/// A task that threw on another rank: its error as that rank described it.
public struct RemoteTaskError: Error, Sendable, CustomStringConvertible {
    public let rank: Int
    public let description: String
}

extension Runtime {
    /// A runtime over every rank of `transport` (an `MPITransport`: it must allow concurrent sends and
    /// receives), with `workersPerRank` worker slots on each. Every rank creates it and registers the
    /// same functions; rank 0 then submits work while the others call `serve()`.
    public convenience init(cluster transport: any Transport, workersPerRank: Int = ProcessInfo.processInfo.activeProcessorCount) {
        self.init(workers: workersPerRank * transport.size, cluster: Cluster(transport: transport, workersPerRank: workersPerRank))
    }

    /// True on the rank that submits work (rank 0, or an embedded runtime).
    public var isDriver: Bool { cluster.map { $0.transport.rank == 0 } ?? true }

    /// On ranks other than 0: runs the tasks rank 0 sends until it shuts the runtime down.
    public func serve() async throws {
        guard let cluster, !isDriver else { return }
        try await cluster.serve { [self] name in registry.withLock { $0[name] } }
    }
}
