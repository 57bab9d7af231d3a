#if canImport(Glibc)
import Glibc
#endif
import NIOCore
import ROMAProtocol
import ROMAStorage

/// ROMA's runtime setters that have an effect here (R9.1), relayed to every node as `r<cmd>`
/// with ROMA's reply hash (`{"<peer>"=>"STORED", …, "<this node>"=>"STORED"}`):
/// - `set_hilatency_warn_time <sec>` (default 5.0): a request whose reply took longer is logged
///   at warning level (`hilatency occurred in <cmd> put in a <s> seconds`, ROMA's words);
/// - `set_spushv_klength_warn <bytes>` (1024), `set_spushv_vlength_warn <bytes>` (1 MiB): a
///   record of a vnode stream received with a longer key or value is logged.
/// `stat` shows each. ROMA's error lines, with `\r\n` where some of ROMA's end in `\n\r`.
extension Dispatcher {
    /// The one argument of a runtime setter, or nil after ROMA's error line.
    func onlyArgument(_ r: Request, out: inout ByteBuffer) -> String? {
        guard r.count == 2 else {
            out.writeLine("CLIENT_ERROR number of arguments")
            return nil
        }
        return r.tokenString(1)
    }

    /// `arg.to_i` when it is at least 1, else nil after `message` (ROMA's check of a size or count).
    func positiveArgument(_ arg: String, _ message: String, out: inout ByteBuffer) -> Int? {
        let n = Dispatcher.rubyToI(arg)
        guard n >= 1 else {
            out.writeLine(message)
            return nil
        }
        return n
    }

    func runtimeSetter(_ command: Command, _ r: Request, out: inout ByteBuffer) -> Outcome {
        guard let arg = onlyArgument(r, out: &out) else { return .next }
        switch command {
        case .setHilatencyWarnTime, .rsetHilatencyWarnTime:
            let seconds = Dispatcher.rubyToF(arg)
            guard seconds > 0 else {
                out.writeLine("CLIENT_ERROR time value must be lager than 0")
                return .next
            }
            node.hilatencyWarnTime.store(seconds.bitPattern, ordering: .relaxed)
        default:
            guard let bytes = positiveArgument(arg, "CLIENT_ERROR size value must be larger than 0", out: &out) else { return .next }
            if command == .setSpushvKlengthWarn || command == .rsetSpushvKlengthWarn {
                node.spushvKlengthWarn.store(bytes, ordering: .relaxed)
            } else {
                node.spushvVlengthWarn.store(bytes, ordering: .relaxed)
            }
        }
        return answerOrRelay(command, own: "STORED", line: Dispatcher.relayLine(command, r), out: &out)
    }

    /// `switch_dns_caching on|true|off|false` (relayed as `rswitch_dns_caching`): `ENABLED`,
    /// `DISABLED`, or `NOTSWITCHED` for anything else (`PeerAddressCache`).
    func switchDnsCaching(_ command: Command, _ r: Request, out: inout ByteBuffer) -> Outcome {
        guard let arg = onlyArgument(r, out: &out) else { return .next }
        let own: String
        switch arg {
        case "on", "true":
            node.peers.addresses.set(true)
            own = "ENABLED"
        case "off", "false":
            node.peers.addresses.set(false)
            own = "DISABLED"
        default:
            own = "NOTSWITCHED"
        }
        if own != "NOTSWITCHED" { node.logger.info("DNS caching \(own == "ENABLED" ? "enabled" : "disabled")") }
        return answerOrRelay(command, own: own, line: Dispatcher.relayLine(command, r), out: &out)
    }

    /// `set_descriptor_table_size <n>` (relayed as `rset_descriptor_table_size`; n ≥ 1024): the
    /// process's open-file limit (soft, up to the hard limit) becomes n, as ROMA's
    /// `EM.set_descriptor_table_size`; `stat connection.descriptor_table_size` shows it.
    func setDescriptorTableSize(_ command: Command, _ r: Request, out: inout ByteBuffer) -> Outcome {
        guard let arg = onlyArgument(r, out: &out) else { return .next }
        let n = Dispatcher.rubyToI(arg)
        guard n >= 1024 else {
            out.writeLine("CLIENT_ERROR length must be greater than 1024")
            return .next
        }
        let got = Node.setOpenFileLimit(n, raiseOnly: false)
        node.logger.notice("\(command.name) \(arg): open-file limit \(got)")
        return answerOrRelay(command, own: "STORED", line: Dispatcher.relayLine(command, r), out: &out)
    }

    /// Ruby's `String#to_i` (saturating at Int's range).
    static func rubyToI(_ s: String) -> Int {
        let n = LenientInteger(parsing: Array(s.utf8))
        return n.negative ? -Int(clamping: n.low64) : Int(clamping: n.low64)
    }

    /// Ruby's `String#to_f`: the leading decimal number of `s` (after spaces; `_` between
    /// digits; fraction and exponent optional), 0 when there is none.
    static func rubyToF(_ s: String) -> Double {
        let b = Array(s.utf8)
        var i = 0
        while i < b.count, b[i] == 0x20 || (b[i] >= 0x09 && b[i] <= 0x0d) { i += 1 }
        var text = ""
        if i < b.count, b[i] == UInt8(ascii: "-") || b[i] == UInt8(ascii: "+") { text.append(Character(UnicodeScalar(b[i]))); i += 1 }
        func digits() -> Int {
            var n = 0
            while i < b.count, (b[i] >= 0x30 && b[i] <= 0x39) || (b[i] == UInt8(ascii: "_") && n > 0 && i + 1 < b.count && b[i + 1] >= 0x30 && b[i + 1] <= 0x39) {
                if b[i] != UInt8(ascii: "_") { text.append(Character(UnicodeScalar(b[i]))); n += 1 }
                i += 1
            }
            return n
        }
        guard digits() > 0 else { return 0 }
        if i + 1 < b.count, b[i] == UInt8(ascii: "."), b[i + 1] >= 0x30, b[i + 1] <= 0x39 {
            text.append("."); i += 1
            _ = digits()
        }
        if i < b.count, b[i] == UInt8(ascii: "e") || b[i] == UInt8(ascii: "E") {
            let save = (i, text)
            text.append("e"); i += 1
            if i < b.count, b[i] == UInt8(ascii: "-") || b[i] == UInt8(ascii: "+") { text.append(Character(UnicodeScalar(b[i]))); i += 1 }
            if digits() == 0 { (i, text) = save }
        }
        return Double(text) ?? 0
    }

    /// Ruby's `Float#to_s` for the values `stat` shows: `5.0`, `0.25`, `1.0e-05`.
    static func rubyFloat(_ v: Double) -> String {
        if v.isInfinite { return v > 0 ? "Infinity" : "-Infinity" }
        if v.isNaN { return "NaN" }
        if v == v.rounded(), abs(v) < 1e16 { return "\(Int64(v)).0" }
        var s = "\(v)"
        if let e = s.firstIndex(of: "e"), !s[..<e].contains(".") { s.insert(contentsOf: ".0", at: e) }
        return s
    }
}

extension Node {
    /// Logs a request whose reply took longer than `hilatency_warn_time` (ROMA's check).
    func noteLatency(_ command: Command?, since start: NIODeadline) {
        let limit = Double(bitPattern: hilatencyWarnTime.load(ordering: .relaxed))
        let seconds = Double((NIODeadline.now() - start).nanoseconds) / 1e9
        noteLatencyStatistics(command, seconds: seconds)
        guard seconds > limit else { return }
        logger.warning("hilatency occurred in \(command?.name ?? "a request") put in a \(seconds) seconds")
    }
}

extension Node {
    /// `RLIM_INFINITY` (Glibc's macro does not import into Swift: all ones).
    private static let unlimited = rlim_t.max

    /// The process's open-file limit (soft).
    static func openFileLimit() -> Int {
        var l = rlimit()
        guard getrlimit(Int32(RLIMIT_NOFILE.rawValue), &l) == 0 else { return 0 }
        return l.rlim_cur == unlimited ? Int.max : Int(clamping: l.rlim_cur)
    }

    /// Sets the soft open-file limit to `n`, at most the hard limit (never lower than now when
    /// `raiseOnly`); returns the limit now in force.
    @discardableResult
    static func setOpenFileLimit(_ n: Int, raiseOnly: Bool) -> Int {
        var l = rlimit()
        guard getrlimit(Int32(RLIMIT_NOFILE.rawValue), &l) == 0 else { return 0 }
        var want = rlim_t(max(0, n))
        if l.rlim_max != unlimited { want = min(want, l.rlim_max) }
        if raiseOnly && want <= l.rlim_cur { return openFileLimit() }
        l.rlim_cur = want
        _ = setrlimit(Int32(RLIMIT_NOFILE.rawValue), &l)
        return openFileLimit()
    }
}
