import Testing
@testable import ROMAProtocol

private func bytes(_ s: String) -> [UInt8] { Array(s.utf8) }

private func suggestionReply(_ tok: [UInt8], _ best: String) -> [UInt8] {
    bytes("\r\nERROR: '") + tok + bytes("' is not roma command.\r\nDid you mean this?\r\n\t\(best)\r\n")
}

private func unknownReply(_ tok: [UInt8]) -> [UInt8] {
    bytes("ERROR: '") + tok
        + bytes("' is not roma command. Please check command.\r\n(closing telnet connection command is 'quit')\r\n")
}

@Suite("JaroWinklerTests")
struct JaroWinklerTests {
    // Expected doubles printed with %.17g from the real gem (ruby-jaro-winkler 1.5.4, C ext).
    @Test("similarity matches the jaro_winkler gem exactly", arguments: [
        ("MARTHA", "MARHTA", 0.96111111111111114),
        ("DWAYNE", "DUANE", 0.84000000000000008),
        ("DIXON", "DICKSONX", 0.81333333333333324),
        ("sett", "set", 0.94166666666666665),
        ("verbosity", "version", 0.84999999999999998),
        ("set", "rset", 0.91666666666666663),
        ("get", "getroute", 0.85416666666666663),
        ("a", "a", 1.0),
        ("a", "b", 0.0),
        ("ab", "ba", 0.0),
        ("abc", "cab", 0.0),
        ("", "set", 0.0),
        ("s", "set", 0.79999999999999993),
        ("set", "s", 0.79999999999999993),
        ("CRATE", "TRACE", 0.73333333333333339),
        ("abcdef", "fedcba", 0.38888888888888884),
        ("xsetx", "set", 0.8666666666666667),
    ])
    func gemValues(a: String, b: String, expected: Double) {
        #expect(JaroWinkler.similarity(bytes(a), bytes(b)) == expected)
    }

    @Test func classicValuesApproximately() {
        #expect(abs(JaroWinkler.similarity("MARTHA", "MARHTA") - 0.9611) < 1e-4)
        #expect(abs(JaroWinkler.similarity("DWAYNE", "DUANE") - 0.84) < 1e-4)
        #expect(abs(JaroWinkler.similarity("DIXON", "DICKSONX") - 0.8133) < 1e-4)
    }

    @Test func jaroOnly() {
        #expect(JaroWinkler.jaro(bytes("MARTHA"), bytes("MARHTA")) == 0.94444444444444453)
        #expect(JaroWinkler.jaro(bytes("DIXON"), bytes("DICKSONX")) == 0.76666666666666661)
    }

    @Test func caseSensitiveAndBytewise() {
        #expect(JaroWinkler.similarity("SET", "set") == 0.0)
        // Non-ASCII bytes count one by one (ROMA's token is a binary Ruby string).
        #expect(JaroWinkler.similarity([0x73, 0xFF, 0x74, 0x74], bytes("stat")) == 0.85000000000000009)
    }

    // MARK: - transcript cases (protocol-transcript.md rows 58, 59, 68-70, starting mode)

    @Test func foobarIsNotSimilar() {
        let tok = bytes("foobar")
        #expect(UnknownCommand.reply(for: tok, commands: ROMACommandNames.normalMode) == unknownReply(tok))
        #expect(UnknownCommand.reply(for: tok, commands: ROMACommandNames.normalMode)
            == bytes("ERROR: 'foobar' is not roma command. Please check command.\r\n(closing telnet connection command is 'quit')\r\n"))
    }

    @Test func settSuggestsSet() {
        #expect(UnknownCommand.reply(for: bytes("sett"), commands: ROMACommandNames.normalMode)
            == bytes("\r\nERROR: 'sett' is not roma command.\r\nDid you mean this?\r\n\tset\r\n"))
    }

    @Test func memcachedOnlyCommands() {
        let list = ROMACommandNames.normalMode
        #expect(!list.contains("verbosity"))
        #expect(UnknownCommand.reply(for: bytes("verbosity"), commands: list)
            == bytes("\r\nERROR: 'verbosity' is not roma command.\r\nDid you mean this?\r\n\tversion\r\n"))
        #expect(UnknownCommand.reply(for: bytes("flush_all"), commands: list) == unknownReply(bytes("flush_all")))
        #expect(UnknownCommand.reply(for: bytes("touch"), commands: list) == unknownReply(bytes("touch")))
        // Transcript row 47/52: data lines parsed as commands.
        #expect(UnknownCommand.reply(for: bytes("ok"), commands: list) == unknownReply(bytes("ok")))
        #expect(UnknownCommand.reply(for: bytes("c"), commands: list) == unknownReply(bytes("c")))
    }

    @Test func startingMode() {
        let list = ROMACommandNames.startingMode
        #expect(UnknownCommand.reply(for: bytes("set"), commands: list) == suggestionReply(bytes("set"), "rset"))
        #expect(UnknownCommand.reply(for: bytes("get"), commands: list) == suggestionReply(bytes("get"), "getroute"))
        #expect(UnknownCommand.reply(for: bytes("bar"), commands: list) == unknownReply(bytes("bar")))
    }

    // MARK: - probed on a real ROMA 1.3.0 (same setup as the reference transcript)

    @Test func edgeTokens() {
        let list = ROMACommandNames.normalMode
        // 1 - 0.79999999999999993 is not < 0.2
        #expect(UnknownCommand.suggestion(for: bytes("s"), commands: list) == nil)
        #expect(UnknownCommand.reply(for: [], commands: list) == unknownReply([]))
        #expect(UnknownCommand.suggestion(for: bytes("st"), commands: list) == "stat")
        #expect(UnknownCommand.suggestion(for: bytes("ge"), commands: list) == "get")
        #expect(UnknownCommand.suggestion(for: bytes("sets"), commands: list) == "set")
        #expect(UnknownCommand.suggestion(for: bytes("xset"), commands: list) == "set")
        #expect(UnknownCommand.suggestion(for: bytes("Sett"), commands: list) == nil)
        #expect(UnknownCommand.suggestion(for: bytes("SETT"), commands: list) == nil)
        #expect(UnknownCommand.suggestion(for: bytes("\tset"), commands: list) == "set")
        #expect(UnknownCommand.suggestion(for: bytes("set") + [0], commands: list) == "set")
        #expect(UnknownCommand.suggestion(for: bytes("sett\rx"), commands: list) == "set")
        // The gem reads past the end of "get" here; the real server gave no suggestion.
        #expect(UnknownCommand.suggestion(for: bytes("get" + String(repeating: "x", count: 20)), commands: list) == nil)
        // Raw bytes are echoed as typed.
        let binary: [UInt8] = [0x73, 0xFF, 0x74, 0x74]
        #expect(UnknownCommand.reply(for: binary, commands: list) == suggestionReply(binary, "stat"))
        let utf8 = bytes("sétt")
        #expect(UnknownCommand.reply(for: utf8, commands: list) == unknownReply(utf8))
        #expect(UnknownCommand.suggestion(for: bytes("set") + [0xC3, 0xA9], commands: list) == "set")
        #expect(UnknownCommand.suggestion(for: [0xE3, 0x81, 0x82], commands: list) == nil)
    }

    // Tokens where several commands tie for the best score, so the order of the
    // table decides. Answers recorded from a real ROMA 1.3.0 without instrumentation.
    // "rset_accepte" and "rset_ssize_of_zredundant" would get "rset" if the
    // lists were in source order.
    @Test("ties in normal mode follow ROMA's table order", arguments: [
        ("et_expt", "set_expt"),
        ("etroute", "setroute"),
        ("etuorteg", "setroute"),
        ("etuortes", "setroute"),
        ("fet", "fset"),
        ("fset_e", "fset"),
        ("gest", "get"),
        ("radd_laten", "radd_rttable_sub_nid"),
        ("rd", "rdcnice"),
        ("rr", "rrecover"),
        ("rre", "rrecover"),
        ("rset_accepte", "rset_accepted_connection_expire_time"),
        ("rset_los", "rset_lost_action"),
        ("rset_spush", "rset_spushv_read_timeout"),
        ("rset_spush_vlength_warn", "rset_spushv_klength_warn"),
        ("rset_spushv", "rset_spushv_read_timeout"),
        ("rset_spushv_", "rset_spushv_read_timeout"),
        ("rset_spushv_length_warn", "rset_spushv_klength_warn"),
        ("rset_spushv_r", "rset_spushv_read_timeout"),
        ("set_gap", "set_gap_for_failover"),
        ("set_spus", "set_spushv_read_timeout"),
        ("set_spush", "set_spushv_read_timeout"),
        ("set_spush_vlength_warn", "set_spushv_klength_warn"),
        ("set_spushv", "set_spushv_read_timeout"),
        ("set_spushv_", "set_spushv_read_timeout"),
        ("set_spushv_length_warn", "set_spushv_klength_warn"),
        ("set_spushv_r", "set_spushv_read_timeout"),
        ("stast", "stats"),
    ])
    func tiesNormal(token: String, expected: String) {
        #expect(UnknownCommand.suggestion(for: bytes(token), commands: ROMACommandNames.normalMode) == expected)
    }

    @Test("ties in starting mode follow ROMA's table order", arguments: [
        ("etroute", "setroute"),
        ("etuorteg", "setroute"),
        ("etuortes", "setroute"),
        ("radd_laten", "radd_rttable_sub_nid"),
        ("rr", "rrecover"),
        ("rre", "rrecover"),
        ("rset_accepte", "rset_accepted_connection_expire_time"),
        ("rset_los", "rset_lost_action"),
        ("rset_spush", "rset_spushv_read_timeout"),
        ("rset_spush_vlength_warn", "rset_spushv_klength_warn"),
        ("rset_spushv", "rset_spushv_read_timeout"),
        ("rset_spushv_", "rset_spushv_read_timeout"),
        ("rset_spushv_length_warn", "rset_spushv_klength_warn"),
        ("rset_spushv_r", "rset_spushv_read_timeout"),
        ("rset_ssize_of_zredundant", "rset_spushv_read_timeout"),
        ("set_e_xpt", "set_spushv_read_timeout"),
        ("set_ex_pt", "set_spushv_read_timeout"),
        ("set_expts", "set_spushv_read_timeout"),
        ("set_ext", "set_spushv_read_timeout"),
        ("set_ga", "set_gap_for_failover"),
        ("set_gap", "set_gap_for_failover"),
        ("set_h", "set_wb_shift_size"),
        ("set_hi", "set_wb_shift_size"),
        ("set_sexpt", "set_spushv_read_timeout"),
        ("set_si", "set_wb_shift_size"),
        ("set_siz", "set_wb_shift_size"),
        ("set_size", "set_wb_shift_size"),
        ("set_sp", "set_spushv_read_timeout"),
        ("set_spu", "set_spushv_read_timeout"),
        ("set_spus", "set_spushv_read_timeout"),
        ("set_spush", "set_spushv_read_timeout"),
        ("set_spush_vlength_warn", "set_spushv_klength_warn"),
        ("set_spushv", "set_spushv_read_timeout"),
        ("set_spushv_", "set_spushv_read_timeout"),
        ("set_spushv_length_warn", "set_spushv_klength_warn"),
        ("set_spushv_r", "set_spushv_read_timeout"),
        ("set_xpt", "set_spushv_read_timeout"),
        ("stast", "stats"),
    ])
    func tiesStarting(token: String, expected: String) {
        #expect(UnknownCommand.suggestion(for: bytes(token), commands: ROMACommandNames.startingMode) == expected)
    }

    // MARK: - command lists

    @Test func commandLists() {
        let start = ROMACommandNames.startingMode
        let normal = ROMACommandNames.normalMode
        #expect(start.count == 111)
        #expect(normal.count == 149)
        #expect(Set(start).count == start.count)
        #expect(Set(normal).count == normal.count)
        #expect(Array(normal.prefix(start.count)) == start)
        #expect(Set(ROMACommandNames.joinMode) == Set(normal))
        #expect(ROMACommandNames.joinMode.count == normal.count)
        for c in ["set", "get", "gets", "delete", "incr", "decr", "cas", "set_expt", "get_expt",
                  "add", "replace", "append", "prepend", "hashlist", "defhash", "createhash"] {
            #expect(normal.contains(c) && !start.contains(c), "\(c)")
        }
        for c in ["version", "quit", "whoami", "stat", "stats", "nodelist", "rset", "getroute",
                  "set_storage_status", "set_gui_run_snapshot", "balse", "shutdown_self"] {
            #expect(start.contains(c), "\(c)")
        }
        #expect(start.first == "nodelist")
        #expect(start.last == "set_latency_avg_calc_rule")
        #expect(normal.last == "rdeletehash")
    }
}

@Suite struct SuggestionExclusionTests {
    @Test func neverSuggestsTheWordTyped() {
        for name in ROMACommandNames.normalMode {
            #expect(UnknownCommand.suggestion(for: Array(name.utf8), commands: ROMACommandNames.normalMode) != name)
        }
        #expect(UnknownCommand.suggestion(for: Array("out".utf8), commands: ["out", "put"]) == nil || UnknownCommand.suggestion(for: Array("out".utf8), commands: ["out", "put"]) == "put")
    }
}
