import NIOCore
import ROMAProtocol
import ROMARouting
import ROMAStorage

/// Data commands in a cluster (R5.1, R5.2): reads served where this node holds the vnode, else
/// forwarded (`fget`, `gets`); writes executed by the first node of the write list and replicated
/// to the others in parallel before the reply, else forwarded (`fset`, `fdelete`, …) and the
/// owner's reply relayed.
extension Dispatcher {
    /// Where a key token goes.
    struct KeyRoute {
        /// The key without `\x1Bhash`.
        let key: [UInt8]
        /// The hash name (explicit or the connection's default).
        let hash: String
        /// SHA-1 digest (low `dgst_bits`) and vnode.
        let digest: UInt64
        let vnode: UInt64
        /// Vnode index into the snapshot's arrays.
        let index: Int
    }

    func keyRoute(_ r: Request, _ i: Int, _ session: Session, _ route: RouteSnapshot) -> KeyRoute {
        r.withToken(i) { token in
            var key = token
            var hash = session.defaultHash
            if let esc = token.firstIndex(of: 0x1b) {
                key = UnsafeRawBufferPointer(rebasing: token[..<esc])
                hash = String(decoding: token[(esc + 1)...], as: UTF8.self)
            }
            let d = route.space.digest(ofKey: key)
            let vn = route.space.vnode(ofDigest: d)
            return KeyRoute(key: Array(key), hash: hash, digest: d, vnode: vn, index: route.space.index(ofVnode: vn))
        }
    }

    /// How long a forwarded request may take: the owner of a write waits up to one peer timeout
    /// for its replicas before it answers, so the forwarder waits for two and a little more.
    var forwardTimeout: TimeAmount { node.peers.timeout * 2 + .milliseconds(500) }

    /// The forward failed reply (R5.1).
    static let forwardFailed = "SERVER_ERROR Message forward failed."

    /// Sends `request` to `nid` and relays its one-line reply (`transform` may rewrite it);
    /// no reply, or one starting with `ERROR`, becomes `SERVER_ERROR Message forward failed.`
    func forwardLine(_ nid: String?, _ request: ByteBuffer, transform: @escaping @Sendable (String) -> String = { $0 },
                     owner: (@Sendable () -> String?)? = nil) -> Outcome {
        guard let nid else {
            var b = ByteBuffer()
            b.writeLine(Dispatcher.forwardFailed)
            return .deferred(loop.makeSucceededFuture(b))
        }
        node.stats.forwardCount.add(1, ordering: .relaxed)
        let logger = node.logger
        return .deferred(forward(nid, request, kind: .line, owner: owner).map { reply in
            var b = ByteBuffer()
            if let line = reply.lineString, !line.hasPrefix("ERROR") {
                b.writeLine(transform(line))
            } else {
                b.writeLine(Dispatcher.forwardFailed)
            }
            return b
        }.recover { error in
            logger.warning("forward to \(nid) failed: \(error)")
            var b = ByteBuffer()
            b.writeLine(Dispatcher.forwardFailed)
            return b
        })
    }

    /// Sends a forwarded request (`f*`, `fget`) to `nid`. A node whose table has not yet caught up
    /// with a vnode move answers "inconsistent"; the move's `setroute` is on its way, so the
    /// request is sent again to `owner()`'s current answer, after 20, 40, 80, … ms (at most
    /// 500 ms apart, about 2 s in all): on a loaded machine a `setroute` took over the 0.1 s that
    /// five tries 20 ms apart waited, and the client got the error.
    func forward(_ nid: String, _ request: ByteBuffer, kind: PeerReplyKind,
                 owner: (@Sendable () -> String?)?, timeout: TimeAmount? = nil) -> EventLoopFuture<PeerReply> {
        let node = self.node
        let loop = self.loop
        let timeout = timeout ?? forwardTimeout
        @Sendable func attempt(_ nid: String, _ tried: Int) -> EventLoopFuture<PeerReply> {
            node.peers.request(nid, request, kind: kind, on: loop, timeout: timeout).flatMap { reply in
                if tried < Dispatcher.inconsistentRetries, let owner, reply.lineString == "SERVER_ERROR Routing table is inconsistent." {
                    node.stats.forwardRetries.add(1, ordering: .relaxed)
                    let pause = TimeAmount.milliseconds(min(20 << tried, 500))
                    return loop.scheduleTask(in: pause) {}.futureResult.flatMap { attempt(owner() ?? nid, tried + 1) }
                }
                return loop.makeSucceededFuture(reply)
            }
        }
        return attempt(nid, 0)
    }

    /// Tries again after an "inconsistent" answer (pauses 20 ms doubling up to 500 ms: 2.1 s).
    static let inconsistentRetries = 8

    /// Replicates the record now stored for `k` to `targets` (rset, or rdelete for a delete mark),
    /// then completes with `reply`. `record`: the header and value just written, when the caller
    /// has them (a set's own value is sent as it came, without reading the record back).
    func replicate(_ k: KeyRoute, storage: HashStorage, to targets: ArraySlice<String>, reply: ByteBuffer,
                   record: (RecordHeader, ByteBuffer)? = nil) throws -> Outcome {
        guard !targets.isEmpty else { return .replicating(loop.makeSucceededFuture(reply)) }
        // R5.2: above size_of_zredundant the value travels compressed (rzset).
        let z = node.stats.sizeOfZredundant.load(ordering: .relaxed)
        var m = ByteBuffer()
        if let (h, value) = record, !(z > 0 && value.readableBytes > z) {
            m.reserveCapacity(k.key.count + k.hash.utf8.count + value.readableBytes + 64)
            Dispatcher.writeReplicaSet(into: &m, k, h, compressed: false, length: value.readableBytes)
            m.writeImmutableBuffer(value)
        } else {
            guard let (h, value) = try k.key.withUnsafeBytes({ try storage.rawRecord(vn: UInt32(truncatingIfNeeded: k.vnode), key: $0) }) else {
                return .replicating(loop.makeSucceededFuture(reply))
            }
            m.reserveCapacity(k.key.count + k.hash.utf8.count + value.count + 64)
            if h.isTombstone {
                m.writeStaticString("rdelete ")
                Dispatcher.writeKeyWithHash(into: &m, k)
                m.writeStaticString(" ")
                m.writeDecimal(h.logical)
            } else {
                let packed = z > 0 && value.count > z ? Dispatcher.deflate(value) : nil
                let body = packed ?? value
                Dispatcher.writeReplicaSet(into: &m, k, h, compressed: packed != nil, length: body.count)
                m.writeBytes(body)
            }
        }
        m.writeStaticString("\r\n")
        let done = node.replicator.replicate(Replicator.Message(bytes: m), to: targets, on: loop)
        return .replicating(done.map { reply })
    }

    /// `key\x1Bhash`.
    private static func writeKeyWithHash(into m: inout ByteBuffer, _ k: KeyRoute) {
        m.writeBytes(k.key)
        m.writeInteger(UInt8(0x1b))
        m.writeString(k.hash)
    }

    /// `rset|rzset <key>\x1B<hash> <digest> <clock> <expire> <length>\r\n` (the value and its
    /// line end follow).
    private static func writeReplicaSet(into m: inout ByteBuffer, _ k: KeyRoute, _ h: RecordHeader, compressed: Bool, length: Int) {
        m.writeStaticString(compressed ? "rzset " : "rset ")
        writeKeyWithHash(into: &m, k)
        m.writeStaticString(" ")
        m.writeDecimal(k.digest)
        m.writeStaticString(" ")
        m.writeDecimal(h.logical)
        m.writeStaticString(" ")
        m.writeDecimal(h.expire)
        m.writeStaticString(" ")
        m.writeDecimal(length)
        m.writeStaticString("\r\n")
    }

    /// The nodes a primary write goes to besides this one.
    @inline(__always) func replicaTargets(_ route: RouteSnapshot, _ index: Int) -> ArraySlice<String> {
        let w = route.writeLists[index]
        if w.count <= 1 { return [] }
        let me = node.nodeID
        if w.first == me { return w.dropFirst() }
        return ArraySlice(w.filter { $0 != me })
    }

    // MARK: - Hash names in forwarded requests

    /// A key token to forward: as typed, or with `ESC <hash>` added when it names no hash and this
    /// connection's default (`defhash`) is not the one a peer connection starts with — ROMA
    /// forwarded the token as typed, so such keys went to the owner's `roma` hash.
    static func namingHash(_ token: ByteBuffer, _ session: Session) -> ByteBuffer {
        guard session.defaultHash != Session.initialHash, !token.readableBytesView.contains(0x1b) else { return token }
        var t = token
        t.writeInteger(UInt8(0x1b))
        t.writeString(session.defaultHash)
        return t
    }

    // MARK: - Reads

    /// Whether a forwarded read failed at `nid` in a way the next node of the list may not:
    /// no reply, or an `ERROR` line (an unknown command). A `SERVER_ERROR` line is the node's
    /// answer and is relayed.
    static func readFailed(_ result: Result<PeerReply, any Error>) -> Bool {
        switch result {
        case .failure: return true
        case .success(.line(let l)): return l.readableBytesView.starts(with: "ERROR".utf8)
        case .success: return false
        }
    }

    /// `fget` (one key) or `gets` of `tokens` from `nid`, the first node of each token's list
    /// (a single `get` through `forward`, which follows a vnode that just moved). When that node
    /// fails (`readFailed`), the tokens go to the next nodes of their lists (`fetchElsewhere`).
    func fetch(_ tokens: [ByteBuffer], lists: [[String]], from nid: String, single: Bool,
               owner: (@Sendable () -> String?)?) -> EventLoopFuture<PeerReply> {
        let m = Dispatcher.readRequest(tokens, single: single)
        node.stats.forwardCount.add(1, ordering: .relaxed)
        // A read is answered from the owner's storage at once (no replica to wait for, unlike a
        // forwarded write): one peer timeout, then the next node.
        let timeout = node.peers.timeout
        let first = single ? forward(nid, m, kind: .values, owner: owner, timeout: timeout)
            : node.peers.request(nid, m, kind: .values, on: loop, timeout: timeout)
        return Dispatcher.fallBack(first, tokens, lists: lists, failed: [nid], single: single, node: node, loop: loop,
                                   timeout: timeout)
    }

    static func readRequest(_ tokens: [ByteBuffer], single: Bool) -> ByteBuffer {
        var m = ByteBuffer()
        m.writeStaticString(single ? "fget" : "gets")
        for t in tokens {
            m.writeStaticString(" ")
            var t = t
            m.writeBuffer(&t)
        }
        m.writeStaticString("\r\n")
        return m
    }

    /// `attempt`'s reply, or, when it failed (`readFailed`), the tokens fetched from the next
    /// node of each one's list not yet `failed` (grouped by that node, in parallel; their
    /// values make one `.values` reply). `attempt`'s failure when a key has no node left.
    static func fallBack(_ attempt: EventLoopFuture<PeerReply>, _ tokens: [ByteBuffer], lists: [[String]], failed: [String],
                         single: Bool, node: Node, loop: any EventLoop, timeout: TimeAmount) -> EventLoopFuture<PeerReply> {
        let promise = loop.makePromise(of: PeerReply.self)
        attempt.whenComplete { result in
            var next: [(nid: String, tokens: [ByteBuffer], lists: [[String]])] = []
            if Dispatcher.readFailed(result) {
                for (t, l) in zip(tokens, lists) {
                    guard let n = l.first(where: { $0 != node.nodeID && !failed.contains($0) }) else {
                        next = []
                        break
                    }
                    if let g = next.firstIndex(where: { $0.nid == n }) {
                        next[g].tokens.append(t)
                        next[g].lists.append(l)
                    } else {
                        next.append((n, [t], [l]))
                    }
                }
            }
            guard !next.isEmpty else {
                promise.completeWith(result)
                return
            }
            node.logger.warning("read forwarded to \(failed.last ?? "?") failed (\(Dispatcher.describe(result))): asking \(next.map(\.nid).joined(separator: ", ")) instead")
            let parts = next.map { g -> EventLoopFuture<PeerReply> in
                node.stats.forwardCount.add(1, ordering: .relaxed)
                let f = node.peers.request(g.nid, readRequest(g.tokens, single: single), kind: .values, on: loop, timeout: timeout)
                return fallBack(f, g.tokens, lists: g.lists, failed: failed + [g.nid], single: single, node: node, loop: loop,
                                timeout: timeout)
            }
            EventLoopFuture.whenAllSucceed(parts, on: loop).map { replies -> PeerReply in
                if replies.count == 1 { return replies[0] }
                var all: [PeerValue] = []
                for r in replies {
                    guard case .values(let v, _) = r else { return r }  // a node's error line: relayed
                    all += v
                }
                return .values(all, raw: ByteBuffer())
            }.cascade(to: promise)
        }
        return promise.futureResult
    }

    static func describe(_ result: Result<PeerReply, any Error>) -> String {
        switch result {
        case .success(.line(let l)): return "it answered '\(String(buffer: l))'"
        case .success: return "unexpected reply"
        case .failure(let e): return "\(e)"
        }
    }

    /// `get`/`gets` in a cluster: local keys answered here, the others grouped by the first node
    /// of their vnode and fetched with one `fget` (single `get`) or `gets` per node, in parallel.
    /// Output: local keys first, then each node's group in order of first appearance (ROMA's
    /// order). A node that fails (no answer, connection refused or closed, an `ERROR` line: a
    /// node killed but not yet gone from the table, or a Ruby ROMA node still starting) is not
    /// the end: its keys are fetched from the next node of their lists, which holds them too
    /// (ROMA answered `SERVER_ERROR Message forward failed.` until the failover). Only when every
    /// node of a key's list failed does the whole request fail with that line: a client must
    /// never mistake an unreachable key for a missing one.
    func clusterGet(_ r: Request, session: Session, withCas: Bool, route: RouteSnapshot, out: inout ByteBuffer) throws -> Outcome {
        let now = Dispatcher.now()
        var local = ByteBuffer()
        var groups: [(nid: String, tokens: [ByteBuffer], lists: [[String]])] = []
        var tokenOfKey: [[UInt8]: ByteBuffer] = [:]
        var seen = Set<ByteBuffer>()
        for i in 1..<r.count {
            if withCas && r.count > 2 && !seen.insert(r.tokenSlice(i)).inserted { continue }
            let k = keyRoute(r, i, session, route)
            if route.readsLocal[k.index] {
                node.stats.countRead()
                let result = try withKey(r, i, session) { storage, key, vn in
                    try storage.get(vn: vn, key: key, now: now) { header, value in
                        if withCas {
                            local.writeValue(key: key, data: value, cas: header.logical)
                        } else {
                            r.withToken(i) { token in local.writeValue(key: token, data: value, cas: nil) }
                        }
                    }
                }
                if case .noHash(let h) = result, r.count == 2, !withCas {
                    out.writeLine("SERVER_ERROR \(h) does not exists.")
                    return .next
                }
                continue
            }
            guard let owner = route.lists[k.index].first else {
                if r.count == 2 { out.writeLine(Dispatcher.forwardFailed); return .next }
                continue  // a lost vnode (no node holds it): nothing to read
            }
            let typed = r.tokenSlice(i)
            if tokenOfKey[k.key] == nil { tokenOfKey[k.key] = typed }
            let token = Dispatcher.namingHash(typed, session)
            if let g = groups.firstIndex(where: { $0.nid == owner }) {
                groups[g].tokens.append(token)
                groups[g].lists.append(route.lists[k.index])
            } else {
                groups.append((owner, [token], [route.lists[k.index]]))
            }
        }
        if groups.isEmpty {
            out.writeBuffer(&local)
            out.writeStaticString(Reply.end)
            return .next
        }
        let single = !withCas && r.count == 2
        // A single key sent with the hash name added (`namingHash`): the name it was typed with.
        let singleTyped: [UInt8]? = single && groups.first.map({ $0.tokens[0] != r.tokenSlice(1) }) == true
            ? Array(r.tokenSlice(1).readableBytesView) : nil
        let loop = self.loop
        let routes = node.routes
        let singleIndex = single ? keyRoute(r, 1, session, route).index : 0
        var owner: (@Sendable () -> String?)?
        if single { owner = { @Sendable in routes.snapshot.lists[singleIndex].first } }
        let futures = groups.map { g -> EventLoopFuture<PeerReply> in
            fetch(g.tokens, lists: g.lists, from: g.nid, single: single, owner: owner)
        }
        let logger = node.logger
        let keys = tokenOfKey
        let owners = groups.map(\.nid)
        let localReplies = local
        return .deferred(EventLoopFuture.whenAllComplete(futures, on: loop).map { results in
            var b = localReplies
            for (i, result) in results.enumerated() {
                switch result {
                case .success(.values(let values, let raw)):
                    if single {
                        if let typed = singleTyped, let v = values.first {
                            // The key went with this connection's hash name: the reply names
                            // the key as the client typed it.
                            var o = ByteBuffer()
                            typed.withUnsafeBytes { k in v.data.withUnsafeReadableBytes { d in o.writeValue(key: k, data: d, cas: nil) } }
                            o.writeStaticString(Reply.end)
                            return o
                        }
                        // R5.1: the owner's reply is relayed as it is.
                        var raw = raw
                        return { var o = ByteBuffer(); o.writeBuffer(&raw); return o }()
                    }
                    for v in values {
                        let data = v.data
                        if withCas {
                            data.withUnsafeReadableBytes { d in
                                v.key.withUnsafeBytes { k in
                                    b.writeValue(key: k, data: d, cas: UInt32(String(decoding: v.cas ?? [], as: UTF8.self)) ?? 0)
                                }
                            }
                        } else {
                            let name = keys[v.key].map { Array($0.readableBytesView) } ?? v.key
                            name.withUnsafeBytes { k in data.withUnsafeReadableBytes { d in b.writeValue(key: k, data: d, cas: nil) } }
                        }
                        _ = data
                    }
                case .success(.line(let l)) where single && !l.readableBytesView.starts(with: "ERROR".utf8):
                    // An error line of the owner (SERVER_ERROR …) is relayed.
                    var o = ByteBuffer()
                    var l = l
                    o.writeBuffer(&l)
                    o.writeStaticString("\r\n")
                    return o
                default:
                    logger.warning("read forwarded to \(owners[i]) (and the other nodes of its keys' lists) failed: \(Dispatcher.describe(result))")
                    var o = ByteBuffer()
                    o.writeLine(Dispatcher.forwardFailed)
                    return o
                }
            }
            b.writeStaticString(Reply.end)
            return b
        })
    }
}

// MARK: - Writes

extension Dispatcher {
    /// What a write does in a cluster: `.local(k)` executes here (then replicates to `k`'s
    /// targets), `.done(outcome)` was forwarded or refused.
    enum WritePlan {
        case standalone
        case local(KeyRoute, RouteSnapshot)
        case done(Outcome)
    }

    /// Decides where a write of key token 1 runs. `forwarded` is true for the `f*` commands: they
    /// run here when this node is anywhere in the write list, else `SERVER_ERROR Routing table is
    /// inconsistent.` (R5.1). A client write not primary here is forwarded as `name` with the
    /// digest (when `digest`) and tokens `rest` of the request; `hashSuffix` sends `key\x1Bhash`
    /// instead of the token as typed (`fcas`, `fdelete`).
    func planWrite(_ r: Request, session: Session, forwarded: Bool, name: StaticString, digest: Bool,
                   rest: Range<Int>, hashSuffix: Bool = false,
                   transform: @escaping @Sendable (String) -> String = { $0 }, out: inout ByteBuffer) -> WritePlan {
        let route = self.route()
        if route.standalone { return .standalone }
        let k = keyRoute(r, 1, session, route)
        if route.writesLocal[k.index] { return .local(k, route) }
        if forwarded {
            guard route.writeLists[k.index].contains(node.nodeID) else {
                out.writeLine("SERVER_ERROR Routing table is inconsistent.")
                return .done(.next)
            }
            return .local(k, route)
        }
        var m = ByteBuffer()
        m.writeStaticString(name)
        m.writeStaticString(" ")
        if hashSuffix {
            m.writeBytes(k.key)
            m.writeInteger(UInt8(0x1b))
            m.writeString(k.hash)
        } else {
            var t = Dispatcher.namingHash(r.tokenSlice(1), session)
            m.writeBuffer(&t)
        }
        if digest {
            m.writeStaticString(" ")
            m.writeDecimal(k.digest)
        }
        for i in rest where i < r.count {
            m.writeStaticString(" ")
            var t = r.tokenSlice(i)
            m.writeBuffer(&t)
        }
        m.writeStaticString("\r\n")
        if var data = r.data {
            m.writeBuffer(&data)
            m.writeStaticString("\r\n")
        }
        let routes = node.routes
        let index = k.index
        return .done(forwardLine(route.writeLists[k.index].first, m, transform: transform,
                                 owner: { routes.snapshot.writeLists[index].first }))
    }

    /// `withKey` for a write that `planWrite` routed: a write executed here uses the key, hash
    /// and vnode the plan found (no second digest of the key); any other resolves the token.
    func withKey<R>(_ r: Request, _ i: Int, _ session: Session, plan: WritePlan,
                    _ body: (HashStorage, UnsafeRawBufferPointer, UInt32) throws -> R) rethrows -> KeyResult<R> {
        guard case .local(let k, _) = plan else { return try withKey(r, i, session, body) }
        guard let storage = storage(named: k.hash) else { return .noHash(k.hash) }
        return .ok(try k.key.withUnsafeBytes { try body(storage, $0, UInt32(truncatingIfNeeded: k.vnode)) })
    }

    /// After a local write: replicate when it changed something and there are other nodes.
    /// `record`: the header and value just written, when the caller has them (else they are read
    /// back from the storage).
    func finishWrite(_ plan: WritePlan, storage: HashStorage?, changed: Bool, out: inout ByteBuffer, mark: Int,
                     record: (RecordHeader, ByteBuffer)? = nil) throws -> Outcome {
        guard case .local(let k, let route) = plan, changed, let storage else { return .next }
        let targets = replicaTargets(route, k.index)
        if targets.isEmpty { return .next }
        // The reply goes out once every replica answered: take it out of `out`.
        let reply = out.getSlice(at: mark, length: out.writerIndex - mark) ?? ByteBuffer()
        out.moveWriterIndex(to: mark)
        return try replicate(k, storage: storage, to: targets, reply: reply, record: record)
    }

    /// The storage of `k`'s hash, if mounted.
    func storage(of plan: WritePlan) -> HashStorage? {
        guard case .local(let k, _) = plan else { return nil }
        return storage(named: k.hash)
    }
}
