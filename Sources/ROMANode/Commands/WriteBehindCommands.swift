import NIOCore
import ROMAProtocol
import ROMAStorage

/// Write-behind's commands (R10.1), relayed to every node as `r<cmd>` with ROMA's reply hash:
/// `wb_command_map {:set=>1, …}` (the map's inspect), `writebehind_rotate <hash>` (`ROTATED` /
/// `NOT_OPEND`), `writebehind_get_path <hash>`, `writebehind_get_current_file <hash>` (the open
/// file or `NOT_OPEND`), `set_wb_shift_size <bytes>` (`STORED`).
extension Dispatcher {
    func writeBehindCommand(_ command: Command, _ r: Request, out: inout ByteBuffer) -> Outcome {
        let wb = node.writeBehind
        let args = (1..<max(1, r.count)).map { r.tokenString($0) }
        switch command {
        case .wbCommandMap, .rwbCommandMap:
            guard !args.isEmpty else {
                out.writeLine("CLIENT_ERROR number of arguments")
                return .next
            }
            let text = args.joined()
            guard let map = WriteBehind.parseMap(text) else {
                out.writeLine("CLIENT_ERROR hash string parse error")
                return .next
            }
            wb.setMap(map)
            node.logger.info("wb_command_map \(wb.mapInspect)")
            return answerOrRelay(command, own: wb.mapInspect, line: "rwb_command_map \(text)\r\n", out: &out)
        case .setWbShiftSize, .rsetWbShiftSize:
            guard let a = onlyArgument(r, out: &out),
                  let n = positiveArgument(a, "CLIENT_ERROR length must be greater than zero", out: &out) else { return .next }
            wb.setShiftSize(n)
            return answerOrRelay(command, own: "STORED", line: Dispatcher.relayLine(command, r), out: &out)
        default:
            break
        }
        if command == .switchReplication || command == .rswitchReplication { return switchReplication(command, args, out: &out) }
        guard let hash = args.first else {
            out.writeLine("CLIENT_ERROR number of arguments (0 for 1)")
            return .next
        }
        let line = "r\(command.name) \(hash)\r\n"
        switch command {
        case .writebehindGetPath, .rwritebehindGetPath:
            return answerOrRelay(command, own: wb.hashPath(hash), line: line, out: &out)
        case .writebehindRotate, .rwritebehindRotate, .writebehindGetCurrentFile, .rwritebehindGetCurrentFile:
            // Answered in the writer's queue, after every event queued before it.
            let promise = loop.makePromise(of: String.self)
            if command == .writebehindRotate || command == .rwritebehindRotate {
                node.logger.info("WriteBehind:rotate \(hash)")
                wb.rotate(hash) { promise.succeed($0 ? "ROTATED" : "NOT_OPEND") }
            } else {
                wb.currentFile(hash) { promise.succeed($0 ?? "NOT_OPEND") }
            }
            return answerOrRelay(command, own: promise.futureResult, line: line)
        default:
            return .next
        }
    }

    /// `switch_replication <true|false> [nid] [all]` (R10.2): `ACTIVATED` / `DEACTIVATED`, relayed.
    /// `true` needs the node id of a node of the replica cluster (ROMA answers `ACTIVATED` without
    /// one and replicates nowhere).
    private func switchReplication(_ command: Command, _ args: [String], out: inout ByteBuffer) -> Outcome {
        guard (1...3).contains(args.count) else {
            out.writeLine("CLIENT_ERROR number of arguments")
            return .next
        }
        guard args[0] == "true" || args[0] == "false" else {
            out.writeLine("CLIENT_ERROR value must be true or false")
            return .next
        }
        if args.count == 3 && args[2] != "all" {
            out.writeLine("CLIENT_ERROR [copy target] must be all or nil")
            return .next
        }
        let line = "rswitch_replication \(args.joined(separator: " "))\r\n"
        guard args[0] == "true" else {
            node.clusterReplication.stop()
            return answerOrRelay(command, own: "DEACTIVATED", line: line, out: &out)
        }
        guard args.count >= 2, PeerAddress.split(args[1]) != nil else {
            out.writeLine("CLIENT_ERROR the node id (address_port) of a node of the replica cluster is needed")
            return .next
        }
        let ready = node.clusterReplication.start(seed: args[1], on: loop)
        if args.count == 3 { node.replicateExistingData() }
        return answerOrRelay(command, own: ready.map { "ACTIVATED" }, line: line)
    }

    /// After a write executed here as primary: the key's state goes to the replica cluster.
    func replicateToCluster(_ r: Request, _ session: Session) {
        guard node.clusterReplication.isOn.load(ordering: .relaxed) else { return }
        let now = Dispatcher.now()
        _ = try? withKey(r, 1, session) { storage, key, vn in
            let rec = try storage.rawRecord(vn: vn, key: key)
            node.clusterReplication.enqueue(ClusterReplication.event(hash: storage.name, key: Array(key), record: rec, now: now))
        }
    }

    /// The code and previous value for write-behind of `op` on key token 1, read before the write
    /// (`<op>__prev`; `delete` logs the value it removes); nil when nothing is to be logged.
    func writeBehindBefore(_ operation: @autoclosure () -> String, _ r: Request, _ session: Session) -> WriteBehindBefore? {
        let wb = node.writeBehind
        guard wb.isOn.load(ordering: .relaxed) else { return nil }
        let op = operation()
        let prevCode = wb.code(op, previous: true)
        let code = wb.code(op)
        guard prevCode != nil || code != nil else { return nil }
        var previous: [UInt8]?
        var expire: UInt32?
        var hash = session.defaultHash
        var bare: [UInt8] = []
        _ = try? withKey(r, 1, session) { storage, key, vn in
            hash = storage.name
            bare = Array(key)
            try storage.get(vn: vn, key: key, now: Dispatcher.now()) { h, v in
                previous = Array(v)
                expire = h.expire
            }
        }
        return WriteBehindBefore(op: op, hash: hash, key: bare, code: code, prevCode: prevCode, previous: previous, expire: expire)
    }

    /// After a write executed here: logs `<op>__prev` (when there was a value) and `op` with `value`.
    func writeBehindAfter(_ b: WriteBehindBefore?, value: [UInt8]?) {
        guard let b else { return }
        let wb = node.writeBehind
        if let c = b.prevCode {
            // set_expt__prev logs the previous expire time, the others the previous value.
            let prev = b.op == "set_expt" ? b.expire.map { Array(String($0).utf8) } : b.previous
            if let prev { wb.push(hash: b.hash, code: c, key: b.key, value: prev) }
        }
        if let c = b.code { wb.push(hash: b.hash, code: c, key: b.key, value: value ?? []) }
    }

    /// The value of key token 1 now (what an append or prepend left).
    func currentValue(_ r: Request, _ session: Session) -> [UInt8]? {
        var out: [UInt8]?
        _ = try? withKey(r, 1, session) { storage, key, vn in
            try storage.get(vn: vn, key: key, now: Dispatcher.now()) { _, v in out = Array(v) }
        }
        return out
    }
}

/// What `writeBehindBefore` found.
struct WriteBehindBefore {
    let op: String
    let hash: String
    let key: [UInt8]
    let code: UInt16?
    let prevCode: UInt16?
    let previous: [UInt8]?
    let expire: UInt32?
}
