import Foundation
import Testing
@testable import ROMAStorage

@Suite("status.log (R7.9)")
struct StatusLogTests {
    static let linePattern = #"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{1,6} \d+ (normal|safecopy_flushing|safecopy_flushed|cachecleaning)"#

    private func matchesLine(_ line: String) -> Bool {
        (try? Regex(Self.linePattern).wholeMatch(in: line)) != nil
    }

    @Test("timestamp is YYYY-MM-DDTHH:MM:SS.<usec> (usec not padded)")
    func timestamp() throws {
        let re = try Regex(#"(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2}):(\d{2})\.(\d{1,6})"#)
        for _ in 0..<50 {
            let t = StatusLog.timestamp()
            let m = try #require(try re.wholeMatch(in: t), "\(t)")
            let usec = try #require(m.output[7].substring)
            #expect(usec == "0" || !usec.hasPrefix("0"), "usec is printed like Ruby Time#usec: \(t)")
            #expect(Int(usec)! < 1_000_000)
        }
        // local date matches the C library's idea of today
        var now = time(nil)
        var tmv = tm()
        localtime_r(&now, &tmv)
        let year = Int(StatusLog.timestamp().prefix(4))!
        #expect(abs(year - Int(tmv.tm_year + 1900)) <= 1)
    }

    @Test("a full cycle logs four lines in order; each line has the exact format")
    func cycleLines() throws {
        let dir = TempDir("slog")
        defer { dir.remove() }
        let s = try openStorage(.tc, dir: dir)
        defer { try? s.close() }
        #expect(s.statusLogPath == dir.file("status.log.1"))
        #expect(dir.exists("status.log.1"))
        #expect(dir.text("status.log.1") == "")
        try s.beginSafecopy(division: 3)
        try s.flush(division: 3)
        try s.beginCacheCleaning(division: 3)
        try s.cleanCache(division: 3)
        let text = try #require(dir.text("status.log.1"))
        #expect(text.hasSuffix("\n"))
        let lines = statusLines(text)
        #expect(lines.count == 4)
        for l in lines { #expect(matchesLine(l), "\(l)") }
        #expect(statusEvents(text) == ["3 safecopy_flushing", "3 safecopy_flushed", "3 cachecleaning", "3 normal"])
        // timestamps are non-decreasing
        let stamps = lines.map { String($0.split(separator: " ")[0]) }
        let keys = stamps.map { s -> (String, Int) in
            let parts = s.split(separator: ".")
            return (String(parts[0]), Int(parts[1])!)
        }
        for i in 1..<keys.count {
            #expect(keys[i - 1].0 < keys[i].0 || (keys[i - 1].0 == keys[i].0 && keys[i - 1].1 <= keys[i].1))
        }
    }

    @Test("the memory engine writes no status log")
    func memoryHasNoLog() throws {
        let s = try openStorage(.memory, dir: nil)
        try s.beginSafecopy(division: 0)
        try s.flush(division: 0)
        #expect(s.statusLogPath == nil)
        try s.close()
    }

    @Test("record appends lines to status.log.1 and survives reopen")
    func appendAcrossReopen() throws {
        let dir = TempDir("slog2")
        defer { dir.remove() }
        do {
            let log = try StatusLog(directory: dir.path)
            log.record(division: 0, state: .safecopyFlushing)
            log.record(division: 12, state: .normal)
        }
        let log = try StatusLog(directory: dir.path)
        log.record(division: 1, state: .cachecleaning)
        #expect(log.currentPath == dir.file("status.log.1"))
        let text = dir.text("status.log.1")
        #expect(statusEvents(text) == ["0 safecopy_flushing", "12 normal", "1 cachecleaning"])
        for l in statusLines(text) { #expect(matchesLine(l)) }
    }

    @Test("the newest status.log.<n> is used")
    func newestNumber() throws {
        let dir = TempDir("slog3")
        defer { dir.remove() }
        dir.write("status.log.2", "old\n")
        dir.write("status.log.10", "")
        dir.write("status.log.x", "")
        dir.write("status.log.", "")
        #expect(StatusLog.newestNumber(in: dir.path) == 10)
        let log = try StatusLog(directory: dir.path)
        log.record(division: 4, state: .safecopyFlushed)
        #expect(log.currentPath == dir.file("status.log.10"))
        #expect(statusEvents(dir.text("status.log.10")) == ["4 safecopy_flushed"])
        #expect(dir.text("status.log.2") == "old\n")
        #expect(StatusLog.newestNumber(in: dir.path + "/missing") == nil)
    }

    @Test("rotation: a file above 1000 KiB makes the next line go to status.log.<n+1>")
    func rotation() throws {
        let dir = TempDir("slog4")
        defer { dir.remove() }
        dir.write("status.log.1", String(repeating: "x", count: StatusLog.rotateBytes + 1))
        let log = try StatusLog(directory: dir.path)
        log.record(division: 0, state: .normal)
        #expect(log.currentPath == dir.file("status.log.2"))
        #expect(statusEvents(dir.text("status.log.2")) == ["0 normal"])
        #expect(dir.bytes("status.log.1")?.count == StatusLog.rotateBytes + 1)
        log.record(division: 1, state: .normal)
        #expect(statusEvents(dir.text("status.log.2")) == ["0 normal", "1 normal"])
    }

    @Test("concurrent records produce whole lines")
    func concurrentRecords() throws {
        let dir = TempDir("slog5")
        defer { dir.remove() }
        let log = try StatusLog(directory: dir.path)
        DispatchQueue.concurrentPerform(iterations: 8) { t in
            for _ in 0..<50 { log.record(division: t, state: .safecopyFlushed) }
        }
        let lines = statusLines(dir.text("status.log.1"))
        #expect(lines.count == 400)
        for l in lines { #expect(matchesLine(l), "\(l)") }
    }
}
