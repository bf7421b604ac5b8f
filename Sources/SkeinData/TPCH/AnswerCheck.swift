import Foundation

/// Compares a query result with a reference answer written by another engine as '|'-separated
/// text with a header (DuckDB's COPY … TO). Numbers match to a relative 1e-9 (decimals are exact
/// here; averages are doubles in both engines); everything else matches as text.
public enum AnswerCheck {
    /// nil when the result matches; otherwise what differs first.
    public static func mismatch(_ result: Table, expected text: String) -> String? {
        var lines = text.split(separator: "\n", omittingEmptySubsequences: true).map(String.init)
        guard !lines.isEmpty else { return "the reference answer is empty" }
        lines.removeFirst()
        let rows = lines.map { $0.split(separator: "|", omittingEmptySubsequences: false).map(String.init) }
        if rows.count != result.rowCount { return "\(result.rowCount) rows, expected \(rows.count)" }
        for (i, expected) in rows.enumerated() {
            let got = result.row(i)
            if got.count != expected.count { return "row \(i + 1): \(got.count) columns, expected \(expected.count)" }
            for (c, (g, e)) in zip(got, expected).enumerated() where !same(g, e) {
                return "row \(i + 1), column \(result.fields[c].name): \(g), expected \(e)"
            }
        }
        return nil
    }

    static func same(_ v: Value, _ text: String) -> Bool {
        if v.isNull { return text.isEmpty || text == "NULL" }
        if let x = v.doubleValue, let y = Double(text) {
            return x == y || abs(x - y) <= 1e-9 * max(1, abs(y))
        }
        var t = text
        if t.count >= 2, t.hasPrefix("\""), t.hasSuffix("\"") { t = String(t.dropFirst().dropLast()).replacingOccurrences(of: "\"\"", with: "\"") }
        return v.description == t
    }
}
