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
    mutating func accept(_ step: Step, _ message: Message) throws(SkeinError) -> Int {
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
            slots[slot] = mine.reduced(with: incoming, incomingIsLeft: peer < rank, by: reducer)
            reduced += incoming.byteCount
        }
        return reduced
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
                let message = try await transport.receive(from: Int(step.peer), tag: tag, deadline: deadline)
                let reduced = try accept(step, message)
                if reduced > 0 { transport.chargeReduction(byteCount: reduced) }
            case .move:
                move(step)
            }
        }
    }
}
