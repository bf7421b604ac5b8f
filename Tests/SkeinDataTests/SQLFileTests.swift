import Foundation
import Testing
import SkeinData

/// Runs the SQL cases in SQL/*.test (see the header of basics.test for the format).
@Suite("SQL cases as data files")
struct SQLFileTests {
    static let directory = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("SQL")

    static var files: [String] {
        ((try? FileManager.default.contentsOfDirectory(atPath: directory.path)) ?? []).filter { $0.hasSuffix(".test") }.sorted()
    }

    @Test("Each case of each file", arguments: files)
    func run(file: String) throws {
        let text = try String(contentsOf: Self.directory.appendingPathComponent(file), encoding: .utf8)
        let blocks = text.components(separatedBy: "\n\n").map { $0.split(separator: "\n").map(String.init).filter { !$0.hasPrefix("#") } }
        let db = Database(threads: 2, morselRows: 3)
        var cases = 0
        for block in blocks where !block.isEmpty {
            let head = block[0]
            if head.hasPrefix("table ") {
                var options = CSVOptions()
                options.threads = 1
                let csv = block.dropFirst().joined(separator: "\n") + "\n"
                db.register(try CSVReader.read(text: csv, options: options).table, as: String(head.dropFirst(6)))
            } else if head.hasPrefix("query") {
                guard let sep = block.firstIndex(of: "----") else { Issue.record("\(file): no ---- in \(block)"); continue }
                let sql = block[1..<sep].joined(separator: "\n")
                var want = Array(block[(sep + 1)...])
                var got = try db.sql(sql).rows.map { $0.map(\.description).joined(separator: "|") }
                if head.contains("rowsort") { got.sort(); want.sort() }
                #expect(got == want, "\(file): \(sql)")
                cases += 1
            } else if head.hasPrefix("error ") {
                let sql = block.dropFirst().joined(separator: "\n")
                let expected = String(head.dropFirst(6))
                do {
                    _ = try db.sql(sql)
                    Issue.record("\(file): no error for \(sql)")
                } catch let e as DataError {
                    #expect(e.message.contains(expected), "\(file): \(sql) gave \(e.message)")
                }
                cases += 1
            }
        }
        #expect(cases > 0, "\(file) has no cases")
    }
}
