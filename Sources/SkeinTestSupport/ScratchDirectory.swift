import Foundation

/// A fresh directory under the system's temporary directory, unique to this process and call,
/// so that two test runs on one machine never share (or delete) each other's files.
public func scratchDirectory(_ name: String) throws -> String {
    let unique = "\(name)-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
    let path = FileManager.default.temporaryDirectory.appendingPathComponent(unique).path
    try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
    return path
}
