import ArgumentParser
import Foundation
import SkeinCore
import SkeinRuntime

/// Runs a sample task graph on the embedded runtime, writes its timeline and prints its summary.
struct TimelineCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "timeline",
        abstract: "Run a sample task graph (map, shuffle-like fan-in, reduce) and write its Chrome/Perfetto trace.")

    @Option(help: "Worker slots.") var workers = ProcessInfo.processInfo.activeProcessorCount
    @Option(help: "Map tasks.") var tasks = 32
    @Option(help: "Where to write the trace JSON (open in ui.perfetto.dev or chrome://tracing).") var output = "bench-out/timeline.json"

    func run() async throws {
        let runtime = Runtime(workers: workers)
        defer { runtime.shutdown() }
        let make = runtime.register("make") { (seed: Int) -> [Double] in
            var x = UInt64(seed + 1)
            return (0..<200_000).map { _ in
                x = x &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407
                return Double(x >> 11) / Double(1 << 53)
            }
        }
        let square = runtime.register("square") { (values: [Double]) in values.map { $0 * $0 } }
        let total = runtime.register("sum") { (values: [Double]) in values.reduce(0, +) }
        let pair = runtime.register("combine") { (a: Double, b: Double) in a + b }
        var sums: [ObjectRef<Double>] = []
        for seed in 0..<tasks {
            let data = try runtime.submit(make, .value(seed))
            sums.append(try runtime.submit(total, .ref(try runtime.submit(square, .ref(data)))))
        }
        while sums.count > 1 {  // a tree reduction
            var next: [ObjectRef<Double>] = []
            for index in stride(from: 0, to: sums.count - 1, by: 2) { next.append(try runtime.submit(pair, .ref(sums[index]), .ref(sums[index + 1]))) }
            if sums.count % 2 == 1 { next.append(sums.last!) }
            sums = next
        }
        let result = try await runtime.get(sums[0])
        let folder = (output as NSString).deletingLastPathComponent
        if !folder.isEmpty { try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true) }
        try runtime.writeTimeline(to: output)
        print(String(format: "sum of squares of %d × 200,000 uniform numbers: %.1f (expected about %.0f)", tasks, result, Double(tasks) * 200_000 / 3))
        print(runtime.summary())
        print("wrote \(output)")
    }
}
