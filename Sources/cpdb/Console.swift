import ROMAStorage
import Synchronization

#if canImport(Glibc)
import Glibc
#endif

/// Set by SIGINT/SIGTERM; polled between steps so that cpdb can put divisions back to normal.
let interruptSignal = Atomic<Int32>(0)

/// Installs the SIGINT/SIGTERM handlers (a second signal kills cpdb the default way) and
/// ignores SIGPIPE (a closed stdout must not kill cpdb while a division is in safecopy).
func installSignalHandlers() {
    signal(SIGPIPE, SIG_IGN)
    let handler: @convention(c) (Int32) -> Void = { sig in
        interruptSignal.store(sig, ordering: .relaxed)
        signal(sig, SIG_DFL)
    }
    signal(SIGINT, handler)
    signal(SIGTERM, handler)
}

/// True once SIGINT/SIGTERM arrived.
var interrupted: Bool { interruptSignal.load(ordering: .relaxed) != 0 }

/// Unbuffered output to stdout/stderr, plus the progress line on a terminal.
///
/// `@unchecked Sendable`: every mutable field is guarded by `lock`; copy threads report
/// progress concurrently.
final class Console: @unchecked Sendable {
    /// ROMA-style lines go to stdout unless `--json` (then stdout carries only the summary).
    let romaLinesOnStdout: Bool
    let progressEnabled: Bool
    private let lock = PthreadMutex()
    private var progressShown = false
    private var total: UInt64 = 0
    private var done: UInt64 = 0
    private var startTime = 0.0
    private var lastDraw = 0.0

    init(romaLinesOnStdout: Bool, progress: Bool) {
        self.romaLinesOnStdout = romaLinesOnStdout
        progressEnabled = progress
    }

    static func write(_ fd: Int32, _ text: String) {
        let bytes = Array(text.utf8)
        bytes.withUnsafeBytes { raw in
            var off = 0
            while off < raw.count {
                let n = Glibc.write(fd, raw.baseAddress! + off, raw.count - off)
                if n < 0 { if errno == EINTR { continue }; return }
                off += n
            }
        }
    }

    /// A ROMA-compatible output fragment (no newline added).
    func roma(_ text: String) {
        guard romaLinesOnStdout else { return }
        lock.withLock {
            clearProgressLocked()
            Console.write(1, text)
        }
    }

    /// A ROMA-compatible error line: stdout like ROMA, or stderr in `--json` mode.
    func romaError(_ line: String) {
        lock.withLock {
            clearProgressLocked()
            Console.write(romaLinesOnStdout ? 1 : 2, line + "\n")
        }
    }

    /// A diagnostic line on stderr, prefixed `cpdb: `.
    func note(_ line: String) {
        lock.withLock {
            clearProgressLocked()
            Console.write(2, "cpdb: \(line)\n")
        }
    }

    /// Text on stdout regardless of mode (summaries, verify/restore output).
    func out(_ text: String) {
        lock.withLock {
            clearProgressLocked()
            Console.write(1, text)
        }
    }

    // MARK: - Progress (stderr, terminals only)

    func startProgress(totalBytes: UInt64) {
        lock.withLock {
            total = totalBytes
            done = 0
            startTime = monotonicSeconds()
            lastDraw = 0
        }
    }

    /// Adds copied bytes; redraws at most 10 times a second.
    func progress(_ bytes: Int) {
        guard progressEnabled else { return }
        lock.withLock {
            done += UInt64(bytes)
            let now = monotonicSeconds()
            if now - lastDraw < 0.1 && done < total { return }
            lastDraw = now
            let elapsed = max(now - startTime, 0.001)
            let rate = Double(done) / elapsed
            let eta = rate > 0 && total > done ? Double(total - done) / rate : 0
            let pct = total > 0 ? Int(Double(done) * 100 / Double(total)) : 100
            let line = "\rcpdb: \(Console.bytes(done)) / \(Console.bytes(total)) (\(pct)%)  \(Console.bytes(UInt64(rate)))/s  ETA \(Console.duration(eta))\u{1b}[K"
            Console.write(2, line)
            progressShown = true
        }
    }

    func finishProgress() { lock.withLock { clearProgressLocked() } }

    private func clearProgressLocked() {
        if progressShown {
            Console.write(2, "\r\u{1b}[K")
            progressShown = false
        }
    }

    static func bytes(_ n: UInt64) -> String {
        let units = ["B", "KiB", "MiB", "GiB", "TiB"]
        var v = Double(n)
        var u = 0
        while v >= 1024 && u < units.count - 1 { v /= 1024; u += 1 }
        if u == 0 { return "\(n) B" }
        let tenths = Int((v * 10).rounded())
        return "\(tenths / 10).\(tenths % 10) \(units[u])"
    }

    static func duration(_ s: Double) -> String {
        let t = Int(s.rounded(.up))
        return t >= 3600 ? "\(t / 3600):\(p2(t % 3600 / 60)):\(p2(t % 60))" : "\(t / 60):\(p2(t % 60))"
    }

    static func p2(_ v: Int) -> String { v < 10 ? "0\(v)" : "\(v)" }
}
