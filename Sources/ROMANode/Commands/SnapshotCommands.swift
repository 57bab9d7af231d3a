#if canImport(Glibc)
import Glibc
#endif
import NIOCore
import ROMAProtocol
import ROMARouting
import ROMAStorage

/// Safecopy commands (spec R7.10, R7.11). The slow halves (flush, cache merge) run on the
/// node's thread pool; the reply `PUSHED` only says the transition was made and the work queued.
extension Dispatcher {
    /// `set_storage_status <division> <safecopy|normal> [hash]`.
    func setStorageStatus(_ r: Request, out: inout ByteBuffer) -> Outcome {
        guard r.count >= 3 else {
            out.writeLine("CLIENT_ERROR number of arguments (\(r.count - 1) for 2)")
            return .next
        }
        let hashName = r.count >= 4 ? r.tokenString(3) : "roma"
        guard let storage = node.storage(hashName) else {
            out.writeLine("CLIENT_ERROR hash_name = \(hashName) does not found")
            return .next
        }
        // Extension: `all` (division nil) moves every division at once, one point-in-time cut
        // for `cpdb --consistent`; flushes and merges then run in parallel.
        var division: Int?
        if !r.token(1, is: "all") {
            let d: Int? = r.withToken(1) { t in
                guard !t.isEmpty, t.count <= 9, t.allSatisfy({ $0 >= 0x30 && $0 <= 0x39 }) else { return nil }
                return Int(String(decoding: t, as: UTF8.self))
            }
            guard let d else {
                out.writeLine("CLIENT_ERROR division must be a non-negative integer or all: \(r.tokenString(1))")
                return .next
            }
            guard d < storage.divnum else {
                out.writeLine("CLIENT_ERROR divnum <= \(d)")
                return .next
            }
            division = d
        }
        guard r.token(2, is: "safecopy") || r.token(2, is: "normal") else {
            out.writeLine("CLIENT_ERROR status parse error")
            return .next
        }
        return changeStorageStatus(storage, division: division, safecopy: r.token(2, is: "safecopy"))
    }

    /// The transition of one division (or of all, `division == nil`) on the thread pool, with
    /// ROMA's replies; then the flush or the cache cleaning of each division moved is queued.
    private func changeStorageStatus(_ storage: HashStorage, division: Int?, safecopy: Bool) -> Outcome {
        let label = division.map(String.init) ?? "all"
        let moved = division.map { [$0] } ?? Array(0..<storage.divnum)
        return offLoop { node in
            if safecopy {
                // A division a joining node's file seed holds comes back within seconds: it is
                // waited for (up to two minutes) instead of refused, so cpdb runs beside a join.
                let until = Node.monotonicNow() + 120
                do {
                    while true {
                        do {
                            if let division { try storage.beginSafecopy(division: division) } else { try storage.beginSafecopyAll() }
                            break
                        } catch HashStorage.SafecopyRefusal.notNormal(let i)
                            where node.isSeedSending(storage.name, division: i) && Node.monotonicNow() < until {
                            usleep(20_000)
                        }
                    }
                } catch HashStorage.SafecopyRefusal.notNormal(let i) {
                    return "CLIENT_ERROR storage[\(i)] != :normal status"
                } catch {
                    return "CLIENT_ERROR storage[\(label)] status can't changed"
                }
                for i in moved { node.startFlush(storage, i) }
            } else {
                do {
                    if let division { try storage.beginCacheCleaning(division: division) } else { try storage.beginCacheCleaningAll() }
                } catch HashStorage.SafecopyRefusal.notFlushed(let i) {
                    return "CLIENT_ERROR storage[\(i)] != :safecopy_flushed status"
                } catch {
                    return "CLIENT_ERROR storage[\(label)] status can't changed"
                }
                for i in moved { node.startCacheCleaning(storage, i) }
            }
            return "PUSHED"
        }
    }

    /// Runs a state change on the thread pool under SCHED_IDLE (it creates cache files) and
    /// replies with the line it returns; the connection waits, other connections do not.
    func offLoop(_ body: @escaping @Sendable (Node) -> String) -> Outcome {
        let node = self.node
        return .deferred(node.background(on: node.group.next()) { Dispatcher.line(body(node)) })
    }

    /// A one-line reply (`text` and CRLF), for a `.deferred` outcome's future.
    @Sendable static func line(_ text: String) -> ByteBuffer {
        var reply = ByteBuffer()
        reply.writeLine(text)
        return reply
    }

    /// `set_gui_run_snapshot <true|false>` → STORED.
    func setGuiRunSnapshot(_ r: Request, out: inout ByteBuffer) -> Outcome {
        guard r.count == 2 else {
            out.writeStaticString("CLIENT_ERROR number of arguments\n\r")
            return .next
        }
        if r.token(1, is: "true") {
            node.stats.guiRunSnapshot.store(true, ordering: .relaxed)
        } else if r.token(1, is: "false") {
            node.stats.guiRunSnapshot.store(false, ordering: .relaxed)
        } else {
            out.writeLine("CLIENT_ERROR value must be true or false")
            return .next
        }
        out.writeStaticString(Reply.stored)
        return .next
    }

    /// `set_gui_last_snapshot <%Y/%m/%dT%H:%M:%S>` → `{"<peer>"=>"PUSHED", …, "<self>"=>"PUSHED"}`,
    /// relayed to every node as `rset_gui_last_snapshot` (which answers `PUSHED`).
    func setGuiLastSnapshot(_ command: Command, _ r: Request, out: inout ByteBuffer) -> Outcome {
        guard r.count == 2 else {
            out.writeStaticString("CLIENT_ERROR number of arguments\n\r")
            return .next
        }
        let value = r.tokenString(1)
        guard Dispatcher.isSnapshotTime(value) else {
            out.writeLine("CLIENT_ERROR format is [%Y/%m/%dT%H:%M:%S]")
            return .next
        }
        node.stats.guiLastSnapshot.withLock { $0 = value }
        return answerOrRelay(command, own: "PUSHED", line: "rset_gui_last_snapshot \(value)\r\n", out: &out)
    }

    /// `^\d+/\d+/\d+T\d+:\d+:\d+$`.
    static func isSnapshotTime(_ s: String) -> Bool {
        let parts = s.split(separator: "T", omittingEmptySubsequences: false)
        guard parts.count == 2 else { return false }
        func digits(_ p: Substring, _ sep: Character) -> Bool {
            let f = p.split(separator: sep, omittingEmptySubsequences: false)
            return f.count == 3 && f.allSatisfy { !$0.isEmpty && $0.allSatisfy(\.isASCII) && $0.allSatisfy(\.isNumber) }
        }
        return digits(parts[0], "/") && digits(parts[1], ":")
    }
}
