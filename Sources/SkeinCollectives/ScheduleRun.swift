import SkeinCore

/// The state of one rank while it runs a schedule: its slots and what it knows of arrival skew.
/// Transport-free, so the same steps run over a live transport (`execute`) and inside the
/// at-scale simulator.
struct ScheduleRun {
    var slots: [Chunk?]
    var skew: ArrivalSkew
    let signature: CallSignature
    let reducer: Reducer?
    let rank: Int
    /// Where the output goes in the caller's memory, when the transport copies bytes in (MPI):
    /// receives land there and reductions write there, so the result needs no copy at the end.
    var placement: OutputPlacement?

    init(schedule: Schedule, input: [Chunk], signature: CallSignature, reducer: Reducer?, rank: Int, entry: UInt64) {
        // Initialized in place: `Array(repeating:count:)` looked up its storage's generic metadata on every call.
        let slotCount = schedule.slotCount
        slots = [Chunk?](unsafeUninitializedCapacity: slotCount) { buffer, initialized in
            buffer.initialize(repeating: nil)
            initialized = slotCount
        }
        for (k, chunk) in input.enumerated() { slots[schedule.inputSlot(ofBlock: k)] = chunk }
        skew = ArrivalSkew(rank: rank, entry: entry)
        self.signature = signature
        self.reducer = reducer
        self.rank = rank
    }

    /// The message a `.send` step puts on the wire; its slots are shared from now on.
    mutating func outgoing(_ step: Step) throws(SkeinError) -> Message {
        if step.count == 1 {
            return Message(signature: signature, skew: skew, chunks: ChunkList(single: try share(Int(step.first))))
        }
        var chunks: [Chunk] = []
        chunks.reserveCapacity(Int(step.count))
        for slot in step.slots { chunks.append(try share(slot)) }
        return Message(signature: signature, skew: skew, chunks: chunks)
    }

    /// The chunk in `slot`, marked as seen by another rank from now on.
    private mutating func share(_ slot: Int) throws(SkeinError) -> Chunk {
        guard var chunk = slots[slot] else {
            throw SkeinError(.internalError, rank: rank, "\(signature.operation) schedule sends empty slot \(slot)")
        }
        chunk.share()
        slots[slot] = chunk
        return chunk
    }

    /// Applies a received message to a `.receive` or `.receiveReduce` step; returns the bytes reduced.
    /// With a placement, a reduction whose slot is an output block writes into the caller's memory
    /// where nothing else (a slot, a send of `transport`'s) still reads it.
    mutating func accept(_ step: Step, _ message: Message, transport: (any Transport)? = nil) throws(SkeinError) -> Int {
        let peer = Int(step.peer)
        if message.signature != signature { throw Self.disagreement(mine: signature, theirs: message.signature, rank: rank, peer: peer) }
        guard message.chunks.count == Int(step.count) else {
            throw SkeinError(
                .mismatch, rank: rank, peer: peer,
                "rank \(peer) sent \(message.chunks.count) blocks where rank \(rank) expected \(step.count) in "
                    + "\(signature.operation) #\(signature.sequence); the ranks disagree on the call's shape")
        }
        skew.merge(message.skew)
        if step.kind == .receive {
            for (i, chunk) in message.chunks.enumerated() { slots[Int(step.first) + i] = chunk }
            return 0
        }
        guard let reducer else { throw SkeinError(.internalError, rank: rank, "reduce step without a reduction") }
        var reduced = 0
        for (i, incoming) in message.chunks.enumerated() {
            let slot = Int(step.first) + i
            guard let mine = slots[slot], mine.byteCount == incoming.byteCount else {
                throw SkeinError(
                    .mismatch, rank: rank, peer: peer,
                    "rank \(peer) sent a block of \(incoming.byteCount) bytes to reduce into rank \(rank)'s block of "
                        + "\(slots[slot]?.byteCount ?? 0) bytes in \(signature.operation) #\(signature.sequence)")
            }
            if let placement, let transport, let region = placement.region(slot..<(slot + 1)), region.count == incoming.byteCount,
                mayReduce(mine, incoming, into: UnsafeRawBufferPointer(region), slot: slot, transport: transport)
            {
                let target = region.baseAddress!
                mine.withUnsafeBytes { mine in
                    incoming.withUnsafeBytes { theirs in
                        if peer < rank {
                            reducer(into: target, theirs.baseAddress!, mine.baseAddress!, byteCount: region.count)
                        } else {
                            reducer(into: target, mine.baseAddress!, theirs.baseAddress!, byteCount: region.count)
                        }
                    }
                }
                slots[slot] = placement.chunk(region)
            } else {
                slots[slot] = mine.reduced(with: incoming, incomingIsLeft: peer < rank, by: reducer)
            }
            reduced += incoming.byteCount
        }
        return reduced
    }

    /// True when the reduction of `mine` and `incoming` for `slot` may be written into `region`: no
    /// slot but this one holds bytes there, this one's either are the region or lie elsewhere (an
    /// element-wise reduction may overwrite its own operand), and no send still reads them.
    private func mayReduce(_ mine: Chunk, _ incoming: Chunk, into region: UnsafeRawBufferPointer, slot: Int, transport: any Transport) -> Bool {
        guard !mine.isPhantom, !incoming.isPhantom, !Self.overlaps(incoming, region), !holds(region, except: slot..<(slot + 1)) else { return false }
        let exact = mine.withUnsafeBytes { $0.baseAddress == region.baseAddress && $0.count == region.count }
        return (exact || !Self.overlaps(mine, region)) && !transport.sendsMayRead(region)
    }

    /// True when a slot outside `except` holds a chunk with bytes in `region`.
    func holds(_ region: UnsafeRawBufferPointer, except: Range<Int>) -> Bool {
        slots.indices.contains { index in
            guard !except.contains(index), let chunk = slots[index] else { return false }
            return Self.overlaps(chunk, region)
        }
    }

    static func overlaps(_ chunk: Chunk, _ region: UnsafeRawBufferPointer) -> Bool {
        chunk.withUnsafeBytes { bytes in
            guard let from = bytes.baseAddress, let start = region.baseAddress, bytes.count > 0, region.count > 0 else { return false }
            return from < start + region.count && start < from + bytes.count
        }
    }

    mutating func move(_ step: Step) {
        slots[Int(step.peer)] = slots[Int(step.first)]
    }

    /// The output blocks in order (nil where the schedule left a slot empty: a bug).
    func output(_ schedule: Schedule) throws(SkeinError) -> [Chunk] {
        var out: [Chunk] = []
        out.reserveCapacity(schedule.outputSlots.count)
        for j in 0..<schedule.outputSlots.count {
            guard let chunk = slots[schedule.outputSlot(ofBlock: j)] else {
                throw SkeinError(.internalError, rank: rank, "\(signature.operation) schedule left output block \(j) empty")
            }
            out.append(chunk)
        }
        return out
    }

    static func disagreement(mine: CallSignature, theirs: CallSignature, rank: Int, peer: Int) -> SkeinError {
        let call = "#\(mine.sequence)"
        if mine.sequence != theirs.sequence {
            // Only on a shared-memory board, where the k-th board calls meet whatever their numbers.
            return SkeinError(
                .desync, rank: rank, peer: peer,
                "rank \(peer) called \(theirs.operation) #\(theirs.sequence) through shared memory while rank \(rank) called \(mine.operation) \(call) there; "
                    + "the ranks issue collectives in different orders or pick different algorithms")
        }
        if mine.operation != theirs.operation {
            return SkeinError(
                .desync, rank: rank, peer: peer,
                "rank \(peer) called \(theirs.operation) \(call) while rank \(rank) called \(mine.operation) \(call); "
                    + "the ranks issue collectives in different orders")
        }
        let (theirText, myText): (String, String)
        if mine.dataType != theirs.dataType {
            (theirText, myText) = ("element type \(theirs.dataType)", "element type \(mine.dataType)")
        } else if mine.count != theirs.count {
            (theirText, myText) = ("\(theirs.count) elements", "\(mine.count) elements")
        } else if mine.root != theirs.root {
            (theirText, myText) = ("root \(theirs.root)", "root \(mine.root)")
        } else if mine.reduceOp != theirs.reduceOp {
            (theirText, myText) = ("op \(theirs.reduceOp)", "op \(mine.reduceOp)")
        } else {
            (theirText, myText) = (
                "algorithm \(AlgorithmRegistry.name(code: theirs.algorithm))", "algorithm \(AlgorithmRegistry.name(code: mine.algorithm))"
            )
        }
        let what = "\(theirText) while rank \(rank) passed \(myText); every rank must pass the same"
        return SkeinError(.mismatch, rank: rank, peer: peer, "in \(mine.operation) \(call), rank \(peer) passed \(what)")
    }
}

extension ScheduleRun {
    /// Runs every step over `transport`, waiting for each message until `deadline`.
    mutating func execute(_ schedule: Schedule, on transport: any Transport, tag: Tag, deadline: UInt64) async throws(SkeinError) {
        for step in schedule.steps {
            switch step.kind {
            case .send:
                try transport.send(outgoing(step), to: Int(step.peer), tag: tag)
            case .receive, .receiveReduce:
                // A plain receive into output blocks lands in the caller's memory, unless a slot of
                // another block still holds bytes there (the transport checks its own sends).
                var destination: UnsafeMutableRawBufferPointer?
                if step.kind == .receive, let placement, let region = placement.region(step.slots),
                    !holds(UnsafeRawBufferPointer(region), except: step.slots)
                {
                    destination = region
                }
                let message = try await transport.receive(from: Int(step.peer), tag: tag, deadline: deadline, into: destination)
                let reduced = try accept(step, message, transport: placement == nil ? nil : transport)
                if reduced > 0 { transport.chargeReduction(byteCount: reduced) }
            case .move:
                move(step)
            }
        }
        // The output lies in the caller's memory, which it may change once the call returns.
        if let placement { try await transport.settleSends(reading: UnsafeRawBufferPointer(placement.memory), deadline: deadline) }
    }
}

/// Where a schedule's output blocks lie in the caller's output memory: the concatenation of the
/// output slots (in `Schedule.outputSlot(ofBlock:)` order), split into near-equal blocks of elements.
struct OutputPlacement {
    let memory: UnsafeMutableRawBufferPointer
    /// The caller's memory as chunks see it (borrowed: nothing of it is freed or kept alive here).
    let storage: BorrowedStorage
    let blocks: BlockPartition
    let width: Int
    let slots: Range<Int>
    let rotation: Int

    /// Destinations smaller than this are left to the copy at the end (cheap at that size).
    static let minimumBytes = 64 << 10

    init?(destination: UnsafeMutableRawBufferPointer?, width: Int, schedule: Schedule) {
        guard let destination, destination.baseAddress != nil, destination.count >= Self.minimumBytes, width > 0,
            destination.count % width == 0, !schedule.outputSlots.isEmpty
        else { return nil }
        memory = destination
        storage = BorrowedStorage(UnsafeRawBufferPointer(destination), owner: nil)
        blocks = BlockPartition(count: destination.count / width, parts: schedule.outputSlots.count)
        self.width = width
        slots = schedule.outputSlots
        rotation = schedule.outputRotation
    }

    /// The caller's bytes that `range`'s slots fill, when they are consecutive output blocks in order.
    func region(_ range: Range<Int>) -> UnsafeMutableRawBufferPointer? {
        guard let first = range.first, slots.contains(first), slots.contains(range.upperBound - 1) else { return nil }
        let count = slots.count
        let block = ((first - slots.lowerBound - rotation) % count + count) % count
        guard block + range.count <= count else { return nil }
        let lower = blocks.range(block).lowerBound * width, upper = blocks.range(block + range.count - 1).upperBound * width
        return UnsafeMutableRawBufferPointer(rebasing: memory[lower..<upper])
    }

    /// A chunk over `region` of the caller's memory.
    func chunk(_ region: UnsafeMutableRawBufferPointer) -> Chunk {
        Chunk(storage: storage, offset: region.baseAddress! - memory.baseAddress!, byteCount: region.count, isWritable: false)
    }
}
