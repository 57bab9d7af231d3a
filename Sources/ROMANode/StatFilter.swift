#if canImport(Glibc)
import Glibc
#endif

/// The `stat <regexp>` filter (R3.15): Ruby's `key =~ /regexp/` on each stat name.
///
/// `stat` is polled (cpdb waits on `safecopy_stats`), so matching must be cheap: a pattern
/// without metacharacters is a substring search; anything else is compiled once per request with
/// POSIX extended regular expressions (Ruby's `\d`, `\D`, `\h` are translated first).
final class StatFilter {
    private enum Kind { case substring([UInt8]), regex(UnsafeMutablePointer<regex_t>) }
    private let kind: Kind

    /// nil when the pattern is not a valid regular expression.
    init?(_ pattern: String) {
        let meta = Set(".^$*+?()[]{}|\\".utf8)
        if !pattern.utf8.contains(where: { meta.contains($0) }) {
            kind = .substring(Array(pattern.utf8))
            return
        }
        let translated = StatFilter.translate(pattern)
        let re = UnsafeMutablePointer<regex_t>.allocate(capacity: 1)
        guard regcomp(re, translated, REG_EXTENDED | REG_NOSUB) == 0 else {
            re.deallocate()
            return nil
        }
        kind = .regex(re)
    }

    deinit {
        if case .regex(let re) = kind {
            regfree(re)
            re.deallocate()
        }
    }

    /// Whether `name` matches.
    func matches(_ name: String) -> Bool {
        switch kind {
        case .substring(let needle):
            if needle.isEmpty { return true }
            let hay = Array(name.utf8)
            guard hay.count >= needle.count else { return false }
            outer: for i in 0...(hay.count - needle.count) {
                for j in 0..<needle.count where hay[i + j] != needle[j] { continue outer }
                return true
            }
            return false
        case .regex(let re):
            return regexec(re, name, 0, nil, 0) == 0
        }
    }

    /// Ruby escapes POSIX ERE lacks.
    static func translate(_ p: String) -> String {
        var out = ""
        var escaped = false
        for ch in p {
            if escaped {
                switch ch {
                case "d": out += "[0-9]"
                case "D": out += "[^0-9]"
                case "h": out += "[0-9a-fA-F]"
                default: out += "\\" + String(ch)
                }
                escaped = false
            } else if ch == "\\" {
                escaped = true
            } else {
                out.append(ch)
            }
        }
        if escaped { out += "\\\\" }
        return out
    }
}
