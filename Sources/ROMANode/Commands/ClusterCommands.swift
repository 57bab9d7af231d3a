import CZlib
import NIOCore
import ROMAProtocol
import ROMARouting
import ROMAStorage

#if canImport(Glibc)
import Glibc
#endif

/// Commands nodes send each other: forwarded reads (R5.1), replica writes (R5.2), `out` (R6.1)
/// and the routing commands (R4.6, R4.8, R5.14).
extension Dispatcher {
    /// `fget <key-token>`: answered here when this node holds the vnode (R5.1).
    func fget(_ r: Request, session: Session, out: inout ByteBuffer) throws -> Outcome {
        guard r.count >= 2 else { out.writeStaticString(Reply.wrongArguments); return .next }
        guard checkKey(r, 1, out: &out) else { return .next }
        let route = self.route()
        let k = keyRoute(r, 1, session, route)
        guard route.readsLocal[k.index] else {
            out.writeLine("SERVER_ERROR Routing table is inconsistent.")
            return .next
        }
        node.stats.countRead()
        let now = Dispatcher.now()
        let result = try withKey(r, 1, session) { storage, key, vn in
            try storage.get(vn: vn, key: key, now: now) { _, value in
                r.withToken(1) { token in out.writeValue(key: token, data: value, cas: nil) }
            }
        }
        if case .noHash(let h) = result {
            out.writeLine("SERVER_ERROR \(h) does not exists.")
            return .next
        }
        out.writeStaticString(Reply.end)
        return .next
    }

    /// The key token of a replica command: key, hash (default: the connection's) and vnode,
    /// from the digest when it is given and not 0 (R5.2), else from the key.
    private func replicaKey(_ r: Request, digestToken: Int?, session: Session) -> (key: [UInt8], hash: String, vn: UInt32) {
        r.withToken(1) { token in
            var key = token
            var hash = session.defaultHash
            if let esc = token.firstIndex(of: 0x1b) {
                key = UnsafeRawBufferPointer(rebasing: token[..<esc])
                hash = String(decoding: token[(esc + 1)...], as: UTF8.self)
            }
            // The sender's digest decides the vnode; the key's own only without one (or 0).
            var vn: UInt64?
            if let t = digestToken, t < r.count {
                let d = lenientInt(r, t)
                if !d.negative && d.low64 != 0 { vn = node.space.vnode(ofDigest: d.low64 & node.space.digestMask) }
            }
            return (Array(key), hash, UInt32(truncatingIfNeeded: vn ?? node.space.vnode(ofKey: key)))
        }
    }

    /// `rset <key>\x1B<h> <d> <clk> <expt> <len>` + data, and `rzset` (zlib-compressed data):
    /// a replica write, accepted under R2.8. `STORED` | `NOT_STORED` | `SERVER_ERROR <h> does not exists.`
    func rset(_ r: Request, compressed: Bool, session: Session, out: inout ByteBuffer) throws -> Outcome {
        let (key, hash, vn) = replicaKey(r, digestToken: 2, session: session)
        guard let storage = storage(named: hash) else {
            out.writeLine("SERVER_ERROR \(hash) does not exists.")
            return .next
        }
        node.stats.redundantCount.add(1, ordering: .relaxed)
        let clock = UInt32(truncatingIfNeeded: lenientInt(r, 3).low64)
        let expire = UInt32(truncatingIfNeeded: lenientInt(r, 4).low64)
        var data = r.data!
        if compressed {
            guard let plain = Dispatcher.inflate(data, limit: node.config.limits.maxValueSize) else {
                out.writeStaticString(Reply.notStored)
                return .next
            }
            data = plain
        }
        let stored = try key.withUnsafeBytes { k in
            try data.withUnsafeReadableBytes { v in
                try storage.replicaSet(vn: vn, key: k, value: v, clock: clock, expire: expire, now: Dispatcher.now())
            }
        }
        guard stored else {
            out.writeStaticString(Reply.notStored)
            return .next
        }
        return try relay(key: key, hash: hash, vn: vn, digest: lenientInt(r, 2).low64, storage: storage, reply: Reply.stored, out: &out)
    }

    /// A replica write stored here goes on to `RouteSnapshot.relays` (release from a secondary,
    /// R5.11), and its reply waits for them as a primary's does for its replicas.
    private func relay(key: [UInt8], hash: String, vn: UInt32, digest: UInt64, storage: HashStorage,
                       reply: StaticString, out: inout ByteBuffer) throws -> Outcome {
        let route = self.route()
        let index = route.space.index(ofVnode: UInt64(vn))
        guard index < route.relays.count, !route.relays[index].isEmpty else {
            out.writeStaticString(reply)
            return .next
        }
        let d = digest & node.space.digestMask
        let k = KeyRoute(key: key, hash: hash, digest: d != 0 ? d : key.withUnsafeBytes { route.space.digest(ofKey: $0) },
                         vnode: UInt64(vn), index: index)
        var b = ByteBuffer()
        b.writeStaticString(reply)
        return try replicate(k, storage: storage, to: route.relays[index][...], reply: b)
    }

    /// `rdelete <key>\x1B<h> <clk>`: a replica delete mark (R2.8). `DELETED` | `NOT_FOUND`.
    func rdelete(_ r: Request, session: Session, out: inout ByteBuffer) throws -> Outcome {
        guard r.count >= 3 else { out.writeStaticString(Reply.wrongArguments); return .next }
        let (key, hash, vn) = replicaKey(r, digestToken: nil, session: session)
        guard let storage = storage(named: hash) else {
            out.writeLine("SERVER_ERROR \(hash) does not exists.")
            return .next
        }
        node.stats.redundantCount.add(1, ordering: .relaxed)
        let clock = UInt32(truncatingIfNeeded: lenientInt(r, 2).low64)
        let done = try key.withUnsafeBytes { try storage.replicaDelete(vn: vn, key: $0, clock: clock, now: Dispatcher.now()) }
        guard done else {
            out.writeStaticString(Reply.notFound)
            return .next
        }
        return try relay(key: key, hash: hash, vn: vn, digest: 0, storage: storage, reply: Reply.deleted, out: &out)
    }

    /// `out <key>\x1B<h> [vn]`: removes the record physically (R6.1). `DELETED` | `NOT_DELETED`.
    func outCommand(_ r: Request, session: Session, out: inout ByteBuffer) throws -> Outcome {
        guard r.count >= 2 else { out.writeStaticString(Reply.wrongArguments); return .next }
        var (key, hash, vn) = replicaKey(r, digestToken: nil, session: session)
        if r.count >= 3 {
            let v = lenientInt(r, 2)
            if !v.negative && node.space.isVnode(v.low64) { vn = UInt32(truncatingIfNeeded: v.low64) }
        }
        guard let storage = storage(named: hash) else {
            out.writeLine("SERVER_ERROR \(hash) does not exists.")
            return .next
        }
        node.stats.outCount.add(1, ordering: .relaxed)
        let done = try key.withUnsafeBytes { try storage.out(vn: vn, key: $0) }
        out.writeLine(done ? "DELETED" : "NOT_DELETED")
        return .next
    }

    /// zlib (RFC 1950) inflate of `data`, nil when it is not a valid stream or inflates past `limit`.
    static func inflate(_ data: ByteBuffer, limit: Int) -> ByteBuffer? {
        var input = Array(data.readableBytesView)
        var output = [UInt8](repeating: 0, count: max(64, min(limit, input.count * 4 + 64)))
        var stream = z_stream()
        guard inflateInit_(&stream, ZLIB_VERSION, Int32(MemoryLayout<z_stream>.size)) == Z_OK else { return nil }
        defer { inflateEnd(&stream) }
        var produced = 0
        let status: Int32 = input.withUnsafeMutableBufferPointer { inp in
            stream.next_in = inp.baseAddress
            stream.avail_in = uInt(inp.count)
            while true {
                if produced == output.count {
                    if output.count >= limit { return Z_BUF_ERROR }
                    output.append(contentsOf: [UInt8](repeating: 0, count: min(output.count, limit - output.count)))
                }
                let rc: Int32 = output.withUnsafeMutableBufferPointer { o in
                    stream.next_out = o.baseAddress! + produced
                    stream.avail_out = uInt(o.count - produced)
                    let rc = CZlib.inflate(&stream, Z_NO_FLUSH)
                    produced = o.count - Int(stream.avail_out)
                    return rc
                }
                if rc == Z_STREAM_END { return Z_STREAM_END }
                if rc != Z_OK { return rc }
            }
        }
        guard status == Z_STREAM_END else { return nil }
        var b = ByteBuffer()
        b.writeBytes(output[0..<produced])
        return b
    }

    /// `set_size_of_zredundant <n>` (broadcast as `rset_size_of_zredundant`): replica values longer
    /// than n bytes go as `rzset` (0 = never).
    func sizeOfZredundant(_ command: Command, _ r: Request, out: inout ByteBuffer) -> Outcome {
        let v = r.count == 2 ? lenientInt(r, 1) : nil
        guard let v, !v.negative, v.low64 != 0 || r.token(1, is: "0"), v.magnitude.count <= 1 else {
            out.writeLine("usage:set_set_size_of_zredundant <n>")
            return .next
        }
        let n = Int(clamping: v.low64)
        node.stats.sizeOfZredundant.store(n, ordering: .relaxed)
        return answerOrRelay(command, own: "STORED", line: "rset_size_of_zredundant \(n)\r\n", out: &out)
    }

    /// zlib (RFC 1950) deflate, for `rzset`.
    static func deflate(_ data: [UInt8]) -> [UInt8]? {
        var size = compressBound(uLong(data.count))
        var out = [UInt8](repeating: 0, count: Int(size))
        let rc = out.withUnsafeMutableBufferPointer { o in
            data.withUnsafeBufferPointer { i in compress2(o.baseAddress, &size, i.baseAddress, uLong(i.count), Z_DEFAULT_COMPRESSION) }
        }
        guard rc == Z_OK else { return nil }
        out.removeLast(out.count - Int(size))
        return out
    }

    // MARK: - Routing commands

    /// `getroute <vn>` → `<clk−1> <nid>…`, `END` for an unknown vnode, `CLIENT_ERROR` without one.
    func getroute(_ r: Request, out: inout ByteBuffer) -> Outcome {
        guard r.count >= 2 else { out.writeLine("CLIENT_ERROR"); return .next }
        let v = lenientInt(r, 1)
        guard !v.negative, let route = node.routing.route(forVnode: v.low64) else {
            out.writeStaticString(Reply.end)
            return .next
        }
        var line = String(route.clock - 1)
        for n in route.nodes { line += " " + n }
        out.writeLine(line)
        return .next
    }

    /// `setroute <vn> <clk> <nid>…` (R4.6): `STORED` | `SERVER_ERROR <why>` | `CLIENT_ERROR`.
    func setroute(_ r: Request, out: inout ByteBuffer) -> Outcome {
        guard r.count >= 4 else { out.writeLine("CLIENT_ERROR"); return .next }
        var nids: [String] = []
        for i in 3..<r.count {
            let nid = r.tokenString(i)
            guard !nid.isEmpty, nid.utf8.allSatisfy({ $0 < 0x80 }) else {
                out.writeLine("CLIENT_ERROR : irregular node name was input.[\"\(nid)\"]")
                return .next
            }
            nids.append(nid)
        }
        let vn = lenientInt(r, 1)
        let clk = lenientInt(r, 2)
        let v = vn.negative ? UInt64.max : vn.low64
        let before = node.routes.snapshot
        let result = node.routes.setRoute(vn: v, clk: Int(clk.clampedInt64), nids: nids)
        if let message = result.errorMessage {
            out.writeLine("SERVER_ERROR \(message)")
        } else {
            out.writeStaticString(Reply.stored)
            if before.space.isVnode(v) {
                node.restreamAfterForeignCopy(v, before: before.lists[before.space.index(ofVnode: v)], after: nids)
            }
        }
        return .next
    }

    /// `join <nid>` → `ADDED`; `leave <nid>` → `DELETED`; `create_nodes_from_v_idx` → `CREATED`.
    func membership(_ command: Command, _ r: Request, out: inout ByteBuffer) -> Outcome {
        switch command {
        case .join, .leave:
            guard r.count >= 2 else { out.writeStaticString(Reply.wrongArguments); return .next }
            let nid = r.tokenString(1)
            guard !nid.isEmpty, nid.utf8.allSatisfy({ $0 > 0x20 && $0 < 0x7f }) else {
                out.writeLine("CLIENT_ERROR : irregular node name was input.[\"\(nid)\"]")
                return .next
            }
            if command == .join {
                node.routes.join(nid)
                node.logger.notice("join \(nid)")
                out.writeLine("ADDED")
            } else {
                node.logger.warning("receive a leave \(nid) message")
                node.leave(nid, broadcast: false)
                out.writeStaticString(Reply.deleted)
            }
        default:
            node.routes.createNodesFromVIdx()
            out.writeLine("CREATED")
        }
        return .next
    }

    /// `enabled_repetition_in_routing?` → `true` | `false`.
    func enabledRepetition(_ r: Request, session: Session, out: inout ByteBuffer) -> Outcome {
        guard r.count == 1 else { out.writeLine("CLIENT_ERROR"); return .next }
        out.writeLine(node.routing(forClient: session.clientAddress).hasReplicationInHost() ? "true" : "false")
        return .next
    }

    /// `history_of_lost [yyyymmddhhmmss]`: vnodes the routing log records as lost since then.
    func historyOfLost(_ r: Request, out: inout ByteBuffer) -> Outcome {
        var since = (2000, 1, 1, 0, 0, 0)
        if r.count == 2 {
            let t = Array(r.tokenString(1).utf8)
            func n(_ a: Int, _ b: Int) -> Int? {
                guard b <= t.count else { return nil }
                return Int(String(decoding: t[a..<b], as: UTF8.self))
            }
            guard t.count == 14, let y = n(0, 4), let mo = n(4, 6), let d = n(6, 8), let h = n(8, 10),
                  let mi = n(10, 12), let s = n(12, 14) else {
                out.writeLine("CLIENT_ERROR")
                return .next
            }
            since = (y, mo, d, h, mi, s)
        }
        var lost: [UInt64] = []
        if let file = node.routes.routeFile {
            for (_, path) in RoutingLog.files(of: file) {
                guard let text = FileSystem.readText(path) else { continue }
                for line in text.split(separator: "\n") {
                    guard let parsed = try? RoutingLog.parse(line: line) else { continue }
                    let d = parsed.date
                    guard (d.year, d.month, d.day, d.hour, d.minute, d.second) >= since else { continue }
                    if case let .setroute(vn, _, nids) = parsed.event, nids.isEmpty, !lost.contains(vn) { lost.append(vn) }
                }
            }
        }
        for vn in lost { out.writeLine(String(vn)) }
        out.writeStaticString(Reply.end)
        return .next
    }
}

// MARK: - Failover administration (R5.14)

extension Dispatcher {
    /// `switch_failover on|off`, `set_threshold_for_failover <n>`, `set_gap_for_failover <n>`,
    /// `set_lost_action auto_assign|shutdown` and their `r…` forms. The plain form runs here and
    /// is relayed to every other node; its reply is ROMA's inspect hash (peers, then this node).
    func failoverAdmin(_ command: Command, _ r: Request, out: inout ByteBuffer) -> Outcome {
        let f = node.failover
        let arg = r.count == 2 ? r.tokenString(1) : nil
        let own: String
        let relay: String
        switch command {
        case .switchFailover, .rswitchFailover:
            guard let arg else { out.writeLine("CLIENT_ERROR number of arguments"); return .next }
            // An operator's word is final: the automatic switch-on at start-up no longer applies.
            if arg == "on" {
                node.failureDetectorArmed.store(true, ordering: .releasing)
                f.setEnabled(true)
                own = "ENABLED"
            } else if arg == "off" {
                node.failureDetectorArmed.store(true, ordering: .releasing)
                f.setEnabled(false)
                own = "DISABLED"
            } else {
                own = "NOTSWITCHED"
            }
            node.logger.notice("switch_failover \(arg): \(own)")
            relay = "rswitch_failover \(arg)"
        case .setThresholdForFailover, .rsetThresholdForFailover:
            let n = arg.map { LenientInteger(parsing: Array($0.utf8)) }
            guard let n, !n.negative, n.low64 != 0 else { out.writeLine("usage:set_threshold_for_failover <n>"); return .next }
            f.state.withLockedValue { $0.threshold = Int(clamping: n.low64) }
            own = "STORED"
            relay = "rset_threshold_for_failover \(n.low64)"
        case .setGapForFailover, .rsetGapForFailover:
            guard let arg else {
                out.writeLine(command == .setGapForFailover ? "usage:set_gap_for_failover <n>" : "usage:rset_gap_for_failover <n>")
                return .next
            }
            let gap = max(0, Double(arg) ?? 0)
            f.state.withLockedValue { $0.gap = gap }
            own = "STORED"
            relay = "rset_gap_for_failover \(arg)"
        default:
            guard let arg, arg == "auto_assign" || arg == "shutdown" else {
                out.writeLine("CLIENT_ERROR changing lost_action must be auto_assign or shutdown")
                return .next
            }
            guard f.state.withLockedValue({ $0.lostAction != .noAction }) else {
                out.writeLine("CLIENT_ERROR can use this command only current lost action is auto_assign or shutdwn mode")
                return .next
            }
            f.state.withLockedValue { $0.lostAction = LostAction(rawValue: arg)! }
            own = "STORED"
            relay = "rset_lost_action \(arg)"
        }
        return answerOrRelay(command, own: own, line: relay + "\r\n", out: &out)
    }
}

// MARK: - Vnode transfers (R5.8) and recover (R5.10)

extension Dispatcher {
    /// `spushv <hash> <vn>`: `READY`, then the connection carries the vnode's records.
    func spushv(_ r: Request, out: inout ByteBuffer) -> Outcome {
        guard r.count == 3 else { out.writeStaticString(Reply.wrongArguments); return .next }
        if node.spushvProtection.load(ordering: .relaxed) {
            out.writeLine("SERVER_ERROR In spushv_protection.")
            return .next
        }
        let hash = r.tokenString(1)
        let vn = lenientInt(r, 2)
        guard let storage = storage(named: hash) else {
            out.writeLine("SERVER_ERROR \(hash) does not exists.")
            return .next
        }
        guard !vn.negative, node.space.isVnode(vn.low64) else {
            out.writeLine("CLIENT_ERROR \(r.tokenString(2)) is not a vnode id")
            return .next
        }
        node.claimSeedPurge(vn.low64)
        out.writeLine("READY")
        let node = self.node
        let logger = node.logger
        return .stream(VnodeStreamReceiver(storage: storage, vnode: vn.low64, maxKey: 64 * 1024,
                                           maxValue: max(node.config.limits.maxValueSize, 1 << 20) * 8,
                                           warnKey: node.spushvKlengthWarn.load(ordering: .relaxed),
                                           warnValue: node.spushvVlengthWarn.load(ordering: .relaxed),
                                           warn: { logger.warning("\($0)") },
                                           isProtected: { node.spushvProtection.load(ordering: .relaxed) }))
    }

    /// `reqpushv <vn> <nid> <true|false>`: copy vnode `vn` to `nid` (as primary when true).
    func reqpushv(_ r: Request, out: inout ByteBuffer) -> Outcome {
        let usage = "CLIENT_ERROR usage:reqpushv vnode-id node-id primary-flag(true/false)"
        guard r.count == 4, r.token(3, is: "true") || r.token(3, is: "false") else { out.writeLine(usage); return .next }
        let vn = lenientInt(r, 1)
        let target = r.tokenString(2)
        guard !vn.negative, node.routing.nodes(forVnode: vn.low64) != nil, PeerAddress.split(target) != nil else {
            out.writeLine(usage)
            return .next
        }
        let isPrimary = r.token(3, is: "true")
        let probedLately = node.servingPeers.withLockedValue { ($0[target]).map { Node.monotonicNow() - $0 < 60 } ?? false }
        guard isPrimary, !probedLately, node.routing.nodes(forVnode: vn.low64)?.first != target else {
            out.writeLine(node.startVnodeCopy(vn.low64, to: target, isPrimary: isPrimary) ? "PUSHED" : "REJECTED")
            return .next
        }
        // The target becomes the vnode's primary when the copy commits: every write of the vnode
        // goes to it from then on. A Ruby ROMA node that is still starting (about 10 s, and its
        // join asks for primaries in those seconds) answers data commands as unknown, so those
        // writes would fail. Asked first with a harmless `fget`: a target that does not know it
        // (or does not answer) is `REJECTED`, and asks again later (Ruby after 5 s). A node that
        // answered is not asked again for a minute (a join asks for some 170 primaries).
        let node = self.node
        let v = vn.low64
        var probe = ByteBuffer()
        probe.writeStaticString("fget roma-serving-probe\r\n")
        let answer = node.peers.request(target, probe, kind: .values, on: loop, timeout: node.peers.timeout).map { reply -> ByteBuffer in
            var ready = true
            if case .line(let l) = reply, l.readableBytesView.starts(with: "ERROR".utf8) { ready = false }
            if ready {
                node.servingPeers.withLockedValue { $0[target] = Node.monotonicNow() }
            } else {
                node.logger.info("reqpushv \(v) to \(target) as primary refused: it does not serve data commands yet")
            }
            var b = ByteBuffer()
            b.writeLine(ready && node.startVnodeCopy(v, to: target, isPrimary: true) ? "PUSHED" : "REJECTED")
            return b
        }.recover { error in
            node.logger.info("reqpushv \(v) to \(target) as primary refused: it does not serve data commands yet (\(error))")
            var b = ByteBuffer()
            b.writeLine("REJECTED")
            return b
        }
        return .deferred(answer)
    }

    /// `recover` (relayed as `rrecover`): every node copies to itself the short vnodes it may hold.
    func recover(_ command: Command, out: inout ByteBuffer) -> Outcome {
        let rt = node.routing
        if command == .recover && rt.nodes.count < rt.rn {
            out.writeLine("SERVER_ERROR nodes num < redundant num")
            return .next
        }
        let own = node.startRecover() ? "STARTED" : "SERVER_ERROR Recover process is already running."
        return answerOrRelay(command, own: own, line: "rrecover\r\n", out: &out)
    }
}

extension Dispatcher {
    /// `balance` (relayed as `rbalance`, R5.12): nodes below their share of primaries pull vnodes.
    func balance(_ command: Command, out: inout ByteBuffer) -> Outcome {
        let started = node.startBalance()
        if command == .rbalance {
            out.writeLine(started ? "STARTED" : "SERVER_ERROR Not unbalance or other process is already running.")
            return .next
        }
        let own = started ? "STARTED" : "SERVER_ERROR Not unbalance or othre process is already running."
        return relay("rbalance\r\n", own: own)
    }
}

extension Dispatcher {
    /// `set_auto_recover <true|false> [seconds]` (relayed as `rset_auto_recover`, R5.10).
    func setAutoRecover(_ command: Command, _ r: Request, out: inout ByteBuffer) -> Outcome {
        guard r.count >= 2, r.token(1, is: "true") || r.token(1, is: "false") else {
            out.writeLine("CLIENT_ERROR arguments must be true or false")
            return .next
        }
        guard r.count == 2 || r.count == 3 else { out.writeLine("CLIENT_ERROR number of arguments(0 for 1)"); return .next }
        var seconds: Int?
        if r.count == 3 {
            let v = lenientInt(r, 2)
            guard !v.negative, v.low64 >= 1 else { out.writeLine("CLIENT_ERROR length must be greater than zero"); return .next }
            seconds = Int(clamping: v.low64)
        }
        let on = r.token(1, is: "true")
        node.autoRecover.withLockedValue { s in
            s.enabled = on
            s.status = "waiting"
            s.generation += 1
            if let seconds { s.seconds = seconds }
        }
        let line = "rset_auto_recover \(on)" + (seconds.map { " \($0)" } ?? "") + "\r\n"
        return answerOrRelay(command, own: "STORED", line: line, out: &out)
    }
}

extension Dispatcher {
    /// A relayed command (R5.14): `line` goes to every other node; the reply is ROMA's inspect hash
    /// of every node's answer (`Node.relayed`).
    func relay(_ line: String, own: String, ownFirst: Bool = false) -> Outcome {
        .deferred(node.relayed(line, own: own, ownFirst: ownFirst).hop(to: loop))
    }

    /// The end of a command ROMA relays: its `r…` form, sent by another node, is answered with
    /// `own` alone; the plain form goes to every other node as `line` (`relay`).
    func answerOrRelay(_ command: Command, own: String, line: String, ownFirst: Bool = false, out: inout ByteBuffer) -> Outcome {
        guard !command.isRelayedForm else {
            out.writeLine(own)
            return .next
        }
        return relay(line, own: own, ownFirst: ownFirst)
    }

    /// `answerOrRelay` for an answer that is known later (work done off the request path first).
    func answerOrRelay(_ command: Command, own: EventLoopFuture<String>, line: String) -> Outcome {
        guard !command.isRelayedForm else {
            return .deferred(own.map { own in
                var b = ByteBuffer()
                b.writeLine(own)
                return b
            })
        }
        let node = self.node
        return .deferred(own.flatMap { node.relayed(line, own: $0) }.hop(to: loop))
    }
}
