#if canImport(Glibc)
import Glibc
#endif

/// Local-time formats used by cpdb.
public enum Timestamp {
    /// Broken-down local time of `seconds` (UNIX time).
    static func local(_ seconds: Int) -> tm {
        var t = time_t(seconds)
        var out = tm()
        localtime_r(&t, &out)
        return out
    }

    static func p2(_ v: Int32) -> String { v < 10 ? "0\(v)" : "\(v)" }

    /// Current UNIX time in seconds.
    public static func now() -> Int { Int(time(nil)) }

    /// Current time with microseconds.
    public static func nowPrecise() -> Double {
        var tv = timeval()
        gettimeofday(&tv, nil)
        return Double(tv.tv_sec) + Double(tv.tv_usec) / 1e6
    }

    /// `YYYYMMDDhhmmss` (snapshot file suffix, ROMA's `%Y%m%d%H%M%S`).
    public static func compact(_ seconds: Int) -> String {
        let t = local(seconds)
        return "\(t.tm_year + 1900)\(p2(t.tm_mon + 1))\(p2(t.tm_mday))\(p2(t.tm_hour))\(p2(t.tm_min))\(p2(t.tm_sec))"
    }

    /// `YYYY/MM/DDThh:mm:ss` (`set_gui_last_snapshot` argument, ROMA's `%Y/%m/%dT%H:%M:%S`).
    public static func gui(_ seconds: Int) -> String {
        let t = local(seconds)
        return "\(t.tm_year + 1900)/\(p2(t.tm_mon + 1))/\(p2(t.tm_mday))T\(p2(t.tm_hour)):\(p2(t.tm_min)):\(p2(t.tm_sec))"
    }

    /// ISO 8601 local time with milliseconds and UTC offset, e.g. `2026-11-25T15:46:06.302+00:00`.
    public static func iso(_ time: Double) -> String {
        let secs = Int(time.rounded(.down))
        let ms = min(999, Int(((time - Double(secs)) * 1000).rounded(.down)))
        let t = local(secs)
        let off = Int(t.tm_gmtoff)
        let sign = off < 0 ? "-" : "+"
        let a = abs(off)
        let msText = ms < 10 ? "00\(ms)" : ms < 100 ? "0\(ms)" : "\(ms)"
        return "\(t.tm_year + 1900)-\(p2(t.tm_mon + 1))-\(p2(t.tm_mday))T\(p2(t.tm_hour)):\(p2(t.tm_min)):\(p2(t.tm_sec)).\(msText)"
            + "\(sign)\(p2(Int32(a / 3600))):\(p2(Int32(a % 3600 / 60)))"
    }

    /// True for exactly 14 ASCII digits.
    public static func isCompact(_ s: Substring) -> Bool {
        s.utf8.count == 14 && s.utf8.allSatisfy { $0 >= 0x30 && $0 <= 0x39 }
    }
}
