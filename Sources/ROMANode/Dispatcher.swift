import NIOCore
import ROMAProtocol
import ROMARouting
import ROMAStorage

#if canImport(Glibc)
import Glibc
#endif

/// Executes parsed requests against the node. One per connection (it is cheap: references only).
/// Command families live in `Commands/…` extensions.
struct Dispatcher {
    let node: Node
    /// The last storage looked up by name on this connection (event-loop confined).
    let cache = StorageCache()

    /// Caches one name → storage lookup, invalidated when hashes are mounted or unmounted, and
    /// the routing snapshot, invalidated when the table changes. Also the connection's event loop.
    final class StorageCache {
        var name = ""
        var storage: HashStorage?
        var version = -1
        var route: RouteSnapshot?
        var routeVersion = -1
        var loop: (any EventLoop)?
    }

    /// The routing snapshot, from the connection's cache while the table is unchanged.
    @inline(__always) func route() -> RouteSnapshot {
        let v = node.routes.version.load(ordering: .acquiring)
        if cache.routeVersion == v, let r = cache.route { return r }
        let r = node.routes.snapshot
        cache.route = r
        cache.routeVersion = v
        return r
    }

    /// The connection's event loop.
    var loop: any EventLoop { cache.loop ?? node.group.next() }

    /// The storage of `name`, from the connection's cache when still valid.
    @inline(__always) func storage(named name: String) -> HashStorage? {
        let v = node.storageVersion.load(ordering: .acquiring)
        if cache.version == v && cache.name == name { return cache.storage }
        let s = node.storage(name)
        cache.name = name
        cache.storage = s
        cache.version = v
        return s
    }

    /// Runs one request and writes its reply into `out`.
    func execute(_ r: Request, session: inout Session, out: inout ByteBuffer) -> Outcome {
        guard let command = r.command else {
            unknown(r, out: &out)
            return .next
        }
        // R3.7: until every node has answered, data commands are not in the command table.
        if command.isDataCommand && !node.serving.load(ordering: .relaxed) {
            out.writeBytes(UnknownCommand.reply(for: r.tokenBytes(0), commands: ROMACommandNames.startingMode))
            return .next
        }
        // memcached: a trailing `noreply` silences every reply of the command, errors included.
        guard Dispatcher.isSilenced(command, r) else { return run(command, r, session: &session, out: &out) }
        let mark = out.writerIndex
        let outcome = run(command, r, session: &session, out: &out)
        switch outcome {
        case .next: out.moveWriterIndex(to: mark)
        case .deferred(let f): return .deferred(f.map { _ in ByteBuffer() })
        case .replicating(let f): return .replicating(f.map { _ in ByteBuffer() })
        default: break
        }
        return outcome
    }

    /// Whether memcached would take the last token as `noreply`: only where it accepts the
    /// token count (`delete noreply` deletes the key "noreply"; `incr k 1 2 noreply` is an error).
    static func isSilenced(_ command: Command, _ r: Request) -> Bool {
        let n = r.count
        switch command {
        case .set, .add, .replace, .append, .prepend, .cas: return r.noreply
        case .incr, .decr, .touch: guard n == 4 else { return false }
        case .delete: guard n == 3 || n == 4 else { return false }
        case .flushAll, .verbosity: guard n == 2 || n == 3 else { return false }
        default: return false
        }
        return r.token(n - 1, is: "noreply")
    }

    /// A command that is not ours: ROMA's commands this node does not implement yet get one
    /// `SERVER_ERROR` line (a peer must not read it as an answer); anything else gets ROMA's
    /// unknown-command reply (R3.3), which never suggests the word typed.
    func unknown(_ r: Request, out: inout ByteBuffer) {
        let token = r.tokenBytes(0)
        let lower = String(decoding: token.map { $0 >= 0x41 && $0 <= 0x5a ? $0 | 0x20 : $0 }, as: UTF8.self)
        if Dispatcher.listedNames.contains(lower) {
            out.writeLine("SERVER_ERROR \(lower) is not supported by this node yet")
            return
        }
        out.writeBytes(UnknownCommand.reply(for: token, commands: Dispatcher.commandNames))
    }

    /// ROMA's command names this node recognises but does not serve yet.
    static let listedNames: Set<String> = Set(ROMACommandNames.normalMode).subtracting(Command.allCases.map(\.name))

    private func run(_ command: Command, _ r: Request, session: inout Session, out: inout ByteBuffer) -> Outcome {
        do {
            switch command {
            case .get: return try get(r, session: session, out: &out)
            case .gets: return try gets(r, session: session, out: &out)
            case .set: return try store(.set, r, session: session, out: &out)
            case .add: return try store(.add, r, session: session, out: &out)
            case .replace: return try store(.replace, r, session: session, out: &out)
            case .append: return try store(.append, r, session: session, out: &out)
            case .prepend: return try store(.prepend, r, session: session, out: &out)
            case .cas: return try cas(r, session: session, out: &out)
            case .delete: return try delete(r, session: session, out: &out)
            case .incr: return try incr(r, decrement: false, session: session, out: &out)
            case .decr: return try incr(r, decrement: true, session: session, out: &out)
            case .setExpt: return try setExpt(r, session: session, out: &out)
            case .getExpt: return try getExpt(r, session: session, out: &out)
            case .touch: return try touch(r, session: session, out: &out)
            case .flushAll: return flushAll(r, out: &out)
            case .version, .whoami, .nodelist, .hashlist, .quit, .verbosity:
                return simple(command, r, out: &out)
            case .setLogLevel: return setLogLevel(r, out: &out)
            case .setHilatencyWarnTime, .rsetHilatencyWarnTime, .setSpushvKlengthWarn, .rsetSpushvKlengthWarn,
                 .setSpushvVlengthWarn, .rsetSpushvVlengthWarn:
                return runtimeSetter(command, r, out: &out)
            case .switchDnsCaching, .rswitchDnsCaching: return switchDnsCaching(command, r, out: &out)
            case .setDescriptorTableSize, .rsetDescriptorTableSize: return setDescriptorTableSize(command, r, out: &out)
            case .setContinuousLimit, .rsetContinuousLimit, .setAcceptedConnectionExpireTime, .rsetAcceptedConnectionExpireTime,
                 .setConnectionPoolMaxlength, .rsetConnectionPoolMaxlength, .setConnectionPoolExpireTime, .rsetConnectionPoolExpireTime,
                 .setEmconnectionPoolMaxlength, .rsetEmconnectionPoolMaxlength, .setEmconnectionPoolExpireTime,
                 .rsetEmconnectionPoolExpireTime, .setRoutingTransTimeout, .rsetRoutingTransTimeout, .setSpushvReadTimeout,
                 .rsetSpushvReadTimeout, .setReqpushvTimeoutCount, .rsetReqpushvTimeoutCount, .dcnice, .rdcnice,
                 .setLogShiftSize, .rsetLogShiftSize, .setLogShiftAge, .rsetLogShiftAge, .restart, .rrestart, .setCleanupRegexp:
                return settingCommand(command, r, out: &out)
            case .setLatencyAvgCalcRule, .rsetLatencyAvgCalcRule, .addLatencyAvgCalcCmd, .raddLatencyAvgCalcCmd,
                 .delLatencyAvgCalcCmd, .rdelLatencyAvgCalcCmd, .chgLatencyAvgCalcTimeCount, .rchgLatencyAvgCalcTimeCount:
                return latencyCommand(command, r, out: &out)
            case .wbCommandMap, .rwbCommandMap, .setWbShiftSize, .rsetWbShiftSize, .writebehindRotate, .rwritebehindRotate,
                 .writebehindGetPath, .rwritebehindGetPath, .writebehindGetCurrentFile, .rwritebehindGetCurrentFile,
                 .switchReplication, .rswitchReplication:
                return writeBehindCommand(command, r, out: &out)
            case .defhash, .rdefhash: return defhash(command, r, session: &session, out: &out)
            case .createhash, .deletehash, .mounthash, .umounthash, .rcreatehash, .rdeletehash, .rmounthash, .rumounthash:
                return hashAdmin(command, r, session: session, out: &out)
            case .stat, .stats: return stat(r, out: &out)
            case .balse, .shutdown, .shutdownSelf: return prompt(command, r, session: &session, out: &out)
            case .mklhash, .routingdump, .getKeyInfo: return routingCommand(command, r, session: session, out: &out)
            case .setStorageStatus: return setStorageStatus(r, out: &out)
            case .setGuiRunSnapshot: return setGuiRunSnapshot(r, out: &out)
            case .setGuiLastSnapshot, .rsetGuiLastSnapshot: return setGuiLastSnapshot(command, r, out: &out)
            case .fget: return try fget(r, session: session, out: &out)
            case .fset: return try store(.set, r, session: session, out: &out, forwarded: true)
            case .fadd: return try store(.add, r, session: session, out: &out, forwarded: true)
            case .freplace: return try store(.replace, r, session: session, out: &out, forwarded: true)
            case .fappend: return try store(.append, r, session: session, out: &out, forwarded: true)
            case .fprepend: return try store(.prepend, r, session: session, out: &out, forwarded: true)
            case .fcas: return try cas(r, session: session, out: &out, forwarded: true)
            case .fincr: return try incr(r, decrement: false, session: session, out: &out, forwarded: true)
            case .fdecr: return try incr(r, decrement: true, session: session, out: &out, forwarded: true)
            case .fdelete: return try delete(r, session: session, out: &out, forwarded: true)
            case .fsetExpt: return try setExpt(r, session: session, out: &out, forwarded: true)
            case .rset: return try rset(r, compressed: false, session: session, out: &out)
            case .rzset: return try rset(r, compressed: true, session: session, out: &out)
            case .rdelete: return try rdelete(r, session: session, out: &out)
            case .out: return try outCommand(r, session: session, out: &out)
            case .getroute: return getroute(r, out: &out)
            case .setroute: return setroute(r, out: &out)
            case .join, .leave, .createNodesFromVIdx: return membership(command, r, out: &out)
            case .enabledRepetitionInRouting: return enabledRepetition(r, session: session, out: &out)
            case .addRttableSubNid, .raddRttableSubNid, .deleteRttableSubNid, .rdeleteRttableSubNid,
                 .clearRttableSubNid, .rclearRttableSubNid:
                return subNidCommand(command, r, out: &out)
            case .historyOfLost: return historyOfLost(r, out: &out)
            case .setSizeOfZredundant, .rsetSizeOfZredundant: return sizeOfZredundant(command, r, out: &out)
            case .switchFailover, .rswitchFailover, .setThresholdForFailover, .rsetThresholdForFailover,
                 .setGapForFailover, .rsetGapForFailover, .setLostAction, .rsetLostAction:
                return failoverAdmin(command, r, out: &out)
            case .spushv: return spushv(r, out: &out)
            case .reqpushv: return reqpushv(r, out: &out)
            case .fileseed: return fileseed(r, out: &out)
            case .recover, .rrecover: return recover(command, out: &out)
            case .release:
                out.writeLine(node.startRelease() ?? "STARTED")
                return .next
            case .balance, .rbalance: return balance(command, out: &out)
            case .setAutoRecover, .rsetAutoRecover: return setAutoRecover(command, r, out: &out)
            case .spushvProtection:
                if r.count == 2 { node.spushvProtection.store(r.token(1, is: "true"), ordering: .relaxed) }
                out.writeLine(node.spushvProtection.load(ordering: .relaxed) ? "true" : "false")
                return .next
            case .rbalse, .rshutdown:
                node.failover.setEnabled(false)
                out.writeStaticString(Reply.bye)
                return .closeAndStopNode("\(command.name)\(r.count > 1 ? " " + r.tokenString(1) : "")")
            case .forcedlyStart:
                node.forceStart()
                out.writeLine("STARTED")
                return .next
            }
        } catch {
            // R3.5: a storage-engine failure is reported and the connection closed.
            node.logger.error("storage engine error on '\(command.name)': \(error)")
            out.writeLine("SERVER_ERROR \(error) in storage engine")
            return .close
        }
    }

    /// Names known to the unknown-command suggestion (R3.3): ROMA's table plus memcached's extras.
    static let commandNames: [String] = {
        var names = ROMACommandNames.normalMode
        for extra in ["touch", "verbosity", "flush_all"] where !names.contains(extra) { names.append(extra) }
        return names
    }()

    // MARK: - Helpers shared by the families

    /// Current UNIX time as ROMA's 32-bit clock.
    /// Read with `CLOCK_REALTIME`: glibc's `time()` uses the coarse clock, which can still show
    /// the previous second for a few milliseconds after clients' clocks have moved on.
    @inline(__always) static func now() -> UInt32 {
        var ts = timespec()
        clock_gettime(CLOCK_REALTIME, &ts)
        return UInt32(truncatingIfNeeded: ts.tv_sec)
    }

    /// Resolves token `i` as `key[\x1Bhash]`: calls `body` with the storage, the bare key and its vnode.
    /// Returns nil (without calling) when the hash is not mounted; `hash` then names it.
    func withKey<R>(_ r: Request, _ i: Int, _ session: Session,
                    _ body: (HashStorage, UnsafeRawBufferPointer, UInt32) throws -> R) rethrows -> KeyResult<R> {
        try r.withToken(i) { token in
            var key = token
            var storage: HashStorage?
            var hashName = session.defaultHash
            if let esc = token.firstIndex(of: 0x1b) {
                key = UnsafeRawBufferPointer(rebasing: token[..<esc])
                hashName = String(decoding: token[(esc + 1)...], as: UTF8.self)
            }
            storage = self.storage(named: hashName)
            guard let storage else { return .noHash(hashName) }
            let vn = UInt32(truncatingIfNeeded: node.space.vnode(ofKey: key))
            return .ok(try body(storage, key, vn))
        }
    }

    enum KeyResult<R> {
        case ok(R)
        case noHash(String)
    }

    /// Whether the last token is `noreply`.
    func hasNoreply(_ r: Request) -> Bool { r.count > 1 && r.token(r.count - 1, is: "noreply") }

    /// Ruby `to_i` of token `i`.
    func lenientInt(_ r: Request, _ i: Int) -> LenientInteger {
        r.withToken(i) { LenientInteger(parsing: $0) }
    }

    /// Writes `CLIENT_ERROR …` for a bad key token; true when the key is acceptable.
    func checkKey(_ r: Request, _ i: Int, out: inout ByteBuffer) -> Bool {
        if let problem = r.withToken(i, { RequestParser.keyProblem($0, limits: node.config.limits) }) {
            out.writeLine(problem)
            return false
        }
        return true
    }
}
