import Dispatch
import Synchronization

/// Runs work items on up to `threads` threads that Dispatch owns (never Swift's cooperative
/// pool); items are taken in order from a shared counter, so uneven items balance.
enum Parallel {
    static func forEach(_ count: Int, threads: Int, _ body: @Sendable (_ item: Int, _ worker: Int) -> Void) {
        let t = max(1, min(threads, count))
        if t == 1 {
            for i in 0..<count { body(i, 0) }
            return
        }
        let next = Atomic<Int>(0)
        DispatchQueue.concurrentPerform(iterations: t) { w in
            while true {
                let i = next.wrappingAdd(1, ordering: .relaxed).oldValue
                if i >= count { break }
                body(i, w)
            }
        }
    }

    /// Maps items in parallel, keeping their order.
    static func map<T: Sendable>(_ count: Int, threads: Int, _ body: @Sendable (_ item: Int, _ worker: Int) -> T) -> [T] {
        let out = ResultSlots<T>(count)
        forEach(count, threads: threads) { i, w in out.set(i, body(i, w)) }
        return out.values()
    }
}

/// One slot per work item, each written by exactly one thread before `values()` reads them all.
final class ResultSlots<T>: @unchecked Sendable {
    // Safe: distinct items write distinct slots; values() runs after the parallel loop returns.
    private let slots: UnsafeMutablePointer<T?>
    private let count: Int

    init(_ count: Int) {
        self.count = count
        slots = .allocate(capacity: max(1, count))
        slots.initialize(repeating: nil, count: max(1, count))
    }

    func set(_ i: Int, _ v: T) { slots[i] = v }

    func values() -> [T] { (0..<count).map { slots[$0]! } }

    deinit {
        slots.deinitialize(count: max(1, count))
        slots.deallocate()
    }
}

/// Hands a value that is not Sendable (a pointer into a mapped file, a read-only buffer) to the
/// threads of one parallel loop; the loop's caller keeps it alive and nobody writes through it.
struct Shared<T>: @unchecked Sendable {
    let value: T
    init(_ value: T) { self.value = value }
}

extension Parallel {
    /// 0..<n cut into at most `threads` contiguous ranges of at least `grain` items each.
    static func ranges(_ n: Int, threads: Int, grain: Int = 1 << 15) -> [Range<Int>] {
        let parts = max(1, min(threads, n / max(1, grain)))
        return (0..<parts).map { p in (p * n / parts)..<((p + 1) * n / parts) }
    }

    /// Fills an array of n values range by range in parallel; `body` writes its range's slots.
    static func fill<T: BitwiseCopyable>(_ n: Int, threads: Int, _ body: @Sendable (Range<Int>, UnsafeMutableBufferPointer<T>) -> Void) -> [T] {
        let rs = ranges(n, threads: threads)
        return [T](unsafeUninitializedCapacity: n) { buffer, count in
            let out = Shared(buffer)
            forEach(rs.count, threads: threads) { i, _ in body(rs[i], out.value) }
            count = n
        }
    }
}
