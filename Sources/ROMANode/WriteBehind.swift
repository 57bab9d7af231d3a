import Dispatch
import NIOConcurrencyHelpers
import NIOCore
import ROMAStorage
import Synchronization

#if canImport(Glibc)
import Glibc
#endif

/// Write-behind (R10.1): the writes this node executes as primary, for the operations named in
/// `wb_command_map` (config `WB_COMMAND_MAP`), appended to
/// `<WRITEBEHIND_PATH>/<nid>/<hash>/<YYYYMMDD>/<n>.wb` as ROMA writes them:
/// `u32 time, u16 code, u32 klen, key, u32 vlen, value`, big-endian. `<op>__prev` codes log the
/// value before the write. A file is closed (and the next write opens `<n+1>.wb`) when it
/// reaches `shift_size` bytes, at the next local midnight, or on `writebehind_rotate <hash>`.
///
/// Events are queued by the request path and written, in order, by one serial queue off the
/// event loops; `writebehind_rotate` and `writebehind_get_current_file` take their turn in the
/// same queue, so a rotation closes a file holding every write acknowledged before it. Unlike
/// ROMA's (buffered Ruby `File#write`), each event is handed to the kernel when written.
final class WriteBehind: Sendable {
    /// The operations ROMA's `wb_command_map` can name.
    static let operations: Set<String> = ["set", "add", "replace", "append", "prepend", "cas", "incr", "decr",
                                          "delete", "set_expt"]

    let root: String
    let nodeID: String
    /// Some operation is mapped: the request path looks no further when not.
    let isOn = Atomic<Bool>(false)
    private let map = NIOLockedValueBox<[(name: String, code: Int)]>([])
    private let queue = DispatchQueue(label: "write-behind")
    private let files: NIOLockedValueBox<Files>

    private struct Files {
        var shiftSize: Int
        var open: [String: OpenFile] = [:]
        /// Hash names in the order their files were opened (for `stat`).
        var order: [String] = []
    }

    private struct OpenFile {
        let fd: Int32
        let path: String
        var size: Int
        /// The local midnight after it was opened: each hash's file has its own (ROMA shares
        /// one time across hashes, spec §11 item 14).
        let rotateAt: Int
    }

    init(root: String, nodeID: String, shiftSize: Int, map: [(String, Int)]) {
        self.root = root
        self.nodeID = nodeID
        files = NIOLockedValueBox(Files(shiftSize: shiftSize))
        setMap(map)
    }

    // MARK: - The map

    /// `{:set=>1, :delete=>3}` as ROMA reads it (`s[1..-1].join`, then `k=>v` pairs split at
    /// commas; a key must start with `:`; values `to_i`); nil when it is not `{…}`.
    static func parseMap(_ text: String) -> [(String, Int)]? {
        guard text.count >= 3, text.first == "{", text.last == "}" else { return nil }
        var out: [(String, Int)] = []
        for kv in text.dropFirst().dropLast().split(separator: ",", omittingEmptySubsequences: false) {
            let parts = kv.components(separatedBy: "=>")
            guard parts.count >= 2, parts[0].first == ":" else { continue }
            let name = String(parts[0].dropFirst())
            let code = Dispatcher.rubyToI(parts[1])
            if let i = out.firstIndex(where: { $0.0 == name }) { out[i].1 = code } else { out.append((name, code)) }
        }
        return out
    }

    func setMap(_ m: [(String, Int)]) {
        map.withLockedValue { $0 = m.map { (name: $0.0, code: $0.1) } }
        isOn.store(!m.isEmpty, ordering: .releasing)
    }

    /// `stats.wb_command_map`: Ruby's inspect of the symbol hash.
    var mapInspect: String {
        "{" + map.withLockedValue { $0 }.map { ":\($0.name)=>\($0.code)" }.joined(separator: ", ") + "}"
    }

    /// The code of `op`, or of `op__prev` when `previous`; nil when not mapped.
    func code(_ op: String, previous: Bool = false) -> UInt16? {
        guard isOn.load(ordering: .relaxed) else { return nil }
        let name = previous ? op + "__prev" : op
        return map.withLockedValue { m in m.first { $0.name == name }.map { UInt16(truncatingIfNeeded: $0.code) } }
    }

    // MARK: - Writing

    /// Queues one event of hash `hash`.
    func push(hash: String, code: UInt16, key: [UInt8], value: [UInt8]) {
        let now = UInt32(truncatingIfNeeded: time(nil))
        queue.async { [self] in write(hash: hash, time: now, code: code, key: key, value: value) }
    }

    private func write(hash: String, time t: UInt32, code: UInt16, key: [UInt8], value: [UInt8]) {
        var record: [UInt8] = []
        record.reserveCapacity(14 + key.count + value.count)
        func be32(_ v: UInt32) { record += [UInt8(v >> 24), UInt8(v >> 16 & 0xff), UInt8(v >> 8 & 0xff), UInt8(v & 0xff)] }
        be32(t)
        record += [UInt8(code >> 8), UInt8(code & 0xff)]
        be32(UInt32(truncatingIfNeeded: key.count))
        record += key
        be32(UInt32(truncatingIfNeeded: value.count))
        record += value
        files.withLockedValue { f in
            let now = Int(time(nil))
            if let o = f.open[hash], o.size >= f.shiftSize || now >= o.rotateAt {
                close(o.fd)
                f.open[hash] = nil
            }
            if f.open[hash] == nil {
                guard let o = openFile(hash) else { return }
                f.open[hash] = o
                if !f.order.contains(hash) { f.order.append(hash) }
            }
            let fd = f.open[hash]!.fd
            let n = record.withUnsafeBytes { p -> Int in
                var done = 0
                while done < p.count {
                    let w = Glibc.write(fd, p.baseAddress! + done, p.count - done)
                    if w < 0 { if errno == EINTR { continue }; return done }
                    done += w
                }
                return done
            }
            f.open[hash]!.size += n
        }
    }

    /// Opens `<root>/<nid>/<hash>/<today>/<n>.wb`, n one past the highest there, to be rotated at
    /// the coming local midnight.
    private func openFile(_ hash: String) -> OpenFile? {
        var now = time(nil)
        var lt = tm()
        localtime_r(&now, &lt)
        func two(_ v: Int32) -> String { v < 10 ? "0\(v)" : String(v) }
        let day = "\(lt.tm_year + 1900)\(two(lt.tm_mon + 1))\(two(lt.tm_mday))"
        var midnight = lt
        midnight.tm_hour = 0; midnight.tm_min = 0; midnight.tm_sec = 0; midnight.tm_mday += 1; midnight.tm_isdst = -1
        let rotateAt = Int(mktime(&midnight))
        let dir = "\(hashPath(hash))/\(day)"
        guard (try? FileSystem.makeDirectories(dir)) != nil else { return nil }
        var highest = -1
        for name in FileSystem.list(dir) where name.hasSuffix(".wb") {
            if let n = Int(name.dropLast(3)), n > highest { highest = n }
        }
        let path = "\(dir)/\(highest + 1).wb"
        let fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0o644)
        guard fd >= 0 else { return nil }
        return OpenFile(fd: fd, path: path, size: 0, rotateAt: rotateAt)
    }

    /// `writebehind_get_path <hash>`.
    func hashPath(_ hash: String) -> String { "\(root)/\(nodeID)/\(hash)" }

    /// `writebehind_rotate <hash>`: closes the open file after every event queued before; false
    /// when none was open (`NOT_OPEND`).
    func rotate(_ hash: String, then: @escaping @Sendable (Bool) -> Void) {
        queue.async { [self] in
            let closed = files.withLockedValue { f -> Bool in
                guard let o = f.open.removeValue(forKey: hash) else { return false }
                close(o.fd)
                return true
            }
            then(closed)
        }
    }

    /// `writebehind_get_current_file <hash>`: the open file, after every event queued before.
    func currentFile(_ hash: String, then: @escaping @Sendable (String?) -> Void) {
        queue.async { [self] in then(files.withLockedValue { $0.open[hash]?.path }) }
    }

    var shiftSize: Int {
        get { files.withLockedValue { $0.shiftSize } }
    }

    func setShiftSize(_ n: Int) { files.withLockedValue { $0.shiftSize = n } }

    /// `stat` lines of the files (ROMA's `write-behind.*`).
    func statLines() -> [(String, String)] {
        files.withLockedValue { f in
            var l: [(String, String)] = [("write-behind.path", root), ("write-behind.shift_size", String(f.shiftSize)),
                                         ("write-behind.do_write", "false")]
            for h in f.order {
                guard let o = f.open[h] else { continue }
                l.append(("write-behind[\(h)].path", o.path))
                l.append(("write-behind[\(h)].size", String(o.size)))
            }
            return l
        }
    }

    /// Waits for the queued events and closes every file (node shutdown).
    func closeAll() {
        queue.sync {
            files.withLockedValue { f in
                for o in f.open.values { close(o.fd) }
                f.open = [:]
            }
        }
    }
}
