#if canImport(Glibc)
import Glibc
#endif

/// Ruby's renderings of times that leak onto the wire.
enum RubyTime {
    /// `Time#to_s` in the server's local zone: `YYYY-MM-DD HH:MM:SS +ZZZZ`.
    static func string(unix: Int) -> String {
        var t = time_t(unix)
        var tmv = tm()
        localtime_r(&t, &tmv)
        var buf = [CChar](repeating: 0, count: 64)
        let n = strftime(&buf, buf.count, "%Y-%m-%d %H:%M:%S %z", &tmv)
        return String(decoding: buf[0..<n].map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }
}
