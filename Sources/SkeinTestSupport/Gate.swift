import Synchronization

/// Opens once `count` arrivals have been made; waiters resume then (no sleeping to wait).
public final class Gate: Sendable {
    private let state: Mutex<(arrived: Int, waiters: [CheckedContinuation<Void, Never>])>
    private let count: Int

    public init(opensAfter count: Int) {
        self.count = count
        state = Mutex((0, []))
    }

    public func arrive() {
        let ready = state.withLock { state -> [CheckedContinuation<Void, Never>] in
            state.arrived += 1
            guard state.arrived >= count else { return [] }
            defer { state.waiters.removeAll() }
            return state.waiters
        }
        for waiter in ready { waiter.resume() }
    }

    public func wait() async {
        await withCheckedContinuation { continuation in
            let open = state.withLock { state -> Bool in
                if state.arrived >= count { return true }
                state.waiters.append(continuation)
                return false
            }
            if open { continuation.resume() }
        }
    }
}

