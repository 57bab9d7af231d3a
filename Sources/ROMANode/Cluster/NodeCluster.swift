import NIOConcurrencyHelpers
import NIOCore
import ROMAProtocol
import ROMARouting

/// Start-up gating (R3.7) and the messages a node sends on its own.
extension Node {
    /// The other nodes of the routing table.
    var peerIDs: [String] { routing.nodes.filter { $0 != nodeID } }

    /// R3.7: a node alone in its table, a joining node (`-j`, as in ROMA) and one started with
    /// `--disabled_cmd_protect` serve data commands at once. Called before the socket is bound,
    /// so that a client connecting at once is never answered as by a node still starting.
    func serveAtOnceIfAlone() {
        if config.disabledCmdProtect || peerIDs.isEmpty || config.joinSeed != nil {
            serving.store(true, ordering: .releasing)
        }
    }

    /// R3.7: otherwise data commands wait until every node of the table has answered `whoami`
    /// with this cluster's name. Checked every second (ROMA: every 10 s).
    func startServing() {
        guard !serving.load(ordering: .acquiring) else { return }
        logger.info("waiting for \(peerIDs.joined(separator: ", ")) to answer before serving data commands (forcedly_start skips this)")
        probeUntilAllStarted()
    }

    private func probeUntilAllStarted() {
        let loop = group.next()
        let rounds = NIOLockedValueBox(0)
        loop.scheduleRepeatedAsyncTask(initialDelay: .zero, delay: .seconds(1)) { [self] task in
            if serving.load(ordering: .acquiring) || isShuttingDown {
                task.cancel()
                return loop.makeSucceededVoidFuture()
            }
            let others = peerIDs
            let probes = others.map { nid in
                peers.line(nid, "whoami\r\n", timeout: .seconds(2)).map { [self] in $0 == config.name }.recover { _ in false }
            }
            return EventLoopFuture.whenAllSucceed(probes, on: loop).map { [self] answers in
                // ROMA's words, every 10 s, for a node that has not answered yet.
                let round = rounds.withLockedValue { $0 += 1; return $0 }
                if round % 10 == 1 {
                    for (nid, ok) in zip(others, answers) where !ok { logger.info("I'm waiting for booting the \(nid) instance.") }
                }
                if answers.allSatisfy({ $0 }) && !serving.load(ordering: .acquiring) {
                    serving.store(true, ordering: .releasing)
                    logger.info("all nodes started: serving data commands")
                    task.cancel()
                }
            }
        }
    }

    /// `forcedly_start`: serve data commands now.
    func forceStart() {
        if !serving.exchange(true, ordering: .acquiringAndReleasing) {
            logger.notice("forcedly_start: serving data commands without waiting for every node")
        }
    }
}

/// Commands ROMA relays to every node (R5.14): run here, sent as `r<cmd> …` to the others.
extension Node {
    /// Sends `line` to every other node of the table in parallel; each answer (nil when a node
    /// did not answer within the peer timeout), in sorted node order.
    func broadcast(_ line: String) -> EventLoopFuture<[(String, String?)]> {
        let loop = group.next()
        let others = peerIDs
        let asks = others.map { nid in
            peers.line(nid, line).map { Optional($0) }.recover { _ in nil }
        }
        return EventLoopFuture.whenAllSucceed(asks, on: loop).map { answers in Array(zip(others, answers)) }
    }

    /// ROMA's reply to a relayed command, after `line` went to every other node: the Ruby-inspect
    /// hash of each node's answer (nil for one that did not answer, peers in sorted order) with
    /// this node's `own` last, as ROMA's `broadcast_cmd` then `res[self] = …` build it, or first
    /// for the commands ROMA defines "with relay" (R3.17: `defhash`, `createhash`, …).
    func relayed(_ line: String, own: String, ownFirst: Bool = false) -> EventLoopFuture<ByteBuffer> {
        broadcast(line).map { [nodeID] answers in
            let mine = (nodeID, Optional(own))
            var b = ByteBuffer()
            b.writeLine(RubyInspect.hash(ownFirst ? [mine] + answers : answers + [mine]))
            return b
        }
    }
}
