import NIOCore
import ROMAProtocol
import ROMARouting

extension Node {
    /// The routing table as a client at `address` sees it (`RTTABLE_SUB_NID`).
    func routing(forClient address: String?) -> RoutingTable {
        guard let address, let rule = subNid.withLockedValue({ $0.rule(forClient: address) }) else { return routing }
        return rule.apply(to: routing)
    }
}

/// `add_rttable_sub_nid <netmask> <regexp> <replace>`, `delete_rttable_sub_nid <netmask>`,
/// `clear_rttable_sub_nid` and their relayed `r` forms, as ROMA: the plain command is sent as
/// `r…` to every other node, and the reply is the Ruby-inspect hash of their answers with this
/// node's last (`ADDED`, `DELETED` or `NOT_FOUND`, `CLEARED`). A wrong argument count is answered
/// with ROMA's usage line, unrelayed.
extension Dispatcher {
    func subNidCommand(_ command: Command, _ r: Request, out: inout ByteBuffer) -> Outcome {
        let own: String
        switch command {
        case .addRttableSubNid, .raddRttableSubNid:
            guard r.count == 4 else {
                out.writeLine("usage:add_rttable_sub_nid <netmask> <regexp> <replace>")
                return .next
            }
            let (mask, from, to) = (r.tokenString(1), r.tokenString(2), r.tokenString(3))
            node.subNid.withLockedValue { $0.add(mask: mask, pattern: from, replacement: to) }
            node.logger.notice("\(command.name) \(mask) \(from) \(to)")
            own = "ADDED"
        case .deleteRttableSubNid, .rdeleteRttableSubNid:
            guard r.count == 2 else {
                out.writeLine("usage:delete_rttable_sub_nid <netmask>")
                return .next
            }
            let mask = r.tokenString(1)
            own = node.subNid.withLockedValue { $0.delete(mask: mask) } ? "DELETED" : "NOT_FOUND"
        default:
            node.subNid.withLockedValue { $0.clear() }
            own = "CLEARED"
        }
        // ROMA relays `clear_rttable_sub_nid` without arguments, whatever came with it.
        let line = command == .clearRttableSubNid ? "rclear_rttable_sub_nid\r\n" : Dispatcher.relayLine(command, r)
        return answerOrRelay(command, own: own, line: line, out: &out)
    }
}
