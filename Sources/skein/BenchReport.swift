import Foundation
import SkeinCore
import SkeinCollectives

/// Tables, CSV and SVG for benchmark rows.
enum BenchReport {
    static func printTable(_ rows: [BenchRow], ranksLabel: String = "in-process ranks") {
        var lastOperation: CollectiveOperation?
        for row in rows {
            if row.operation != lastOperation {
                lastOperation = row.operation
                print("\n\(row.operation), \(row.ranks) \(ranksLabel)")
                print("bytes".leftPad(10) + "  " + "algorithm".padding(toLength: 20, withPad: " ", startingAt: 0)
                    + "measured".leftPad(11) + "predicted".leftPad(11) + "algbw GB/s".leftPad(12) + "busbw GB/s".leftPad(12)
                    + "bound".leftPad(11) + "×bound".leftPad(8))
            }
            let mark = row.selected ? "*" : row.modelSelected ? "+" : " "
            print(formatBytes(row.bytes).leftPad(10) + " " + mark + row.algorithm.padding(toLength: 20, withPad: " ", startingAt: 0)
                + formatSeconds(row.median).leftPad(11) + formatSeconds(row.predicted).leftPad(11)
                + String(format: "%.2f", row.algorithmBandwidth / 1e9).leftPad(12)
                + String(format: "%.2f", row.busBandwidth / 1e9).leftPad(12)
                + formatSeconds(row.lowerBound).leftPad(11)
                + (row.lowerBound > 0 ? String(format: "%.2f", row.median / row.lowerBound) : "-").leftPad(8))
        }
        print("(* = the algorithm selected: measured profiles where tuned, else the cost model; + = the cost model's pick where they differ)")
    }

    /// For every (operation, ranks, size): the selected algorithm's time over the fastest one's.
    static func printSelectionQuality(_ rows: [BenchRow]) {
        // MPI's call in a bare loop is the yardstick, not a choice the communicator can make.
        let groups = Dictionary(grouping: rows.filter { $0.algorithm != bareNativeName }) { "\($0.operation)|\($0.ranks)|\($0.bytes)" }
        // Per point: its description, the selected over the fastest, and the same when timed again.
        var worst: [(text: String, ratio: Double, again: Double?)] = []
        var modelWithin = 0
        for (_, group) in groups {
            guard let fastest = group.min(by: { $0.median < $1.median }), let selected = group.first(where: \.selected) else { continue }
            let again = selected.secondLook.flatMap { mine in fastest.secondLook.map { mine / $0 } }
            worst.append(
                ("\(selected.operation) p=\(selected.ranks) \(formatBytes(selected.bytes)): selected \(selected.algorithm), fastest \(fastest.algorithm)",
                 selected.median / fastest.median, again))
            if let model = group.first(where: \.modelSelected), model.median <= fastest.median * 1.1 { modelWithin += 1 }
        }
        let misses = worst.filter { $0.ratio > 1.1 }
        print("\nselection: the selected algorithm is within 10% of the fastest measured at \(worst.count - misses.count) of \(worst.count) points")
        let timedAgain = misses.filter { $0.again != nil }
        if !timedAgain.isEmpty {
            let held = timedAgain.filter { $0.again! > 1.1 }.count
            print("  timed again, the selected and the fastest alone, interleaved: \(held) of those \(timedAgain.count) misses held")
        }
        if rows.contains(where: { $0.selected != $0.modelSelected }) {
            print("  (the cost model's formulas alone, without the tuned profiles: \(modelWithin) of \(worst.count))")
        }
        for miss in misses.sorted(by: { $0.ratio > $1.ratio }).prefix(12) {
            print(String(format: "  %.2f× ", miss.ratio) + miss.text + (miss.again.map { String(format: "; timed again %.2f×", $0) } ?? ""))
        }
    }

    /// The row name of MPI's blocking call timed in a loop with nothing of Skein's around it.
    static let bareNativeName = "native-loop"

    /// Per (operation, size): the transport's own call (MPI_*), the fastest of its blocking and
    /// non-blocking forms through the communicator and the blocking one in a bare loop: the figure
    /// Skein is held to.
    static func bestNative(_ rows: [BenchRow]) -> [BenchRow] {
        let natives = rows.filter { $0.algorithm.hasPrefix("native") }
        return Dictionary(grouping: natives) { "\($0.operation.rawValue)|\($0.ranks)|\($0.bytes)" }.values
            .compactMap { $0.min { $0.median < $1.median } }
            .sorted { ($0.operation.rawValue, $0.bytes) < ($1.operation.rawValue, $1.bytes) }
    }

    /// Per operation and size: the fastest Skein algorithm against the transport's own call (MPI_*).
    static func printNativeComparison(_ rows: [BenchRow]) {
        let natives = bestNative(rows)
        guard !natives.isEmpty else { return }
        print("\nSkein over MPI against MPI's own call, the fastest of MPI_X and MPI_IX through the communicator and MPI_X in a bare loop (ratio < 1: Skein faster)")
        print("operation".padding(toLength: 16, withPad: " ", startingAt: 0) + "bytes".leftPad(10) + "  "
            + "best Skein".padding(toLength: 20, withPad: " ", startingAt: 0) + "Skein".leftPad(11) + "MPI_*".leftPad(11) + "Skein/MPI".leftPad(11))
        for native in natives {
            let skein = rows.filter {
                $0.operation == native.operation && $0.ranks == native.ranks && $0.bytes == native.bytes && !$0.algorithm.hasPrefix("native")
            }
            guard let best = skein.min(by: { $0.median < $1.median }) else { continue }
            print("\(native.operation)".padding(toLength: 16, withPad: " ", startingAt: 0) + formatBytes(native.bytes).leftPad(10) + "  "
                + best.algorithm.padding(toLength: 20, withPad: " ", startingAt: 0) + formatSeconds(best.median).leftPad(11)
                + formatSeconds(native.median).leftPad(11) + String(format: "%.2f", best.median / native.median).leftPad(11))
        }
    }

    /// Per operation and size: Skein's embedded default (its automatic choice on in-process ranks)
    /// against MPI's own call between processes.
    static func printEmbeddedComparison(mpi: [BenchRow], embedded: [BenchRow], rounds: Int = 1) {
        print("\nSkein embedded (in-process ranks, automatic choice) against MPI's own call between processes (speedup > 1: embedded faster)"
            + (rounds > 1 ? "; each side's fastest median of \(rounds) alternating rounds" : ""))
        print("operation".padding(toLength: 16, withPad: " ", startingAt: 0) + "bytes".leftPad(10) + "  "
            + "embedded pick".padding(toLength: 20, withPad: " ", startingAt: 0) + "embedded".leftPad(11) + "MPI_*".leftPad(11) + "speedup".leftPad(9))
        var slower = 0, total = 0, empty = 0
        for native in bestNative(mpi) {
            guard let pick = embedded.first(where: { $0.operation == native.operation && $0.bytes == native.bytes && $0.selected }) else { continue }
            // A result smaller than one float per rank gives each rank nothing to send: MPI returns
            // from such a call at once, while Skein still checks that every rank passed the same count.
            let nothing = native.operation != .barrier
                && CollectiveSimulator.perRankCount(native.operation, ranks: native.ranks, bytes: native.bytes, elementWidth: 4) == 0
            if nothing { empty += 1 } else { total += 1 }
            if pick.median > native.median && !nothing { slower += 1 }
            let note: String = nothing ? "  (0 elements per rank: MPI does nothing)" : ""
            print("\(native.operation)".padding(toLength: 16, withPad: " ", startingAt: 0) + formatBytes(native.bytes).leftPad(10) + "  "
                + pick.algorithm.padding(toLength: 20, withPad: " ", startingAt: 0) + formatSeconds(pick.median).leftPad(11)
                + formatSeconds(native.median).leftPad(11) + String(format: "%.2f×", native.median / pick.median).leftPad(9) + note)
        }
        let emptyNote: String = empty > 0 ? " (and \(empty) calls with 0 elements per rank, which MPI returns from at once and Skein still checks across ranks)" : ""
        print("embedded slower than MPI at \(slower) of \(total) points" + emptyNote)
    }

    static func write(_ rows: [BenchRow], to folder: String, ranksLabel: String = "in-process ranks") throws {
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        let csv = "operation,algorithm,ranks,bytes,measured_seconds,predicted_seconds,selected,model_selected,lower_bound_seconds,algbw,busbw,second_look_seconds\n"
            + rows.map(\.csv).joined(separator: "\n") + "\n"
        try csv.write(toFile: "\(folder)/collectives.csv", atomically: true, encoding: .utf8)
        for (key, group) in Dictionary(grouping: rows, by: { "\($0.operation)-p\($0.ranks)" }) {
            var series = Dictionary(grouping: group, by: \.algorithm).map { name, points in
                SVGPlot.Series(name: name, points: points.map { (Double($0.bytes), $0.median) }, dashed: false)
            }.sorted { $0.name < $1.name }
            series.append(SVGPlot.Series(
                name: "memory bound", points: group.filter { $0.lowerBound > 0 }.map { (Double($0.bytes), $0.lowerBound) }.uniqued(), dashed: true))
            let svg = SVGPlot.logLog(title: "\(group[0].operation), \(group[0].ranks) \(ranksLabel)", xLabel: "bytes", yLabel: "seconds", series: series)
            try svg.write(toFile: "\(folder)/\(key.replacingOccurrences(of: " ", with: "-")).svg", atomically: true, encoding: .utf8)
        }
    }
}

extension Array where Element == (Double, Double) {
    func uniqued() -> [(Double, Double)] {
        var seen = Set<Double>()
        return filter { seen.insert($0.0).inserted }
    }
}

/// A minimal log-log line plot as SVG.
enum SVGPlot {
    struct Series {
        var name: String
        var points: [(Double, Double)]
        var dashed: Bool
    }

    static let colors = ["#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#17becf"]

    static func logLog(title: String, xLabel: String, yLabel: String, series: [Series]) -> String {
        let width = 760.0, height = 480.0, left = 80.0, right = 190.0, top = 40.0, bottom = 50.0
        let all = series.flatMap(\.points).filter { $0.0 > 0 && $0.1 > 0 }
        guard !all.isEmpty else { return "<svg xmlns='http://www.w3.org/2000/svg'/>" }
        let xs = all.map { log10($0.0) }, ys = all.map { log10($0.1) }
        let (x0, x1) = (floor(xs.min()!), ceil(xs.max()!)), (y0, y1) = (floor(ys.min()!), ceil(ys.max()!))
        func px(_ x: Double) -> Double { left + (log10(x) - x0) / max(x1 - x0, 1) * (width - left - right) }
        func py(_ y: Double) -> Double { height - bottom - (log10(y) - y0) / max(y1 - y0, 1) * (height - top - bottom) }
        var svg = "<svg xmlns='http://www.w3.org/2000/svg' width='\(Int(width))' height='\(Int(height))' font-family='sans-serif' font-size='12'>\n"
        svg += "<rect width='100%' height='100%' fill='white'/>\n<text x='\(left)' y='24' font-size='15'>\(title)</text>\n"
        for e in stride(from: x0, through: x1, by: 1) {
            let x = px(pow(10, e))
            svg += "<line x1='\(x)' y1='\(top)' x2='\(x)' y2='\(height - bottom)' stroke='#ddd'/><text x='\(x - 12)' y='\(height - bottom + 16)'>1e\(Int(e))</text>\n"
        }
        for e in stride(from: y0, through: y1, by: 1) {
            let y = py(pow(10, e))
            svg += "<line x1='\(left)' y1='\(y)' x2='\(width - right)' y2='\(y)' stroke='#ddd'/><text x='\(left - 40)' y='\(y + 4)'>1e\(Int(e))</text>\n"
        }
        svg += "<text x='\((width - right) / 2)' y='\(height - 12)'>\(xLabel)</text><text x='12' y='\(top - 8)'>\(yLabel)</text>\n"
        for (i, s) in series.enumerated() {
            let color = s.dashed ? "#000" : colors[i % colors.count]
            let points = s.points.filter { $0.0 > 0 && $0.1 > 0 }.sorted { $0.0 < $1.0 }.map { "\(px($0.0)),\(py($0.1))" }.joined(separator: " ")
            svg += "<polyline fill='none' stroke='\(color)' stroke-width='2' \(s.dashed ? "stroke-dasharray='6,4'" : "") points='\(points)'/>\n"
            svg += "<text x='\(width - right + 10)' y='\(top + 18 * Double(i))' fill='\(color)'>\(s.name)</text>\n"
        }
        return svg + "</svg>\n"
    }
}
