import Foundation
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// ROMA's routing log files `<route file>.<n>` (spec R4.5): event formatting, parsing and replay.
public enum RoutingLog {
    /// A routing log event.
    public enum Event: Sendable, Equatable {
        /// `setroute <vn> <clk> <nid>…` (clk is the new clock; no nids = vnode lost).
        case setroute(vnode: UInt64, clock: Int, nodes: [String])
        /// `join <nid>`.
        case join(String)
        /// `leave <nid>`.
        case leave(String)

        /// The event text as written after the timestamp.
        public var text: String {
            var bytes: [UInt8] = []
            appendText(to: &bytes)
            return String(decoding: bytes, as: UTF8.self)
        }

        /// Appends `text`'s bytes to `out` (a log line's event, without building a string).
        public func appendText(to out: inout [UInt8]) {
            switch self {
            case let .setroute(vn, clk, nids):
                out.append(contentsOf: "setroute ".utf8)
                out.append(contentsOf: String(vn).utf8)
                out.append(UInt8(ascii: " "))
                out.append(contentsOf: String(clk).utf8)
                for n in nids {
                    out.append(UInt8(ascii: " "))
                    out.append(contentsOf: n.utf8)
                }
            case let .join(n):
                out.append(contentsOf: "join ".utf8)
                out.append(contentsOf: n.utf8)
            case let .leave(n):
                out.append(contentsOf: "leave ".utf8)
                out.append(contentsOf: n.utf8)
            }
        }

        /// Parses event text (`setroute …`, `join …`, `leave …`); throws like ROMA's `parse_log`.
        public init(text: some StringProtocol) throws(RoutingError) {
            let s = text.split(separator: " ", omittingEmptySubsequences: true)
            guard let verb = s.first else { throw .format("RoutingData.parse_log:parse error \(text)") }
            switch verb {
            case "setroute":
                guard s.count >= 3, let vn = UInt64(s[1]), let clk = Int(s[2]) else {
                    throw .format("RoutingData.parse_log:parse error \(text)")
                }
                let nids: [String] = s.dropFirst(3).map { String($0) }
                self = .setroute(vnode: vn, clock: clk, nodes: nids)
            case "join" where s.count >= 2: self = .join(String(s[1]))
            case "leave" where s.count >= 2: self = .leave(String(s[1]))
            default: throw .format("RoutingData.parse_log:parse error \(text)")
            }
        }
    }

    /// Rotation threshold: a new file is started once the current one exceeds this many bytes.
    public static let rotateSize = 1000 * 1024

    /// Formats a log line `YYYY-MM-DDTHH:MM:SS.<usec> <event>\n` in local time (usec not padded).
    public static func line(_ event: Event, seconds: Int, microseconds: Int) -> String {
        var bytes: [UInt8] = []
        appendLine(event, stamp: stamp(seconds: seconds, microseconds: microseconds), to: &bytes)
        return String(decoding: bytes, as: UTF8.self)
    }

    /// Appends `event`'s line to `out`: `stamp` (see `stamp(seconds:microseconds:)`), the event's
    /// text, a newline.
    public static func appendLine(_ event: Event, stamp: [UInt8], to out: inout [UInt8]) {
        out.append(contentsOf: stamp)
        event.appendText(to: &out)
        out.append(UInt8(ascii: "\n"))
    }

    /// `YYYY-MM-DDTHH:MM:SS.<usec> ` in local time (usec not padded): the start of every line
    /// written at that time.
    public static func stamp(seconds: Int, microseconds: Int) -> [UInt8] {
        var t = time_t(seconds)
        var tmv = tm()
        localtime_r(&t, &tmv)
        var out: [UInt8] = []
        out.reserveCapacity(32)
        func digits(_ v: Int32, _ width: Int) {
            let start = out.count
            var v = Int(v)
            repeat {
                out.append(UInt8(ascii: "0") + UInt8(v % 10))
                v /= 10
            } while v > 0 || out.count - start < width
            out[start...].reverse()
        }
        digits(tmv.tm_year + 1900, 4); out.append(UInt8(ascii: "-"))
        digits(tmv.tm_mon + 1, 2); out.append(UInt8(ascii: "-"))
        digits(tmv.tm_mday, 2); out.append(UInt8(ascii: "T"))
        digits(tmv.tm_hour, 2); out.append(UInt8(ascii: ":"))
        digits(tmv.tm_min, 2); out.append(UInt8(ascii: ":"))
        digits(tmv.tm_sec, 2); out.append(UInt8(ascii: "."))
        out.append(contentsOf: String(microseconds).utf8)
        out.append(UInt8(ascii: " "))
        return out
    }

    /// Formats a log line stamped with the current time.
    public static func line(_ event: Event) -> String {
        var tv = timeval()
        gettimeofday(&tv, nil)
        return line(event, seconds: Int(tv.tv_sec), microseconds: Int(tv.tv_usec))
    }

    /// Parses one log line: nil for comments, blank lines and lines without a timestamp; the
    /// timestamp fields (local time) and the event otherwise. Throws on an unknown event.
    public static func parse(line raw: some StringProtocol) throws(RoutingError)
        -> (date: (year: Int, month: Int, day: Int, hour: Int, minute: Int, second: Int), event: Event)? {
        var line = Substring(raw)
        while let l = line.last, l == "\n" || l == "\r" { line = line.dropLast() }
        if line.isEmpty || line.first == "#" { return nil }
        let u = Array(line.utf8)
        // YYYY-MM-DDTHH:MM:SS.<digits><space><event>
        guard u.count > 21 else { return nil }
        func num(_ r: Range<Int>) -> Int? {
            var v = 0
            for i in r {
                guard u[i] >= 0x30 && u[i] <= 0x39 else { return nil }
                v = v * 10 + Int(u[i] - 0x30)
            }
            return v
        }
        guard let y = num(0..<4), u[4] == UInt8(ascii: "-"), let mo = num(5..<7), u[7] == UInt8(ascii: "-"),
              let d = num(8..<10), u[10] == UInt8(ascii: "T"), let h = num(11..<13), u[13] == UInt8(ascii: ":"),
              let mi = num(14..<16), u[16] == UInt8(ascii: ":"), let s = num(17..<19), u[19] == UInt8(ascii: ".")
        else { return nil }
        var i = 20
        while i < u.count, u[i] >= 0x30, u[i] <= 0x39 { i += 1 }
        guard i > 20, i < u.count, u[i] == UInt8(ascii: " ") || u[i] == UInt8(ascii: "\t") else { return nil }
        let text = String(decoding: u[(i + 1)...], as: UTF8.self)
        guard !text.isEmpty else { return nil }
        let event = try Event(text: text)
        return ((y, mo, d, h, mi, s), event)
    }

    /// Log files of `routeFile` (`<routeFile>.<n>`), oldest first, as (n, path).
    public static func files(of routeFile: String) -> [(number: Int, path: String)] {
        let url = URL(fileURLWithPath: routeFile)
        let dir = url.deletingLastPathComponent().path
        let base = url.lastPathComponent
        guard let names = try? FileManager.default.contentsOfDirectory(atPath: dir) else { return [] }
        var out: [(Int, String)] = []
        for name in names where name.hasPrefix(base + ".") {
            let suffix = name.dropFirst(base.count + 1)
            guard !suffix.isEmpty, suffix.utf8.allSatisfy({ $0 >= 0x30 && $0 <= 0x39 }), let n = Int(suffix) else {
                continue
            }
            out.append((n, (dir as NSString).appendingPathComponent(name)))
        }
        return out.sorted { $0.0 < $1.0 }
    }
}

extension RoutingTable {
    /// Applies one replayed log event (ROMA's `parse_log`): `setroute` stores the list and clock
    /// as logged, `join`/`leave` edit `nodes` only. Call `finishReplay()` afterwards.
    public mutating func apply(_ event: RoutingLog.Event) throws(RoutingError) {
        switch event {
        case let .setroute(vn, clk, nids):
            guard space.isVnode(vn) else { throw .invalidVnode(vn) }
            forceRoute(vn: vn, clk: clk, nids: nids, updateTree: true)
        case let .join(nid): appendNodeUnsorted(nid)
        case let .leave(nid): removeFromNodes(nid)
        }
    }

    /// Re-sorts `nodes` after a replay.
    public mutating func finishReplay() { sortNodes() }

    /// Replays every event line of a log text (comments/blank/unstamped lines skipped).
    public mutating func replay(logText: String) throws(RoutingError) {
        for line in logText.split(separator: "\n", omittingEmptySubsequences: true) {
            if let (_, ev) = try RoutingLog.parse(line: line) { try apply(ev) }
        }
        sortNodes()
    }

    /// Reads a `.route` YAML snapshot (no log replay).
    public static func loadSnapshot(path: String) throws(RoutingError) -> RoutingTable {
        let text: String
        do {
            text = try String(contentsOfFile: path, encoding: .utf8)
        } catch {
            throw .io("cannot read \(path): \(error)")
        }
        return try RoutingTable(yaml: text)
    }

    /// Boot-time load (R4.5): the YAML snapshot, then every `<path>.<n>` log in numeric order.
    public static func load(path: String) throws(RoutingError) -> RoutingTable {
        var t = try loadSnapshot(path: path)
        for (_, f) in RoutingLog.files(of: path) {
            let text: String
            do {
                text = try String(contentsOfFile: f, encoding: .utf8)
            } catch {
                throw .io("cannot read \(f): \(error)")
            }
            try t.replay(logText: text)
        }
        t.sortNodes()
        return t
    }

    /// Writes the table as ROMA's YAML to `path` (atomically: temporary file + rename).
    public func save(path: String) throws(RoutingError) {
        do {
            try Data(yaml().utf8).write(to: URL(fileURLWithPath: path), options: .atomic)
        } catch {
            throw .io("cannot write \(path): \(error)")
        }
    }

    /// `ssroute`: folds all logs but the newest into a new snapshot, renaming the folded logs and
    /// the old snapshot with a `~` suffix. Returns false (nothing done) when fewer than 2 logs exist.
    @discardableResult
    public static func snapshot(path: String) throws(RoutingError) -> Bool {
        var t = try loadSnapshot(path: path)
        var logs = RoutingLog.files(of: path)
        if logs.count < 2 { return false }
        logs.removeLast()
        let fm = FileManager.default
        do {
            for (_, f) in logs {
                let text = try String(contentsOfFile: f, encoding: .utf8)
                try t.replay(logText: text)
            }
            for (_, f) in logs {
                try? fm.removeItem(atPath: f + "~")
                try fm.moveItem(atPath: f, toPath: f + "~")
            }
            try? fm.removeItem(atPath: path + "~")
            try fm.moveItem(atPath: path, toPath: path + "~")
        } catch let e as RoutingError {
            throw e
        } catch {
            throw .io("ssroute failed: \(error)")
        }
        try t.save(path: path)
        return true
    }
}

/// Appends routing events to `<route file>.<n>` with ROMA's file selection and rotation (R4.5).
///
/// Not thread-safe: keep it inside the actor/lock that owns the routing table.
public final class RoutingLogWriter {
    /// The `.route` snapshot path the log files belong to.
    public let routeFile: String
    /// Path of the log file currently appended to.
    public private(set) var currentPath: String
    private var handle: FileHandle
    private var size: Int

    /// Opens the log: reuses the newest `<routeFile>.<n>` if it is empty, else starts `n + 1`.
    public init(routeFile: String) throws(RoutingError) {
        self.routeFile = routeFile
        (currentPath, handle, size) = try Self.open(routeFile)
    }

    deinit { try? handle.close() }

    private static func open(_ routeFile: String) throws(RoutingError) -> (String, FileHandle, Int) {
        let files = RoutingLog.files(of: routeFile)
        let path: String
        if let last = files.last {
            let attrs = try? FileManager.default.attributesOfItem(atPath: last.path)
            let sz = (attrs?[.size] as? NSNumber)?.intValue ?? 0
            path = sz == 0 ? last.path : "\(routeFile).\(last.number + 1)"
        } else {
            path = "\(routeFile).1"
        }
        let fm = FileManager.default
        if !fm.fileExists(atPath: path) { _ = fm.createFile(atPath: path, contents: nil) }
        guard let h = FileHandle(forWritingAtPath: path) else { throw .io("cannot open \(path)") }
        let end: UInt64
        do { end = try h.seekToEnd() } catch { throw .io("cannot seek \(path): \(error)") }
        return (path, h, Int(end))
    }

    /// Appends `event` with the current timestamp, rotating first if the file exceeds the limit.
    public func write(_ event: RoutingLog.Event) throws(RoutingError) {
        try write([event])
    }

    /// Appends `events` in one write (a commit of many vnodes makes one line each), stamped with
    /// the current time, rotating first if the file exceeds the limit.
    public func write(_ events: [RoutingLog.Event]) throws(RoutingError) {
        guard !events.isEmpty else { return }
        var tv = timeval()
        gettimeofday(&tv, nil)
        // One stamp for all of them (they happen at once), then each event's bytes.
        let stamp = RoutingLog.stamp(seconds: Int(tv.tv_sec), microseconds: Int(tv.tv_usec))
        var bytes: [UInt8] = []
        bytes.reserveCapacity(events.count * (stamp.count + 64))
        for e in events { RoutingLog.appendLine(e, stamp: stamp, to: &bytes) }
        try write(bytes: bytes)
    }

    /// Appends a preformatted line (must end with `\n`), rotating first if needed.
    public func write(line: String) throws(RoutingError) {
        try write(bytes: Array(line.utf8))
    }

    private func write(bytes: [UInt8]) throws(RoutingError) {
        if size > RoutingLog.rotateSize {
            try? handle.close()
            (currentPath, handle, size) = try Self.open(routeFile)
        }
        do { try handle.write(contentsOf: bytes) } catch { throw .io("cannot write \(currentPath): \(error)") }
        size += bytes.count
    }

    /// Flushes and closes the current file; the writer must not be used afterwards.
    public func close() { try? handle.close() }
}
