import Foundation
import Testing
import SkeinData
import SkeinTestSupport

@Suite("CSV ingest: quoting, nulls, inference, and errors that say where")
struct CSVTests {
    @Test("Quotes, escaped quotes, embedded delimiters and newlines, empty fields")
    func quoting() throws {
        let text = "id,name,score\n1,\"Smith, J\",3.5\n2,\"say \"\"hi\"\"\",\n3,\"two\nlines\",-1e2\r\n4,,0.25\n"
        let t = try CSVReader.read(text: text).table
        #expect(t.fields == [Field("id", .int64), Field("name", .string), Field("score", .double)])
        #expect(t.rows == [
            [.int(1), .string("Smith, J"), .double(3.5)],
            [.int(2), .string("say \"hi\""), .null],
            [.int(3), .string("two\nlines"), .double(-100)],
            [.int(4), .null, .double(0.25)],
        ])
    }

    @Test("Schema given, '|' delimiter, no header, trailing delimiter (TPC-H .tbl)")
    func tbl() throws {
        var o = CSVOptions(delimiter: "|", header: false, schema: [Field("k", .int64), Field("price", .decimal(scale: 2)), Field("day", .date), Field("flag", .bool)])
        o.threads = 2
        let t = try CSVReader.read(text: "1|24386.67|1996-03-13|true|\n2|0.5|1996-02-29|f|\n", options: o).table
        #expect(t.rows.map { $0.map(\.description) } == [["1", "24386.67", "1996-03-13", "true"], ["2", "0.50", "1996-02-29", "false"]])
    }

    @Test("Inference: integers, doubles, dates, booleans, strings")
    func inference() throws {
        let t = try CSVReader.read(text: "a,b,c,d,e\n1,1.5,2020-01-02,true,x\n-7,2,2021-12-31,false,7\n").table
        #expect(t.types == [.int64, .double, .date, .bool, .string])
    }

    @Test("A wrong field count or a bad number names file, line, column and what was expected")
    func errors() throws {
        let schema = [Field("a", .int64), Field("b", .decimal(scale: 2))]
        let bad: [(String, String)] = [
            ("a,b\n1,2.50\n3\n", "t.csv:3:2: expected 2 fields"),
            ("a,b\n1,2.50\n3,4,5\n", "t.csv:3:4: expected 2 fields in column field 3, found 'more'"),
            ("a,b\n1,2.50\n3,x1\n", "t.csv:3:3: expected a decimal number in column 'b' (field 2), found 'x1'"),
            ("a,b\n1,2.50\n\"3,4\n", "expected a closing quote"),
            ("a,b\n12345678901234567890,1\n", "t.csv:2:1: expected an integer in column 'a' (field 1)"),
        ]
        for (text, message) in bad {
            var o = CSVOptions(schema: schema)
            o.threads = 1
            do {
                _ = try CSVReader.read(text: text, name: "t.csv", options: o)
                Issue.record("no error for \(text.debugDescription)")
            } catch let e as DataError {
                #expect(e.code == .malformedCSV && e.message.contains(message), "\(e.message) should contain \(message)")
            }
        }
    }

    @Test("Malformed rows can be skipped and counted instead")
    func skipping() throws {
        var o = CSVOptions(schema: [Field("a", .int64), Field("b", .string)], skipMalformed: true)
        o.threads = 1
        let r = try CSVReader.read(text: "a,b\n1,x\nzz,y\n3\n4,w\n", name: "t.csv", options: o)
        #expect(r.table.rows == [[.int(1), .string("x")], [.int(4), .string("w")]])
        #expect(r.skippedRows == 2)
        #expect(r.skippedErrors.first?.message.contains("t.csv:3:1") == true)
    }

    @Test("Parallel parsing of a large file equals sequential parsing; errors keep absolute lines", arguments: [UInt64(11), 12])
    func parallel(seed: UInt64) throws {
        var rng = SeededGenerator(seed: seed)
        var text = "k|v|s\n"
        var rows: [[Value]] = []
        for i in 0..<120_000 {
            let v = Int64(rng.next() % 100_000) - 50_000
            let s = String(repeating: "ab", count: Int(rng.next() % 5))
            text += "\(i)|\(v)|\(s)\n"
            rows.append([.int(Int64(i)), .int(v), s.isEmpty ? .null : .string(s)])
        }
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("skein-csv-\(seed).csv").path
        try text.write(toFile: path, atomically: true, encoding: .utf8)
        defer { try? FileManager.default.removeItem(atPath: path) }
        var o = CSVOptions(delimiter: "|")
        o.threads = 4
        o.parallelMinimumBytes = 1 << 16
        let t = try CSVReader.read(path: path, options: o).table
        #expect(t.rowCount == rows.count, "seed \(seed)")
        #expect(t.rows == rows, "seed \(seed)")
        // A bad value late in the file: its line is counted across the pieces before it.
        try (text + "oops|1|x\n").write(toFile: path, atomically: true, encoding: .utf8)
        #expect(throws: DataError.self) { try CSVReader.read(path: path, options: o) }
        do { _ = try CSVReader.read(path: path, options: o) } catch let e as DataError {
            #expect(e.message.contains(":\(rows.count + 2):1:"), "\(e.message)")
        }
    }

    @Test("Shards (one per rank) split at line ends and together hold every row once; a bad row keeps its absolute line",
          arguments: [(UInt64(13), 1), (14, 3), (15, 7)])
    func shards(seed: UInt64, count: Int) throws {
        var rng = SeededGenerator(seed: seed)
        var text = "k,s\n"
        var rows: [[Value]] = []
        for i in 0..<Int(rng.next() % 5000) {
            let s = String(repeating: "xy", count: Int(rng.next() % 6))
            text += "\(i),\(s)\n"
            rows.append([.int(Int64(i)), s.isEmpty ? .null : .string(s)])
        }
        let path = try scratchDirectory("skein-csv-shards") + "/t.csv"
        try text.write(toFile: path, atomically: true, encoding: .utf8)
        defer { try? FileManager.default.removeItem(atPath: (path as NSString).deletingLastPathComponent) }
        var o = CSVOptions()
        o.schema = [Field("k", .int64), Field("s", .string)]
        o.parallelMinimumBytes = 1 << 10
        var all: [[Value]] = []
        for k in 0..<count {
            o.shard = (k, count)
            all += try CSVReader.read(path: path, options: o).table.rows
        }
        #expect(all == rows, "seed \(seed), \(count) shards")
        // Quoted fields may hide line ends: shards then take every count-th row.
        try (text + "\"9\",\"q,\nuoted\"\n").write(toFile: path, atomically: true, encoding: .utf8)
        var quoted: [[Value]] = []
        for k in 0..<count {
            o.shard = (k, count)
            quoted += try CSVReader.read(path: path, options: o).table.rows
        }
        #expect(quoted.count == rows.count + 1, "seed \(seed), quoted, \(count) shards")
        // A bad row in the last shard names its line in the whole file.
        try (text + "oops,x\n").write(toFile: path, atomically: true, encoding: .utf8)
        o.shard = (count - 1, count)
        do {
            _ = try CSVReader.read(path: path, options: o)
            Issue.record("no error, seed \(seed)")
        } catch let e as DataError {
            #expect(e.message.contains(":\(rows.count + 2):1:"), "seed \(seed): \(e.message)")
        }
    }

    @Test("Writing CSV and reading it back gives the same table; the binary format too")
    func roundTrip() throws {
        var rng = SeededGenerator(seed: 21)
        let t = randomTable(&rng, rows: 300, keys: 9)
        let dir = FileManager.default.temporaryDirectory.path
        let csv = "\(dir)/skein-roundtrip.csv", bin = "\(dir)/skein-roundtrip.skein"
        defer { try? FileManager.default.removeItem(atPath: csv); try? FileManager.default.removeItem(atPath: bin) }
        try CSVWriter.write(t, to: csv)
        var o = CSVOptions(schema: t.fields)
        o.threads = 1
        let back = try CSVReader.read(path: csv, options: o).table
        #expect(sameRows(back.rows, t.rows, ordered: true))
        try ColumnarFile.write(t, to: bin)
        let loaded = try ColumnarFile.read(path: bin)
        #expect(loaded.fields == t.fields)
        #expect(sameRows(loaded.rows, t.rows, ordered: true))
    }
}
