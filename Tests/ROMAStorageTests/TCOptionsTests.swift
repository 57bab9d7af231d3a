import Testing
@testable import ROMAStorage

@Suite("TokyoCabinet option string (R6.3)")
struct TCOptionsTests {
    private func error(_ text: String) -> String? {
        do { _ = try TCOptions(parsing: text); return nil } catch let e as StorageError { return e.message } catch { return "\(error)" }
    }

    @Test("empty option string means TC defaults")
    func empty() throws {
        let o = try TCOptions(parsing: "")
        #expect(o == TCOptions())
        #expect(o.bnum == -1 && o.apow == -1 && o.fpow == -1 && o.opts == "")
        #expect(o.xmsiz == nil && o.rcnum == nil && o.dfunit == nil)
    }

    @Test("all names parsed; source kept")
    func allNames() throws {
        let text = "bnum=5000000#apow=4#fpow=10#opts=ld#xmsiz=268435456#rcnum=1000#dfunit=10"
        let o = try TCOptions(parsing: text)
        #expect(o.bnum == 5_000_000)
        #expect(o.apow == 4)
        #expect(o.fpow == 10)
        #expect(o.opts == "ld")
        #expect(o.xmsiz == 268_435_456)
        #expect(o.rcnum == 1000)
        #expect(o.dfunit == 10)
        #expect(o.source == text)
    }

    @Test("mkconfig's suggestion parses")
    func mkconfig() throws {
        let o = try TCOptions(parsing: "bnum=1000#xmsiz=2000#opts=d#dfunit=10")
        #expect(o.bnum == 1000 && o.xmsiz == 2000 && o.opts == "d" && o.dfunit == 10)
    }

    @Test("opts letters", arguments: ["l", "d", "b", "t", "ldbt"])
    func optsLetters(letters: String) throws {
        #expect(try TCOptions(parsing: "opts=\(letters)").opts == letters)
    }

    @Test("unknown option name: ROMA's message", arguments: [
        ("foo=1", "Syntax error, unexpected option foo"),
        ("bnum=1#capnum=5", "Syntax error, unexpected option capnum"),
        ("BNUM=1", "Syntax error, unexpected option BNUM"),
    ])
    func unknownOption(text: String, expected: String) {
        #expect(error(text) == expected)
    }

    @Test("malformed item: ROMA's message", arguments: ["bnum", "bnum=", "=5", "bnum=1#xmsiz", "bnum=abc"])
    func malformed(text: String) {
        #expect(error(text) == "Option string parse error.")
    }
}
