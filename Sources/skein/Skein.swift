import ArgumentParser

@main
struct Skein: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "skein",
        abstract: "Skein: collective communication, a task runtime, analytics and training for Swift.",
        subcommands: [Demo.self, Bench.self, SQLCommand.self, Simulate.self, Calibrate.self, TimelineCommand.self])
}

/// "8", "4KiB", "64MiB", "1GiB", "1e6": a byte count.
struct ByteSize: ExpressibleByArgument, CustomStringConvertible {
    let bytes: Int

    init(bytes: Int) { self.bytes = bytes }

    init?(argument: String) {
        let units: [(String, Double)] = [("GiB", 1_073_741_824), ("MiB", 1_048_576), ("KiB", 1024), ("GB", 1e9), ("MB", 1e6), ("KB", 1e3), ("B", 1)]
        var text = argument.trimmingCharacters(in: .whitespaces), scale = 1.0
        for (suffix, factor) in units where text.hasSuffix(suffix) {
            text.removeLast(suffix.count)
            scale = factor
            break
        }
        guard let value = Double(text), value >= 0 else { return nil }
        bytes = Int(value * scale)
    }

    var description: String { formatBytes(bytes) }
}

func formatBytes(_ bytes: Int) -> String {
    switch bytes {
    case ..<1024: "\(bytes) B"
    case ..<(1 << 20): "\(bytes >> 10) KiB"
    case ..<(1 << 30): "\(bytes >> 20) MiB"
    default: "\(bytes >> 30) GiB"
    }
}

import Foundation
