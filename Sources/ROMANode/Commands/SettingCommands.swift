import NIOCore
import ROMAProtocol

/// The rest of ROMA's runtime setters (R3.6, R5.8, R6.6, R9.1), each relayed to every node as
/// `r<cmd>` with ROMA's reply hash, validated with ROMA's error lines (`\r\n` where some of
/// ROMA's end in `\n\r`), and each with its effect here:
/// - `set_continuous_limit start:rate:full`: connection shedding after client commands (R3.6);
/// - `set_accepted_connection_expire_time <s>`: the idle sweep of accepted connections;
/// - `set_connection_pool_maxlength|expire_time`, `set_emconnection_pool_maxlength|expire_time`:
///   the peer connection pools (`PeerPoolSettings`);
/// - `set_routing_trans_timeout <s>`: the oldest a vnode copy's transaction may get;
/// - `set_spushv_read_timeout <n>`: how long a received vnode stream may stall (n × the data
///   read timeout);
/// - `set_reqpushv_timeout_count <n>`: how long a copy asked for is awaited (n × 0.1 s);
/// - `dcnice 1…5`: the pause after each chunk of a vnode copy sent from here;
/// - `set_log_shift_size <bytes>`, `set_log_shift_age <n|min|hour|daily|weekly|monthly>`;
/// - `restart`: every client and peer connection is closed (ROMA restarts its event loop);
/// - `set_cleanup_regexp <re>` (this node only; failover must be on): the next clean-up pass
///   writes `key,physical,logical` for every key matching into `<hash dir>/klist.txt`; answered
///   `STORED` once per hash, as ROMA, and a running pass stops.
extension Dispatcher {
    func settingCommand(_ command: Command, _ r: Request, out: inout ByteBuffer) -> Outcome {
        let s = node.settings
        let pools = node.peers.settings
        let line = Dispatcher.relayLine(command, r)
        var own = "STORED"
        switch command {
        case .setContinuousLimit, .rsetContinuousLimit:
            guard r.count >= 2 else {
                out.writeLine("CLIENT_ERROR number of arguments (0 for 1)")
                return .next
            }
            if !s.setContinuousLimit(r.tokenString(1)) { own = "NOT_STORED" }
        case .setAcceptedConnectionExpireTime, .rsetAcceptedConnectionExpireTime:
            guard let a = onlyArgument(r, out: &out) else { return .next }
            s.acceptedConnectionExpireTime.store(max(0, Dispatcher.rubyToI(a)), ordering: .relaxed)
        case .setConnectionPoolMaxlength, .rsetConnectionPoolMaxlength,
             .setEmconnectionPoolMaxlength, .rsetEmconnectionPoolMaxlength:
            guard let a = onlyArgument(r, out: &out), let n = positiveArgument(a, "CLIENT_ERROR length must be greater than zero", out: &out) else { return .next }
            let em = command == .setEmconnectionPoolMaxlength || command == .rsetEmconnectionPoolMaxlength
            if em { pools.emPoolMaxlength.store(n, ordering: .relaxed) } else { pools.poolMaxlength.store(n, ordering: .relaxed) }
        case .setConnectionPoolExpireTime, .rsetConnectionPoolExpireTime:
            guard let a = onlyArgument(r, out: &out) else { return .next }
            pools.poolExpireTime.store(max(0, Dispatcher.rubyToI(a)), ordering: .relaxed)
        case .setEmconnectionPoolExpireTime, .rsetEmconnectionPoolExpireTime:
            guard let a = onlyArgument(r, out: &out) else { return .next }
            // ROMA: 0 means never (2147483647 s), and is relayed as that.
            let n = Dispatcher.rubyToI(a) == 0 ? 2_147_483_647 : max(0, Dispatcher.rubyToI(a))
            pools.emPoolExpireTime.store(n, ordering: .relaxed)
            if command == .setEmconnectionPoolExpireTime {
                return answerOrRelay(command, own: own, line: "r\(command.name) \(Dispatcher.rubyToI(a) == 0 ? "2147483647" : a)\r\n", out: &out)
            }
        case .setRoutingTransTimeout, .rsetRoutingTransTimeout:
            guard let a = onlyArgument(r, out: &out) else { return .next }
            let v = Dispatcher.rubyToF(a)
            guard v > 0 else {
                out.writeLine("CLIENT_ERROR time value must be lager than 0")
                return .next
            }
            s.routingTransTimeout.store(v.bitPattern, ordering: .relaxed)
            s.routingTransTimeoutShown.withLockedValue { $0 = Dispatcher.rubyFloat(v) }
        case .setSpushvReadTimeout, .rsetSpushvReadTimeout, .setReqpushvTimeoutCount, .rsetReqpushvTimeoutCount:
            guard let a = onlyArgument(r, out: &out), let n = positiveArgument(a, "CLIENT_ERROR time value must be lager than 0", out: &out) else { return .next }
            let spushv = command == .setSpushvReadTimeout || command == .rsetSpushvReadTimeout
            if spushv { s.spushvReadTimeout.store(n, ordering: .relaxed) } else { s.reqpushvTimeoutCount.store(n, ordering: .relaxed) }
        case .dcnice, .rdcnice:
            guard r.count >= 2 else {
                out.writeLine("CLIENT_ERROR number of arguments (0 for 1)")
                return .next
            }
            if !s.setDcnice(Dispatcher.rubyToI(r.tokenString(1))) { own = "CLIENT_ERROR You sholud input a priority from 1 to 5." }
        case .setLogShiftSize, .rsetLogShiftSize:
            guard let a = onlyArgument(r, out: &out), let n = positiveArgument(a, "CLIENT_ERROR length must be greater than zero", out: &out) else { return .next }
            LogRotation.setSize(n)
        case .setLogShiftAge, .rsetLogShiftAge:
            guard let a = onlyArgument(r, out: &out) else { return .next }
            // ROMA: a count (`to_i`, so `3x` is 3) or one of the period names.
            let n = Dispatcher.rubyToI(a)
            guard let age = n > 0 || a == "0" ? LogRotation.Age.count(n) : LogRotation.Age(a) else {
                out.writeLine("CLIENT_ERROR invalid arguments")
                return .next
            }
            LogRotation.setAge(age)
        case .setCleanupRegexp:
            guard r.count == 2 else {
                out.writeLine("CLIENT_ERROR number of arguments \(r.count - 1) to 1")
                return .next
            }
            guard node.failover.enabled else {
                out.writeLine("CLIENT_ERROR failover disable now!!")
                return .next
            }
            let pattern = r.tokenString(1)
            let names = node.hashNames
            node.cleanupRegexps.withLockedValue { m in for n in names { m[n] = pattern } }
            if node.stats.cleanUpRunning.load(ordering: .relaxed) { node.cleanUpStop.store(true, ordering: .relaxed) }
            node.logger.info("set_cleanup_regexp \(pattern): the next clean-up pass lists the matching keys")
            for _ in names { out.writeStaticString("STORED\r\n") }
            return .next
        case .restart, .rrestart:
            own = "RESTARTED"
            if command == .rrestart {
                out.writeLine(own)
                node.restartConnections(reason: command.name)
                return .next
            }
            let node = self.node
            return .deferred(node.relayed("rrestart\r\n", own: own).map { reply in
                node.restartConnections(reason: "restart")
                return reply
            })
        default:
            return .next
        }
        node.logger.info("\(command.name) \(r.count > 1 ? r.tokenString(1) : ""): \(own)")
        return answerOrRelay(command, own: own, line: line, out: &out)
    }
}
