import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// Reads lines for an interactive shell. On a terminal it edits in raw mode: ←/→, Home/End,
/// Ctrl-A/E, Backspace/Delete, Ctrl-U/K/W, ↑/↓ through the history (kept in a file between
/// sessions), Ctrl-C to drop the line, Ctrl-D on an empty line to end. Elsewhere (a pipe, a file)
/// it reads plain lines, so scripts and tests drive the shell unchanged.
final class LineEditor {
    private(set) var history: [String] = []
    private let historyPath: String?
    private let interactive: Bool

    init(historyPath: String?) {
        self.historyPath = historyPath
        interactive = isatty(STDIN_FILENO) == 1 && isatty(STDOUT_FILENO) == 1
        if let historyPath, let text = try? String(contentsOfFile: historyPath, encoding: .utf8) {
            history = text.split(separator: "\n").map(String.init).suffix(1000)
        }
    }

    /// Adds an entry to the history and appends it to the history file.
    func remember(_ entry: String) {
        let line = entry.replacingOccurrences(of: "\n", with: " ").trimmingCharacters(in: .whitespaces)
        guard !line.isEmpty, line != history.last else { return }
        history.append(line)
        guard let historyPath else { return }
        // A history file that cannot be made only loses the history: the open below then fails quietly.
        if !FileManager.default.fileExists(atPath: historyPath) { _ = FileManager.default.createFile(atPath: historyPath, contents: nil) }
        if let file = FileHandle(forUpdatingAtPath: historyPath) {
            _ = try? file.seekToEnd()
            file.write(Data((line + "\n").utf8))
            try? file.close()
        }
    }

    /// The next line without its newline, or nil at the end of input.
    func readLine(prompt: String) -> String? {
        write(prompt)
        guard interactive else { return Swift.readLine() }
        var saved = termios()
        guard tcgetattr(STDIN_FILENO, &saved) == 0 else { return Swift.readLine() }
        var raw = saved
        raw.c_lflag &= ~tcflag_t(ECHO | ICANON | ISIG | IEXTEN)
        raw.c_iflag &= ~tcflag_t(IXON | ICRNL)
        withUnsafeMutableBytes(of: &raw.c_cc) { cc in
            cc[Int(VMIN)] = 1
            cc[Int(VTIME)] = 0
        }
        tcsetattr(STDIN_FILENO, TCSAFLUSH, &raw)
        defer { tcsetattr(STDIN_FILENO, TCSAFLUSH, &saved) }
        return edit(prompt: prompt)
    }

    private func edit(prompt: String) -> String? {
        var line: [Character] = []
        var cursor = 0
        var entry = history.count  // history.count: the line being typed
        var draft: [Character] = []
        func redraw() {
            // Back to the line start, prompt and text, clear the rest, then the cursor.
            write("\r" + prompt + String(line) + "\u{1B}[K")
            let back = line.count - cursor
            if back > 0 { write("\u{1B}[\(back)D") }
        }
        func recall(_ k: Int) {
            guard k >= 0, k <= history.count, k != entry else { return }
            if entry == history.count { draft = line }
            entry = k
            line = k == history.count ? draft : Array(history[k])
            cursor = line.count
            redraw()
        }
        while true {
            guard let byte = readByte() else { return line.isEmpty ? nil : String(line) }
            switch byte {
            case 13, 10:  // Enter
                write("\r\n")
                return String(line)
            case 4:  // Ctrl-D: end of input on an empty line, else delete under the cursor
                if line.isEmpty { write("\r\n"); return nil }
                if cursor < line.count { line.remove(at: cursor); redraw() }
            case 3:  // Ctrl-C: drop the line
                write("^C\r\n")
                return ""
            case 127, 8:  // Backspace
                if cursor > 0 { cursor -= 1; line.remove(at: cursor); redraw() }
            case 1: cursor = 0; redraw()  // Ctrl-A
            case 5: cursor = line.count; redraw()  // Ctrl-E
            case 2: if cursor > 0 { cursor -= 1; redraw() }  // Ctrl-B
            case 6: if cursor < line.count { cursor += 1; redraw() }  // Ctrl-F
            case 11: line.removeSubrange(cursor...); redraw()  // Ctrl-K
            case 21: line.removeSubrange(..<cursor); cursor = 0; redraw()  // Ctrl-U
            case 23:  // Ctrl-W: the word before the cursor
                var k = cursor
                while k > 0 && line[k - 1] == " " { k -= 1 }
                while k > 0 && line[k - 1] != " " { k -= 1 }
                line.removeSubrange(k..<cursor)
                cursor = k
                redraw()
            case 16: recall(entry - 1)  // Ctrl-P
            case 14: recall(entry + 1)  // Ctrl-N
            case 27:  // an escape sequence: arrows, Home, End, Delete
                guard let b1 = readByte(), b1 == 91 || b1 == 79, let b2 = readByte() else { continue }
                switch b2 {
                case 65: recall(entry - 1)  // ↑
                case 66: recall(entry + 1)  // ↓
                case 67: if cursor < line.count { cursor += 1; redraw() }  // →
                case 68: if cursor > 0 { cursor -= 1; redraw() }  // ←
                case 72: cursor = 0; redraw()  // Home
                case 70: cursor = line.count; redraw()  // End
                case 51:  // Delete: ESC [ 3 ~
                    _ = readByte()
                    if cursor < line.count { line.remove(at: cursor); redraw() }
                default: continue
                }
            default:
                guard byte >= 32 else { continue }
                // A UTF-8 character may take more bytes.
                var bytes = [byte]
                let extra = byte >= 0xF0 ? 3 : byte >= 0xE0 ? 2 : byte >= 0xC0 ? 1 : 0
                for _ in 0..<extra { if let b = readByte() { bytes.append(b) } }
                for c in String(decoding: bytes, as: UTF8.self) { line.insert(c, at: cursor); cursor += 1 }
                redraw()
            }
        }
    }

    private func readByte() -> UInt8? {
        var b: UInt8 = 0
        return read(STDIN_FILENO, &b, 1) == 1 ? b : nil
    }

    private func write(_ s: String) { FileHandle.standardOutput.write(Data(s.utf8)) }
}
