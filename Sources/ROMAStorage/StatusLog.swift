#if canImport(Glibc)
import Glibc
#endif

/// The division state log `status.log.<n>` (spec R7.9), one line per transition:
/// `YYYY-MM-DDTHH:MM:SS.<usec> <division> <state>` in local time, usec not zero-padded.
///
/// Unlike ROMA 1.3 it really rotates: when the newest file exceeds `rotateBytes`
/// the next line goes to `status.log.<n+1>`. A line is written with one `write` (so it
/// survives a crash of the process); it is not fsynced line by line: an fsync forces a journal
/// commit of the whole filesystem, which stalled the node's own writes for 1–3 ms per line
/// during a snapshot (4 lines per division). The file is fsynced when it is rotated and when
/// the storage closes (`sync`). The log is the operator's record; recovery never depends on it.
public final class StatusLog: @unchecked Sendable {
    // @unchecked Sendable: `fd` and `number` are only touched inside `lock`.
    public static let rotateBytes = 1000 * 1024

    private let directory: String
    private let lock = PthreadMutex()
    private var fd: Int32 = -1
    private var number: Int

    /// Opens the newest `status.log.<n>` in `directory` (creating `status.log.1` when none exists).
    public init(directory: String) throws {
        self.directory = directory
        number = StatusLog.newestNumber(in: directory) ?? 1
        try openCurrent()
    }

    deinit { if fd >= 0 { Glibc.close(fd) } }

    /// Highest n among `status.log.<n>` files in `directory`.
    public static func newestNumber(in directory: String) -> Int? {
        var best: Int?
        for name in FileSystem.list(directory) where name.hasPrefix("status.log.") {
            if let n = Int(name.dropFirst("status.log.".count)), n > 0, n > (best ?? 0) { best = n }
        }
        return best
    }

    /// Path of the file lines currently go to.
    public var currentPath: String { lock.withLock { "\(directory)/status.log.\(number)" } }

    private func openCurrent() throws {
        let p = "\(directory)/status.log.\(number)"
        fd = open(p, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0o644)
        if fd < 0 { throw StorageError("cannot open \(p): \(String(cString: strerror(errno)))") }
    }

    /// Appends one transition line (one `write`, no fsync).
    public func record(division: Int, state: SafecopyState) {
        let line = "\(StatusLog.timestamp()) \(division) \(state.name)\n"
        lock.withLock {
            var st = stat()
            if fstat(fd, &st) == 0, Int(st.st_size) > StatusLog.rotateBytes {
                _ = fsync(fd)
                Glibc.close(fd)
                number += 1
                try? openCurrent()
            }
            guard fd >= 0 else { return }
            let bytes = Array(line.utf8)
            _ = bytes.withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
        }
    }

    /// fsyncs the current file (at close; off the event loop).
    public func sync() {
        lock.withLock { if fd >= 0 { _ = fsync(fd) } }
    }

    /// `YYYY-MM-DDTHH:MM:SS.<usec>` in local time, the usec part without padding (Ruby `Time#usec`).
    public static func timestamp() -> String {
        var tv = timeval()
        gettimeofday(&tv, nil)
        var t = tv.tv_sec
        var tmv = tm()
        localtime_r(&t, &tmv)
        func p2(_ v: Int32) -> String { v < 10 ? "0\(v)" : "\(v)" }
        return "\(tmv.tm_year + 1900)-\(p2(tmv.tm_mon + 1))-\(p2(tmv.tm_mday))T\(p2(tmv.tm_hour)):\(p2(tmv.tm_min)):\(p2(tmv.tm_sec)).\(tv.tv_usec)"
    }
}
