import NIOCore
import ROMAProtocol
import ROMAStorage

/// Retrieval and storage commands (spec R3.9–R3.13, R2.7), with memcached's `noreply`, `touch`
/// and `flush_all`.
extension Dispatcher {
    /// `get <key>…`: memcached's format (no cas unique) for one key or many.
    func get(_ r: Request, session: Session, out: inout ByteBuffer) throws -> Outcome {
        guard r.count >= 2 else { out.writeStaticString(Reply.wrongArguments); return .next }
        for i in 1..<r.count where !checkKey(r, i, out: &out) { return .next }
        let route = self.route()
        if !route.standalone { return try clusterGet(r, session: session, withCas: false, route: route, out: &out) }
        let now = Dispatcher.now()
        for i in 1..<r.count {
            node.stats.countRead()
            let result = try withKey(r, i, session) { storage, key, vn in
                try storage.get(vn: vn, key: key, now: now) { _, value in
                    r.withToken(i) { token in out.writeValue(key: token, data: value, cas: nil) }
                }
            }
            if case .noHash(let h) = result, r.count == 2 {
                out.writeLine("SERVER_ERROR \(h) does not exists.")
                return .next
            }
        }
        out.writeStaticString(Reply.end)
        return .next
    }

    /// `gets <key>…`: values with their cas unique (the logical clock); keys without the hash suffix;
    /// duplicates collapse and unknown hashes are omitted (R3.9). No key is an error, not ROMA's
    /// `END`: memcached's conformance suite (`memccapable`, "ascii gets") requires an error reply.
    func gets(_ r: Request, session: Session, out: inout ByteBuffer) throws -> Outcome {
        guard r.count >= 2 else { out.writeStaticString(Reply.wrongArguments); return .next }
        for i in 1..<r.count where !checkKey(r, i, out: &out) { return .next }
        let route = self.route()
        if !route.standalone { return try clusterGet(r, session: session, withCas: true, route: route, out: &out) }
        let now = Dispatcher.now()
        var seen = Set<ByteBuffer>()
        for i in 1..<r.count {
            if r.count > 2 && !seen.insert(r.tokenSlice(i)).inserted { continue }
            node.stats.countRead()
            _ = try withKey(r, i, session) { storage, key, vn in
                try storage.get(vn: vn, key: key, now: now) { header, value in
                    out.writeValue(key: key, data: value, cas: header.logical)
                }
            }
        }
        out.writeStaticString(Reply.end)
        return .next
    }

    /// set / add / replace / append / prepend (the parser validated the line and read the data).
    func store(_ mode: StoreMode, _ r: Request, session: Session, out: inout ByteBuffer, forwarded: Bool = false) throws -> Outcome {
        let name: StaticString
        switch mode {
        case .set: name = "fset"
        case .add: name = "fadd"
        case .replace: name = "freplace"
        case .append: name = "fappend"
        case .prepend: name = "fprepend"
        }
        let plan = planWrite(r, session: session, forwarded: forwarded, name: name, digest: true, rest: 3..<5, out: &out)
        if case .done(let o) = plan { return o }
        let now = Dispatcher.now()
        let expire = Expiry.convert(lenientInt(r, 3).clampedInt64, now: now)
        let data = r.data!
        node.stats.countWrite()
        let wb = writeBehindBefore("\(mode)", r, session)
        var written: RecordHeader?
        let maxValueSize = node.config.limits.maxValueSize
        let result = try withKey(r, 1, session, plan: plan) { storage, key, vn in
            try data.withUnsafeReadableBytes { value in
                try storage.store(mode, vn: vn, key: key, value: value, expire: expire, now: now,
                                  maxValueSize: maxValueSize, written: &written)
            }
        }
        let mark = out.writerIndex
        if !r.noreply { writeStoreResult(result, out: &out) }
        guard case .ok(.stored) = result else { return .next }
        if wb != nil {
            writeBehindAfter(wb, value: mode == .append || mode == .prepend ? currentValue(r, session) : Array(data.readableBytesView))
        }
        replicateToCluster(r, session)
        // set/add/replace wrote the request's value: the replicas get it without a read back.
        let record = mode == .append || mode == .prepend ? nil : written.map { ($0, data) }
        return try finishWrite(plan, storage: storage(of: plan), changed: true, out: &out, mark: mark, record: record)
    }

    /// `cas <key> <flags> <exptime> <bytes> <unique> [noreply]`.
    func cas(_ r: Request, session: Session, out: inout ByteBuffer, forwarded: Bool = false) throws -> Outcome {
        let plan = planWrite(r, session: session, forwarded: forwarded, name: "fcas", digest: true, rest: 3..<6, hashSuffix: true, out: &out)
        if case .done(let o) = plan { return o }
        let now = Dispatcher.now()
        let expire = Expiry.convert(lenientInt(r, 3).clampedInt64, now: now)
        let unique = lenientInt(r, 5)
        let data = r.data!
        node.stats.countWrite()
        let wb = writeBehindBefore("cas", r, session)
        let result = try withKey(r, 1, session, plan: plan) { storage, key, vn -> StoreResult in
            // A unique that no 32-bit clock can equal never matches.
            guard !unique.negative, unique.magnitude.count <= 1 else {
                return try storage.get(vn: vn, key: key, now: now) { _, _ in StoreResult.exists } ?? .notFound
            }
            return try data.withUnsafeReadableBytes { value in
                try storage.cas(vn: vn, key: key, value: value, expire: expire, unique: UInt32(unique.low64), now: now)
            }
        }
        let mark = out.writerIndex
        if !r.noreply { writeStoreResult(result, out: &out) }
        guard case .ok(.stored) = result else { return .next }
        if wb != nil { writeBehindAfter(wb, value: Array(data.readableBytesView)) }
        replicateToCluster(r, session)
        return try finishWrite(plan, storage: storage(of: plan), changed: true, out: &out, mark: mark)
    }

    private func writeStoreResult(_ result: KeyResult<StoreResult>, out: inout ByteBuffer) {
        switch result {
        case .noHash(let h): out.writeLine("SERVER_ERROR \(h) does not exists.")
        case .ok(.stored): out.writeStaticString(Reply.stored)
        case .ok(.notStored): out.writeStaticString(Reply.notStored)
        case .ok(.exists): out.writeStaticString(Reply.exists)
        case .ok(.notFound): out.writeStaticString(Reply.notFound)
        }
    }

    /// `delete <key> [0] [noreply]` (memcached: `noreply` is only an option after the key).
    func delete(_ r: Request, session: Session, out: inout ByteBuffer, forwarded: Bool = false) throws -> Outcome {
        let noreply = r.count >= 3 && hasNoreply(r)
        let args = r.count - (noreply ? 1 : 0)
        guard args == 2 || (args == 3 && r.token(2, is: "0")) else {
            out.writeLine(r.count < 2 ? "CLIENT_ERROR Wrong number of arguments." : "CLIENT_ERROR bad command line format.  Usage: delete <key> [noreply]")
            return .next
        }
        guard checkKey(r, 1, out: &out) else { return .next }
        let plan = planWrite(r, session: session, forwarded: forwarded, name: "fdelete", digest: false, rest: 0..<0, hashSuffix: true, out: &out)
        if case .done(let o) = plan { return o }
        node.stats.countDelete()
        let wb = writeBehindBefore("delete", r, session)
        let result = try withKey(r, 1, session, plan: plan) { storage, key, vn in
            try storage.delete(vn: vn, key: key, now: Dispatcher.now())
        }
        // Write-behind logs the value a delete removed (ROMA's), not a delete of nothing.
        if case .ok(true) = result {
            if let wb { writeBehindAfter(wb, value: wb.previous) }
            replicateToCluster(r, session)
        }
        let mark = out.writerIndex
        switch result {
        case .noHash(let h): out.writeLine("SERVER_ERROR \(h) does not exists.")
        case .ok(true): out.writeStaticString(Reply.deleted)
        case .ok(false): out.writeStaticString(Reply.notFound)
        }
        if noreply { out.moveWriterIndex(to: mark) }
        guard case .ok = result else { return .next }
        // R2.7: even a delete of a missing key writes a delete mark, which the replicas get too.
        return try finishWrite(plan, storage: storage(of: plan), changed: true, out: &out, mark: mark)
    }

    /// `incr|decr <key> <delta> [noreply]` (R3.11: Ruby integer arithmetic, clamped at 0, mod 2^64).
    /// One more token is ignored unless it is `noreply` (memcached).
    func incr(_ r: Request, decrement: Bool, session: Session, out: inout ByteBuffer, forwarded: Bool = false) throws -> Outcome {
        let noreply = !forwarded && hasNoreply(r) && r.count == 4
        guard forwarded ? r.count == 4 : (r.count == 3 || r.count == 4) else { out.writeStaticString(Reply.wrongArguments); return .next }
        guard checkKey(r, 1, out: &out) else { return .next }
        let plan = planWrite(r, session: session, forwarded: forwarded, name: decrement ? "fdecr" : "fincr", digest: true, rest: 2..<3, out: &out)
        if case .done(let o) = plan { return o }
        // `fincr <key> <d> <n>`: the digest sits where a client's delta would.
        let delta = lenientInt(r, forwarded ? 3 : 2)
        node.stats.countWrite()
        let wb = writeBehindBefore(decrement ? "decr" : "incr", r, session)
        let result = try withKey(r, 1, session, plan: plan) { storage, key, vn in
            try storage.incr(vn: vn, key: key, delta: delta, decrement: decrement, now: Dispatcher.now())
        }
        if case .ok(let v?) = result {
            if wb != nil { writeBehindAfter(wb, value: Array(String(v).utf8)) }
            replicateToCluster(r, session)
        }
        let mark = out.writerIndex
        switch result {
        case .noHash(let h): out.writeLine("SERVER_ERROR \(h) does not exists.")
        case .ok(let v?): out.writeDecimal(v); out.writeStaticString("\r\n")
        case .ok(nil): out.writeStaticString(Reply.notFound)
        }
        if noreply { out.moveWriterIndex(to: mark) }
        guard case .ok(_?) = result else { return .next }
        return try finishWrite(plan, storage: storage(of: plan), changed: true, out: &out, mark: mark)
    }

    /// `set_expt <key> <exptime>` → STORED | NOT_STORED.
    func setExpt(_ r: Request, session: Session, out: inout ByteBuffer, forwarded: Bool = false) throws -> Outcome {
        try newExpire(r, session: session, out: &out, done: Reply.stored, missing: Reply.notStored, forwarded: forwarded)
    }

    /// memcached `touch <key> <exptime> [noreply]` → TOUCHED | NOT_FOUND.
    func touch(_ r: Request, session: Session, out: inout ByteBuffer) throws -> Outcome {
        try newExpire(r, session: session, out: &out, done: Reply.touched, missing: Reply.notFound)
    }

    /// `set_expt` and `touch`: a new expire time on a live record, value kept (R2.7).
    private func newExpire(_ r: Request, session: Session, out: inout ByteBuffer,
                           done: StaticString, missing: StaticString, forwarded: Bool = false) throws -> Outcome {
        let noreply = hasNoreply(r) && r.count == 4
        guard r.count == 3 || r.count == 4 else { out.writeStaticString(Reply.wrongArguments); return .next }
        guard checkKey(r, 1, out: &out) else { return .next }
        // touch is forwarded as ROMA's fset_expt, its reply translated to memcached's words.
        let touch = done.description == Reply.touched.description
        let transform: @Sendable (String) -> String
        if touch { transform = { Dispatcher.touchReply($0) } } else { transform = { $0 } }
        let plan = planWrite(r, session: session, forwarded: forwarded, name: "fset_expt", digest: false, rest: 2..<3,
                             transform: transform, out: &out)
        if case .done(let o) = plan { return o }
        let now = Dispatcher.now()
        let expire = Expiry.convert(lenientInt(r, 2).clampedInt64, now: now)
        node.stats.countWrite()
        let wb = touch ? nil : writeBehindBefore("set_expt", r, session)
        let result = try withKey(r, 1, session, plan: plan) { storage, key, vn in
            try storage.setExpire(vn: vn, key: key, expire: expire, now: now)
        }
        if case .ok(true) = result {
            if wb != nil { writeBehindAfter(wb, value: Array(String(expire).utf8)) }
            replicateToCluster(r, session)
        }
        let mark = out.writerIndex
        switch result {
        case .noHash(let h): out.writeLine("SERVER_ERROR \(h) does not exists.")
        case .ok(true): out.writeStaticString(done)
        case .ok(false): out.writeStaticString(missing)
        }
        if noreply { out.moveWriterIndex(to: mark) }
        guard case .ok(true) = result else { return .next }
        return try finishWrite(plan, storage: storage(of: plan), changed: true, out: &out, mark: mark)
    }

    /// `fset_expt`'s reply in memcached's words for `touch`.
    static func touchReply(_ line: String) -> String {
        switch line {
        case "STORED": return "TOUCHED"
        case "NOT_STORED": return "NOT_FOUND"
        default: return line
        }
    }

    /// `get_expt <key> [unix]` (R3.12): the raw stored expire of whatever record exists.
    func getExpt(_ r: Request, session: Session, out: inout ByteBuffer) throws -> Outcome {
        guard r.count == 2 || r.count == 3 else { out.writeStaticString(Reply.wrongArguments); return .next }
        if r.count == 3 && !r.token(2, is: "unix") {
            out.writeLine("CLIENT_ERROR Wrong format of arguments.")
            return .next
        }
        guard checkKey(r, 1, out: &out) else { return .next }
        let route = self.route()
        if !route.standalone {
            let k = keyRoute(r, 1, session, route)
            if storage(named: k.hash) == nil {
                out.writeLine("SERVER_ERROR \(k.hash) does not exists.")
                return .next
            }
            if !route.readsLocal[k.index] { return forwardGetExpt(r, session, route.lists[k.index].first) }
        }
        let result = try withKey(r, 1, session) { storage, key, vn in try storage.rawHeader(vn: vn, key: key) }
        switch result {
        case .noHash(let h): out.writeLine("SERVER_ERROR \(h) does not exists.")
        case .ok(let h?):
            out.writeLine(r.count == 3 ? String(h.expire) : RubyTime.string(unix: Int(h.expire)))
            out.writeStaticString(Reply.end)
        case .ok(nil): out.writeStaticString(Reply.end)
        }
        return .next
    }

    /// `get_expt` of a key held elsewhere: asked as it is, answered with its lines and `END`
    /// (ROMA 1.3 relayed only the last line, without CR LF and `END`: §11 item 10).
    private func forwardGetExpt(_ r: Request, _ session: Session, _ owner: String?) -> Outcome {
        var m = ByteBuffer()
        m.writeStaticString("get_expt")
        for i in 1..<r.count {
            m.writeStaticString(" ")
            var t = i == 1 ? Dispatcher.namingHash(r.tokenSlice(i), session) : r.tokenSlice(i)
            m.writeBuffer(&t)
        }
        m.writeStaticString("\r\n")
        guard let owner else { return forwardLine(nil, m) }
        node.stats.forwardCount.add(1, ordering: .relaxed)
        return .deferred(node.peers.request(owner, m, kind: .lines, on: loop, timeout: forwardTimeout).map { reply in
            var b = ByteBuffer()
            switch reply {
            case .lines(let lines):
                for var l in lines { b.writeBuffer(&l); b.writeStaticString("\r\n") }
                b.writeStaticString(Reply.end)
            case .line(var l) where !l.readableBytesView.starts(with: "ERROR".utf8):
                b.writeBuffer(&l)
                b.writeStaticString("\r\n")
            default:
                b.writeLine(Dispatcher.forwardFailed)
            }
            return b
        }.recover { _ in
            var b = ByteBuffer()
            b.writeLine(Dispatcher.forwardFailed)
            return b
        })
    }

    /// memcached `flush_all [delay] [noreply]`: every live record of every hash gets a delete mark
    /// (off the event loop). As in memcached the delay is seconds from now, or a UNIX time when
    /// above 30 days; zero or negative means now; one more token is ignored unless `noreply`.
    func flushAll(_ r: Request, out: inout ByteBuffer) -> Outcome {
        let noreply = hasNoreply(r)
        guard r.count <= 3 else {
            out.writeLine("CLIENT_ERROR bad command line format.  Usage: flush_all [delay] [noreply]")
            return .next
        }
        var delay: Int64 = 0
        if r.count >= 2 && !(r.count == 2 && noreply) {
            guard let d = r.withToken(1, { t -> Int64? in Int64(String(decoding: t, as: UTF8.self)) }) else {
                out.writeLine("CLIENT_ERROR invalid exptime argument")
                return .next
            }
            delay = d > Int64(Expiry.relativeLimit) ? d - Int64(Dispatcher.now()) : d
        }
        let node = self.node
        let storages = node.hashNames.compactMap { node.storage($0) }
        let work: @Sendable () -> Void = {
            var n = 0
            for s in storages {
                do { n += try s.deleteAll(now: Dispatcher.now()) } catch { node.logger.error("flush_all on \(s.name): \(error)") }
            }
            node.logger.info("flush_all deleted \(n) records")
        }
        let loop = node.group.next()
        if delay > 0 {
            // A flush centuries away never comes (and would overflow the timer).
            if delay < 100 * 365 * 86400 {
                loop.scheduleTask(in: .seconds(delay)) { node.background { work() } }
            }
            if !noreply { out.writeStaticString(Reply.ok) }
            return .next
        }
        let done = node.background(on: loop) {
            work()
            var reply = ByteBuffer()
            if !noreply { reply.writeStaticString(Reply.ok) }
            return reply
        }
        return .deferred(done)
    }
}
