import Foundation

extension Executor {
    /// Bytes one group costs in a hash aggregation (slots at half load, keys, hashes, states).
    static func bytesPerGroup(keys: [DataType], aggregates: [Aggregate]) -> Int {
        let keyBytes = keys.reduce(0) { $0 + ($1 == .string ? 32 : 9) }
        let stateBytes = aggregates.reduce(0) { total, a in
            switch a.function {
            case .countStar, .count: total + 8
            case .countDistinct: total + 64
            case .min, .max: total + 17
            case .sum, .avg: total + 24
            }
        }
        return 2 * (4 + 8 + 8) + 8 + keyBytes + stateBytes
    }

    /// Hash aggregation that fits a memory limit: rows (their keys and arguments, evaluated) are
    /// split by key hash into partitions written to disk, then each partition is aggregated on
    /// its own. Every group lives in exactly one partition, so the results are simply appended.
    func partitionedAggregate(_ s: Stream, inputTypes: [DataType], groups: [Expr], aggregates: [Aggregate], partitions: Int) throws -> Chunk {
        let keyTypes = groups.map { resultType($0, inputTypes) }
        let argExprs = aggregates.compactMap(\.argument)
        let spill = try SpillFiles(directory: spillDirectory, partitions: partitions)
        defer { spill.removeAll() }
        try spillByHash(s, keys: groups, values: argExprs, into: spill)
        // One partition at a time; keys are the first columns, then the arguments in order.
        var next = groups.count
        let remapped = aggregates.map { a -> Aggregate in
            guard a.argument != nil else { return a }
            defer { next += 1 }
            return Aggregate(a.function, .col(next))
        }
        let types = keyTypes + argExprs.map { resultType($0, inputTypes) }
        var outputs: [Chunk] = []
        for p in 0..<partitions {
            let chunks = try spill.read(partition: p)
            guard !chunks.isEmpty else { continue }
            outputs.append(try aggregate(Stream(morsels: chunks, operators: []), inputTypes: types,
                                         groups: groups.indices.map { .col($0) }, aggregates: remapped, spill: false))
        }
        if outputs.isEmpty {
            return try aggregate(Stream(morsels: [], operators: []), inputTypes: types, groups: groups.indices.map { .col($0) },
                                 aggregates: remapped, spill: false)
        }
        return Chunk.concat(outputs, types: outputs[0].columns.map(\.type))
    }
}

/// Partition files of one spilling operator, in Skein's columnar format; deleted when done.
final class SpillFiles: @unchecked Sendable {
    // Safe: the file list is only touched under the lock.
    private let lock = NSLock()
    private var files: [[String]]
    private let prefix: String
    let partitions: Int
    private var counter = 0

    init(directory: String, partitions: Int) throws {
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        prefix = "\(directory)/skein-spill-\(UUID().uuidString)"
        files = Array(repeating: [], count: partitions)
        self.partitions = partitions
    }

    func write(_ chunk: Chunk, partition: Int) throws {
        lock.lock()
        counter += 1
        let path = "\(prefix)-p\(partition)-\(counter).skein"
        lock.unlock()
        let fields = chunk.columns.enumerated().map { Field("c\($0.offset)", $0.element.type) }
        do {
            try ColumnarFile.write(Table(fields: fields, chunk: chunk), to: path)
        } catch {
            throw DataError(.io, "cannot spill to \(path): \(error); set a spill directory with room, or raise the memory limit")
        }
        lock.lock()
        files[partition].append(path)
        lock.unlock()
    }

    /// The files of one partition, in the order written.
    func paths(partition: Int) -> [String] { lock.withLock { files[partition] } }

    func read(partition: Int) throws -> [Chunk] {
        let paths = lock.withLock { files[partition] }
        return try paths.map { try ColumnarFile.read(path: $0).chunk }
    }

    func removeAll() {
        for p in lock.withLock({ files.joined() }) { try? FileManager.default.removeItem(atPath: p) }
    }
}
