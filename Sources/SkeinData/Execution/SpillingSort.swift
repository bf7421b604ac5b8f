import Foundation

extension Executor {
    /// Whether a sort's input would not fit in half the memory limit, by the optimizer's estimate.
    func sortExceedsLimit(_ input: LogicalPlan) -> Bool {
        guard let limit = memory.limit else { return false }
        let width = input.types.reduce(0) { $0 + ($1 == .string ? 13 : 9) }
        return Optimizer(statistics: statistics).estimate(input) * Double(width) * 2 > Double(limit) / 2
    }

    /// An external merge sort: each morsel is sorted on its own (in parallel) and written to disk
    /// as a run of small blocks; the runs are then merged holding one block per run in memory.
    func externalSort(_ s: Stream, types: [DataType], keys: [SortKey]) throws -> Chunk {
        let ms = s.morsels, ops = s.operators
        let runs = try SpillFiles(directory: spillDirectory, partitions: max(1, ms.count))
        defer { runs.removeAll() }
        let blockRows = 4096
        let written: [Result<Void, any Error>] = Parallel.map(ms.count, threads: threads) { i, _ in
            Result {
                let sorted = try sortChunk(try ops.reduce(ms[i]) { try $1($0) }, keys)
                for start in stride(from: 0, to: sorted.count, by: blockRows) {
                    try runs.write(sorted.slice(start..<min(sorted.count, start + blockRows)), partition: i)
                }
            }
        }
        for r in written { try r.get() }

        // One cursor per run: its current block, that block's sort-key columns, and a row.
        struct Cursor {
            var paths: ArraySlice<String>
            var block: Chunk
            var keyColumns: [Column]
            var row: Int
        }
        func load(_ path: String) throws -> (Chunk, [Column]) {
            let block = try ColumnarFile.read(path: path).chunk
            let ev = Evaluator(chunk: block)
            return (block, try keys.map { try ev.evaluate($0.expr) })
        }
        var cursors: [Cursor] = []
        for p in 0..<runs.partitions {
            let paths = runs.paths(partition: p)
            guard let first = paths.first else { continue }
            let (block, keyColumns) = try load(first)
            cursors.append(Cursor(paths: paths.dropFirst(), block: block, keyColumns: keyColumns, row: 0))
        }
        func less(_ a: Int, _ b: Int) -> Bool {
            let x = cursors[a], y = cursors[b]
            for (k, key) in keys.enumerated() {
                let c = compareCells(x.keyColumns[k], x.row, y.keyColumns[k], y.row, key)
                if c != 0 { return c < 0 }
            }
            return a < b  // earlier runs first: the merge is stable
        }
        // A binary min-heap of cursor indices.
        var heap = Array(cursors.indices)
        func siftDown(_ start: Int) {
            var i = start
            while true {
                let l = 2 * i + 1, r = l + 1
                var m = i
                if l < heap.count && less(heap[l], heap[m]) { m = l }
                if r < heap.count && less(heap[r], heap[m]) { m = r }
                if m == i { return }
                heap.swapAt(i, m)
                i = m
            }
        }
        for i in stride(from: heap.count / 2 - 1, through: 0, by: -1) { siftDown(i) }
        let builders = types.map { ColumnBuilder($0) }
        while let top = heap.first {
            let c = cursors[top]
            for (k, b) in builders.enumerated() { b.append(c.block.columns[k], row: c.row) }
            if c.row + 1 < c.block.count {
                cursors[top].row += 1
            } else if let next = c.paths.first {
                let (block, keyColumns) = try load(next)
                cursors[top] = Cursor(paths: c.paths.dropFirst(), block: block, keyColumns: keyColumns, row: 0)
            } else {
                heap[0] = heap[heap.count - 1]
                heap.removeLast()
            }
            if !heap.isEmpty { siftDown(0) }
        }
        let out = builders.map { $0.finish() }
        return Chunk(columns: out, count: out.first?.count ?? 0)
    }
}

/// Orders row i of `a` against row j of `b` (same type) under a sort key's direction and nulls.
func compareCells(_ a: Column, _ i: Int, _ b: Column, _ j: Int, _ key: SortKey) -> Int {
    let va = a.isValid(i), vb = b.isValid(j)
    if !va || !vb {
        if va == vb { return 0 }
        return (!va) == key.nullsFirst ? -1 : 1
    }
    var c = 0
    switch (a.storage, b.storage) {
    case (.ints(let x), .ints(let y)): let p = x[a.offset + i], q = y[b.offset + j]; c = p == q ? 0 : (p < q ? -1 : 1)
    case (.doubles(let x), .doubles(let y)): let p = x[a.offset + i], q = y[b.offset + j]; c = p == q ? 0 : (p < q ? -1 : 1)
    case (.bools(let x), .bools(let y)): let p = x[a.offset + i], q = y[b.offset + j]; c = p == q ? 0 : (!p ? -1 : 1)
    case (.strings, .strings):
        c = a.withStrings { ra in b.withStrings { rb in
            let (p, l) = ra.pointer(i), (q, m) = rb.pointer(j)
            return bytesCompare(p, l, q, m)
        } }
    default: c = 0
    }
    return key.ascending ? c : -c
}
