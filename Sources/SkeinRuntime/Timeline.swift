import Foundation

/// What a run did: tasks, parallelism, critical path, idle time per worker.
public struct RunSummary: Sendable, CustomStringConvertible {
    public var tasks: Int
    public var failedTasks: Int
    /// Seconds from the first task's start to the last one's end.
    public var makespan: Double
    /// Seconds of task execution, summed (the time one worker would need).
    public var busy: Double
    /// Busy seconds over the makespan.
    public var averageParallelism: Double
    public var peakParallelism: Int
    /// Seconds along the longest chain of dependent tasks.
    public var criticalPath: Double
    /// Idle seconds per worker row over the makespan.
    public var idlePerWorker: [String: Double]

    /// How much faster than one worker running the same tasks back to back.
    public var speedupOverOneWorker: Double { makespan > 0 ? busy / makespan : 1 }

    public var description: String {
        var lines = [
            "tasks run: \(tasks)" + (failedTasks > 0 ? " (\(failedTasks) failed)" : ""),
            String(format: "makespan %.3f ms, busy %.3f ms, critical path %.3f ms", makespan * 1e3, busy * 1e3, criticalPath * 1e3),
            String(format: "parallelism: average %.2f, peak %d; speedup over one worker %.2f×", averageParallelism, peakParallelism, speedupOverOneWorker),
        ]
        for (row, idle) in idlePerWorker.sorted(by: { $0.key < $1.key }) {
            lines.append(String(format: "  %@ idle %.3f ms", row, idle * 1e3))
        }
        return lines.joined(separator: "\n")
    }
}

extension Runtime {
    /// The run's timeline as Chrome/Perfetto trace JSON: one row per worker (and per actor, and one
    /// for the object store's spills and restores), one slice per task.
    public func timelineJSON() -> String {
        let (events, origin) = core.state.withLock { ($0.events, core.started) }
        var rows: [String: Int] = [:]
        for event in events where rows[event.row] == nil { rows[event.row] = rows.count + 1 }
        var items: [String] = []
        for (row, tid) in rows.sorted(by: { $0.value < $1.value }) {
            items.append(#"{"name":"thread_name","ph":"M","pid":1,"tid":\#(tid),"args":{"name":"\#(escape(row))"}}"#)
        }
        for event in events {
            let ts = Double(event.start &- origin) / 1e3
            let dur = Double(event.end &- event.start) / 1e3
            items.append(
                #"{"name":"\#(escape(event.name))","cat":"\#(event.ok ? "task" : "failed")","ph":"X","pid":1,"tid":\#(rows[event.row]!),"ts":\#(ts),"dur":\#(dur),"args":{"object":\#(event.task),"inputs":\#(event.deps)}}"#)
        }
        return "{\"traceEvents\":[\n" + items.joined(separator: ",\n") + "\n],\"displayTimeUnit\":\"ms\"}\n"
    }

    /// Writes `timelineJSON()` to `path` (open it in ui.perfetto.dev or chrome://tracing).
    public func writeTimeline(to path: String) throws {
        try timelineJSON().write(toFile: path, atomically: true, encoding: .utf8)
    }

    /// Tasks run, parallelism, critical path and idle time, from the timeline.
    public func summary() -> RunSummary {
        let (events, peak, producedBy) = core.state.withLock { ($0.events, $0.peakRunning, $0.producedBy) }
        let tasks = events.filter { $0.task != 0 }
        guard let first = tasks.map(\.start).min(), let last = tasks.map(\.end).max() else {
            return RunSummary(tasks: 0, failedTasks: 0, makespan: 0, busy: 0, averageParallelism: 0, peakParallelism: 0, criticalPath: 0, idlePerWorker: [:])
        }
        let makespan = Double(last - first) / 1e9
        let busy = tasks.reduce(0.0) { $0 + Double($1.end - $1.start) / 1e9 }
        var busyPerRow: [String: Double] = [:]
        for event in tasks { busyPerRow[event.row, default: 0] += Double(event.end - event.start) / 1e9 }
        // Longest path: each task's finish along its inputs' producers (events are in completion order).
        var pathTo: [UInt64: Double] = [:]
        var critical = 0.0
        for event in tasks {
            let before = event.deps.compactMap { producedBy[$0].flatMap { pathTo[$0] } }.max() ?? 0
            let path = before + Double(event.end - event.start) / 1e9
            pathTo[event.task] = max(pathTo[event.task] ?? 0, path)
            critical = max(critical, path)
        }
        return RunSummary(
            tasks: tasks.count, failedTasks: tasks.filter { !$0.ok }.count, makespan: makespan, busy: busy,
            averageParallelism: makespan > 0 ? busy / makespan : 0, peakParallelism: peak, criticalPath: critical,
            idlePerWorker: busyPerRow.mapValues { max(makespan - $0, 0) })
    }
}

private func escape(_ text: String) -> String {
    text.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "\"", with: "\\\"")
}
