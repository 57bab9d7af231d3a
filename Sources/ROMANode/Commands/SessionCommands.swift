import NIOCore
import ROMAProtocol
import ROMARouting

/// Session and information commands (spec R3.14, R3.16, R3.17) and memcached's `verbosity`.
extension Dispatcher {
    /// `version`, `whoami`, `nodelist`, `hashlist`, `quit` and memcached's `verbosity`.
    /// Like memcached, `version` and `quit` ignore extra tokens; `whoami`, `nodelist` and
    /// `hashlist` (ROMA's own) refuse them.
    func simple(_ command: Command, _ r: Request, out: inout ByteBuffer) -> Outcome {
        switch command {
        case .verbosity: return verbosity(r, out: &out)
        case .version:
            out.writeLine("VERSION ROMA-1.3.0")
            return .next
        case .quit:
            return .close
        default: break
        }
        guard r.count == 1 else {
            out.writeLine("CLIENT_ERROR Wrong number of arguments. Usage: \(command.name)")
            return .next
        }
        switch command {
        case .whoami: out.writeLine(node.config.name)
        case .nodelist: out.writeLine(node.routing.nodes.sorted().joined(separator: " "))
        case .hashlist: out.writeLine(node.hashNames.joined(separator: " "))
        default: break
        }
        return .next
    }

    /// memcached's `verbosity <level> [noreply]`: a level and one more token (ignored unless it is
    /// `noreply`); a trailing `noreply` silences even the error (memcached 1.6).
    private func verbosity(_ r: Request, out: inout ByteBuffer) -> Outcome {
        guard r.count == 2 || r.count == 3 else {
            out.writeLine("CLIENT_ERROR bad command line format.  Usage: verbosity <level> [noreply]")
            return .next
        }
        let levelOK = r.withToken(1) { t in !t.isEmpty && t.allSatisfy { $0 >= 0x30 && $0 <= 0x39 } && UInt64(String(decoding: t, as: UTF8.self)) != nil }
        out.writeLine(levelOK ? "OK" : "CLIENT_ERROR bad command line format")
        return .next
    }

    /// `set_log_level debug|info|warn|error`: this node's log level from now on (ROMA's runtime
    /// setter: not relayed, `stat log_level` shows it).
    func setLogLevel(_ r: Request, out: inout ByteBuffer) -> Outcome {
        guard r.count >= 2 else {
            out.writeLine("CLIENT_ERROR number of arguments (0 for 1)")
            return .next
        }
        let name = r.tokenString(1).lowercased()
        guard ["debug", "info", "warn", "error"].contains(name), let level = RuntimeLogLevel.parse(name) else {
            out.writeLine("CLIENT_ERROR no match log-level string")
            return .next
        }
        node.logger.notice("set_log_level \(name) (was \(RuntimeLogLevel.name))")
        RuntimeLogLevel.set(level)
        out.writeStaticString(Reply.stored)
        return .next
    }

    /// `defhash [name]`: the connection's default hash (R3.17). Relayed as in ROMA: the reply is
    /// the Ruby-inspect hash of this node's answer and every other node's to `rdefhash [name]`.
    /// `rdefhash` answers as `defhash` would but leaves the default of the connection it came
    /// on alone: that is a pooled peer connection, shared by every forwarded request (ROMA
    /// sets it, so after a `defhash` the forwards of other clients could land in that hash).
    func defhash(_ command: Command, _ r: Request, session: inout Session, out: inout ByteBuffer) -> Outcome {
        var result = session.defaultHash
        if r.count == 2 {
            let name = r.tokenString(1)
            guard node.storage(name) != nil else {
                out.writeLine("CLIENT_ERROR \(name) does not find.")
                return .next
            }
            if command == .defhash { session.defaultHash = name }
            result = "STORED"
        }
        return answerOrRelay(command, own: result, line: Dispatcher.relayLine(command, r), ownFirst: true, out: &out)
    }

    /// ROMA's relay line of a command defined "with relay": `r<cmd> <arguments>` (with the space
    /// even when there are no arguments, as ROMA sends it).
    static func relayLine(_ command: Command, _ r: Request) -> String {
        "r\(command.name) \((1..<max(1, r.count)).map { r.tokenString($0) }.joined(separator: " "))\r\n"
    }

    /// `balse [reason]`, `shutdown [reason]` and `shutdown_self` (R3.16): ask, then act on the answer line.
    func prompt(_ command: Command, _ r: Request, session: inout Session, out: inout ByteBuffer) -> Outcome {
        if command == .shutdownSelf {
            guard r.count == 1 else {
                out.writeLine("ERROR: shutdown_instance has irregular argument.")
                return .next
            }
            let rule = String(repeating: "=", count: 65)
            out.writeString("\r\n\(rule)\r\nCAUTION!!: \r\n\tThis command kill the instance!\r\n\tThere is some possibility of occuring redundancy down!\r\n\(rule)\r\n\r\nAre you sure to shutdown this instance?(yes/no)\r\n")
            session.prompt = .shutdownSelf
        } else if command == .shutdown {
            out.writeLine("*** ARE YOU REALLY SURE TO SHUTDOWN? *** (yes/no)")
            session.prompt = .shutdown
        } else {
            out.writeLine("Are you sure?(yes/no)")
            session.prompt = .balse
        }
        return .next
    }

    /// The answer to a prompt: exactly `yes` stops the node; anything else closes the connection.
    func answer(_ prompt: Session.Prompt, line: ByteBuffer, node: Node, out: inout ByteBuffer) -> Outcome {
        guard line.readableBytesView.elementsEqual("yes".utf8) else { return .close }
        switch prompt {
        case .balse, .shutdown:
            // R3.16: failover off (the nodes are about to go together), `rbalse`/`rshutdown` to
            // every other node of the table, then the Ruby-inspect hash of their answers and
            // this node's own BYE; then this node stops too.
            node.failover.setEnabled(false)
            let isBalse = prompt == .balse
            let reply = node.relayed(isBalse ? "rbalse\r\n" : "rshutdown\r\n", own: "BYE")
            node.logger.notice("\(isBalse ? "balse" : "shutdown"): stopping every node of the routing table")
            return .replyThenStopNode(reply, isBalse ? "balse" : "shutdown")
        case .shutdownSelf:
            out.writeStaticString(Reply.bye)
            return .closeAndStopNode("shutdown_self")
        }
    }

    /// `mklhash <id>`, `routingdump [bin|json|yaml|yamlbytes]`, `get_key_info <key>` on the node's routing table.
    func routingCommand(_ command: Command, _ r: Request, session: Session, out: inout ByteBuffer) -> Outcome {
        switch command {
        case .mklhash:
            guard r.count == 2 else { out.writeStaticString(Reply.wrongArguments); return .next }
            out.writeLine(node.routes.mklhash(id: r.tokenString(1)) ?? "")
        case .routingdump:
            // R4.8: no argument = Ruby Marshal (what roma-client asks for), bin, json, yaml, yamlbytes.
            let rt = node.routing(forClient: session.clientAddress)
            if r.count == 1 || (r.count == 2 && r.token(1, is: "bin")) {
                let dump = r.count == 1 ? rt.marshalDump() : rt.binDump()
                out.writeLine(String(dump.count))
                out.writeBytes(dump)
                out.writeStaticString("\r\n")
                out.writeStaticString(Reply.end)
            } else if r.count == 2 && r.token(1, is: "json") {
                out.writeLine(rt.jsonDump())
                out.writeStaticString(Reply.end)
            } else if r.count == 2 && r.token(1, is: "yaml") {
                out.writeString(rt.yaml())
                out.writeStaticString("\r\n")
                out.writeStaticString(Reply.end)
            } else if r.count == 2 && r.token(1, is: "yamlbytes") {
                out.writeLine(String(rt.yaml().utf8.count + 7))
                out.writeStaticString(Reply.end)
            } else {
                out.writeLine("CLIENT_ERROR")
            }
        case .getKeyInfo:
            guard r.count == 2 else { out.writeStaticString(Reply.wrongArguments); return .next }
            r.withToken(1) { token in
                let key = token.firstIndex(of: 0x1b).map { UnsafeRawBufferPointer(rebasing: token[..<$0]) } ?? token
                let d = node.space.digest(ofKey: key)
                let vn = node.space.vnode(ofDigest: d)
                out.writeLine("d = \(d) 0x\(String(d, radix: 16))")
                out.writeLine("vn = \(vn) 0x\(String(vn, radix: 16))")
                out.writeLine("nodes = \(RubyInspect.array(node.routing.nodes(forVnode: vn) ?? []))")
                out.writeStaticString(Reply.end)
            }
        default: break
        }
        return .next
    }
}

/// Hash administration (R3.17): `createhash`, `deletehash`, `mounthash`, `umounthash`. Relayed
/// as in ROMA: what this node did, then what every other node answered to `r<cmd> <name>`, as
/// the Ruby-inspect hash `{"<this node>"=>"<result>", "<peer>"=>"<result>", …}`; a usage error
/// or one ROMA raises (`umounthash`/`mounthash` of a hash not there) is answered alone, unrelayed.
/// File work (opening 10 databases, removing a directory) runs on the thread pool.
extension Dispatcher {
    func hashAdmin(_ command: Command, _ r: Request, session: Session, out: inout ByteBuffer) -> Outcome {
        guard r.count == 2 else {
            out.writeLine("CLIENT_ERROR usage:\(command.name) <name>")
            return .next
        }
        let name = r.tokenString(1)
        guard Dispatcher.isValidHashName(name) else {
            out.writeLine("CLIENT_ERROR invalid hash name '\(name)': use letters, digits, '_', '-' and '.', not starting with '.'")
            return .next
        }
        let defaultHash = session.defaultHash
        let node = self.node
        let relay = Dispatcher.relayLine(command, r)
        let done = node.background(on: loop) { () -> Node.HashAdminResult in
            switch command {
            case .createhash, .rcreatehash: return node.openHash(name, mount: false)
            case .mounthash, .rmounthash: return node.openHash(name, mount: true)
            case .umounthash, .rumounthash: return node.closeHash(name, defaultHash: defaultHash, delete: false)
            default: return node.closeHash(name, defaultHash: defaultHash, delete: true)
            }
        }
        return .deferred(done.flatMap { result -> EventLoopFuture<ByteBuffer> in
            switch result {
            case .value(let v) where !command.isRelayedForm:
                return node.relayed(relay, own: v, ownFirst: true)
            case .value(let line), .error(let line):
                var b = ByteBuffer()
                b.writeLine(line)
                return done.eventLoop.makeSucceededFuture(b)
            }
        })
    }

    /// A hash name becomes a directory name: no separators, no leading dot, no control bytes.
    static func isValidHashName(_ name: String) -> Bool {
        guard !name.isEmpty, name.utf8.count <= 128, !name.hasPrefix(".") else { return false }
        return name.utf8.allSatisfy { c in
            (c >= 0x30 && c <= 0x39) || (c >= 0x41 && c <= 0x5a) || (c >= 0x61 && c <= 0x7a) || c == 0x5f || c == 0x2d || c == 0x2e
        }
    }
}
