import ArgumentParser
import Foundation

/// A progress line on standard error, so that standard output stays the report.
func note(_ s: String) { FileHandle.standardError.write(Data((s + "\n").utf8)) }

/// Runs a bash command (from the repository root) and returns its standard output; `input`, if
/// given, is its standard input.
@discardableResult
func shell(_ command: String, input: String? = nil) throws -> String {
    let p = Process()
    p.executableURL = URL(fileURLWithPath: "/bin/bash")
    p.arguments = ["-c", command]
    let pipe = Pipe()
    p.standardOutput = pipe
    let stdin = Pipe()
    if input != nil { p.standardInput = stdin }
    try p.run()
    if let input {
        stdin.fileHandleForWriting.write(Data(input.utf8))
        try stdin.fileHandleForWriting.close()
    }
    let data = pipe.fileHandleForReading.readDataToEndOfFile()
    p.waitUntilExit()
    guard p.terminationStatus == 0 else {
        throw ValidationError("'\(command)' failed (exit \(p.terminationStatus)); run skein from the repository root")
    }
    return String(decoding: data, as: UTF8.self)
}
