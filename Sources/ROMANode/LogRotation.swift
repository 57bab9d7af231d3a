import Synchronization

#if canImport(Glibc)
import Glibc
#endif

/// Rotation of a daemon's log file `<LOG_PATH>/<nid>.log` (ROMA's `LOG_SHIFT_SIZE` and
/// `LOG_SHIFT_AGE`, changed at run time by `set_log_shift_size` / `set_log_shift_age`), checked
/// before each line is written, as Ruby's Logger does:
/// - age n > 0: once the file is larger than the size, `<file>.0` … are shifted up by one, the
///   file becomes `<file>.0` and a new one is opened; n files are kept in all (`.0` … `.n-2`);
///   age 0: never rotated;
/// - `min`, `hour`, `daily`, `weekly` (weeks begin on Sunday), `monthly`: once the file was last
///   written in an earlier period, it becomes `<file>.<YYYYMMDDHHMM>`, the end of that period in
///   local time (ROMA names it one period earlier), never overwriting an older file.
/// Without a log file (romad in the foreground logs to stderr) nothing rotates; the settings are
/// kept and shown.
public enum LogRotation {
    public enum Age: Equatable, Sendable {
        case count(Int)
        case period(String)

        public init?(_ s: String) {
            if let n = Int(s), n >= 0 { self = .count(n); return }
            guard ["min", "hour", "daily", "weekly", "monthly"].contains(s) else { return nil }
            self = .period(s)
        }

        var description: String {
            switch self {
            case .count(let n): return String(n)
            case .period(let p): return p
            }
        }
    }

    private struct State {
        var path: String?
        var size = 10_485_760
        var age = Age.count(10)
    }

    private static let state = Mutex(State())
    /// A log file is open: lines check for rotation first.
    private static let active = Atomic<Bool>(false)

    /// The log file (already open on stdout and stderr), and the settings.
    public static func configure(path: String?, size: Int, age: String) {
        state.withLock {
            $0.path = path
            $0.size = size
            $0.age = Age(age) ?? .count(10)
        }
        active.store(path != nil, ordering: .releasing)
    }

    static func setSize(_ n: Int) { state.withLock { $0.size = n } }
    static func setAge(_ a: Age) { state.withLock { $0.age = a } }
    static var size: Int { state.withLock { $0.size } }
    static var ageDescription: String { state.withLock { $0.age.description } }

    /// Before a line is written: rotates the file when it is due.
    static func beforeWrite() {
        guard active.load(ordering: .acquiring) else { return }
        state.withLock { s in
            guard let path = s.path else { return }
            var st = stat()
            guard fstat(2, &st) == 0 else { return }
            switch s.age {
            case .count(let n):
                guard n > 0, Int(st.st_size) > s.size else { return }
                // Shift the files there are (an age of a billion must not mean a billion renames).
                var last = -1
                while last + 1 <= n - 3, access("\(path).\(last + 1)", F_OK) == 0 { last += 1 }
                if last >= 0 {
                    for i in stride(from: last, through: 0, by: -1) { rename("\(path).\(i)", "\(path).\(i + 1)") }
                }
                reopen(path, movingTo: "\(path).0")
            case .period(let p):
                let end = periodEnd(before: time(nil), p)
                guard Int(st.st_mtim.tv_sec) <= end else { return }
                var target = "\(path).\(stamp(end))"
                var k = 1
                while access(target, F_OK) == 0 {
                    target = "\(path).\(stamp(end)).\(k)"
                    k += 1
                }
                reopen(path, movingTo: target)
            }
        }
    }

    /// Renames the log file and opens a new one in its place on stdout and stderr.
    private static func reopen(_ path: String, movingTo target: String) {
        guard rename(path, target) == 0 else { return }
        let fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0o644)
        guard fd >= 0 else { return }
        dup2(fd, 1)
        dup2(fd, 2)
        close(fd)
    }

    /// The end (last second, local time) of the period before the one `now` is in.
    static func periodEnd(before now: time_t, _ period: String) -> Int {
        func local(_ t: time_t) -> tm {
            var t = t
            var out = tm()
            localtime_r(&t, &out)
            return out
        }
        func endOfDay(_ t: time_t) -> Int {
            var x = local(t)
            x.tm_hour = 23; x.tm_min = 59; x.tm_sec = 59; x.tm_isdst = -1
            return Int(mktime(&x))
        }
        let day: time_t = 86_400
        switch period {
        case "min":
            var x = local(now - 60)
            x.tm_sec = 59; x.tm_isdst = -1
            return Int(mktime(&x))
        case "hour":
            var x = local(now - 3600)
            x.tm_min = 59; x.tm_sec = 59; x.tm_isdst = -1
            return Int(mktime(&x))
        case "daily": return endOfDay(now - day)
        case "weekly": return endOfDay(now - time_t(local(now).tm_wday + 1) * day)
        case "monthly": return endOfDay(now - time_t(local(now).tm_mday) * day)
        default: return Int(now)
        }
    }

    /// `%Y%m%d%H%M` in local time.
    static func stamp(_ t: Int) -> String {
        var x = time_t(t)
        var out = tm()
        localtime_r(&x, &out)
        func two(_ v: Int32) -> String { v < 10 ? "0\(v)" : String(v) }
        return "\(out.tm_year + 1900)\(two(out.tm_mon + 1))\(two(out.tm_mday))\(two(out.tm_hour))\(two(out.tm_min))"
    }
}
