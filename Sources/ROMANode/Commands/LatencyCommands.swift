import NIOCore
import ROMAProtocol

/// ROMA's latency statistics (R9.1), relayed to every node as `r<cmd>`:
/// - `set_latency_avg_calc_rule on <seconds> <cmd>…` (`ACTIVATED`) / `off` (`DEACTIVATED`);
/// - `add_latency_avg_calc_cmd <cmd>…` (`SET`), `del_latency_avg_calc_cmd <cmd>…` (`DELETED`);
/// - `chg_latency_avg_calc_time_count <seconds>|nil` (`CHANGED`).
/// While a period is set, the reply time of every checked command is noted and, each period,
/// `Latency average[<cmd>]: <avg>(denominator=<n> max=<max> min=<min>)` is logged at debug
/// level (`LatencyStats`). Only client commands can be checked (ROMA: not its system commands).
/// ROMA answers a bad count to `chg_latency_avg_calc_time_count` with a leftover debug line
/// (`s[1].class = String`); this node answers `CLIENT_ERROR` with the message ROMA meant.
extension Dispatcher {
    /// Commands whose latency can be checked: ROMA's non-system commands that this node serves.
    static let latencyCheckable: Set<String> = Set(Command.allCases.filter {
        $0.isDataCommand || $0 == .rset || $0 == .rzset || $0 == .rdelete || $0 == .out
    }.map(\.name))

    func latencyCommand(_ command: Command, _ r: Request, out: inout ByteBuffer) -> Outcome {
        let args = (1..<max(1, r.count)).map { r.tokenString($0) }
        let stats = node.settings.latency
        let own: String
        switch command {
        case .setLatencyAvgCalcRule, .rsetLatencyAvgCalcRule:
            let mode = args.first ?? ""
            guard mode == "on" || mode == "off" else {
                out.writeLine("CLIENT_ERROR argument 1: please input \"on\" or \"off\"")
                return .next
            }
            if mode == "on" {
                guard args.count >= 3, Dispatcher.rubyToI(args[1]) >= 1 else {
                    out.writeLine("CLIENT_ERROR number of arguments (0 for 3) and <count> must be greater than zero")
                    return .next
                }
            } else if args.count != 1 {
                out.writeLine("CLIENT_ERROR number of arguments (0 for 1, or more 3)")
                return .next
            }
            if let bad = args.dropFirst(2).first(where: { !Dispatcher.latencyCheckable.contains($0) }) {
                out.writeLine("NOT SUPPORT [\(bad)] command")
                return .next
            }
            stats.withLockedValue { l in
                l.data = [:]
                if mode == "on" {
                    l.commands = Array(args.dropFirst(2))
                    l.timeCount = Dispatcher.rubyToI(args[1])
                    l.log = true
                } else {
                    l.commands = []
                    l.timeCount = nil
                    l.log = false
                }
            }
            own = mode == "on" ? "ACTIVATED" : "DEACTIVATED"
        case .addLatencyAvgCalcCmd, .raddLatencyAvgCalcCmd:
            guard !args.isEmpty else {
                out.writeLine("CLIENT_ERROR number of arguments (0 for 2)")
                return .next
            }
            let current = stats.withLockedValue { $0.commands }
            for a in args {
                guard Dispatcher.latencyCheckable.contains(a) else {
                    out.writeLine("NOT SUPPORT [\(a)] command")
                    return .next
                }
                guard !current.contains(a) else {
                    out.writeLine("ALREADY SET [\(a)] command")
                    return .next
                }
            }
            stats.withLockedValue { $0.commands += args }
            own = "SET"
        case .delLatencyAvgCalcCmd, .rdelLatencyAvgCalcCmd:
            guard !args.isEmpty else {
                out.writeLine("CLIENT_ERROR number of arguments (0 for 2)")
                return .next
            }
            let current = stats.withLockedValue { $0.commands }
            if let a = args.first(where: { !current.contains($0) }) {
                out.writeLine("[\(a)] command is NOT set")
                return .next
            }
            stats.withLockedValue { l in
                l.commands.removeAll { args.contains($0) }
                for a in args { l.data[a] = nil }
            }
            own = "DELETED"
        case .chgLatencyAvgCalcTimeCount, .rchgLatencyAvgCalcTimeCount:
            guard args.count == 1 else {
                out.writeLine("CLIENT_ERROR number of arguments (0 for 2)")
                return .next
            }
            guard args[0] == "nil" || Dispatcher.rubyToI(args[0]) >= 1 else {
                out.writeLine("CLIENT_ERROR <count> must be greater than zero or nil[DEACTIVATE]")
                return .next
            }
            stats.withLockedValue { l in
                l.timeCount = args[0] == "nil" ? nil : Dispatcher.rubyToI(args[0])
                l.log = l.timeCount != nil
            }
            own = "CHANGED"
        default:
            return .next
        }
        node.settings.latencyOn.store(stats.withLockedValue { $0.timeCount != nil && !$0.commands.isEmpty }, ordering: .relaxed)
        return answerOrRelay(command, own: own, line: Dispatcher.relayLine(command, r), out: &out)
    }
}

extension Node {
    /// Notes a reply time for the latency statistics, when they are on.
    func noteLatencyStatistics(_ command: Command?, seconds: Double) {
        guard let command, settings.latencyOn.load(ordering: .relaxed) else { return }
        let line = settings.latency.withLockedValue { l -> String? in
            guard l.commands.contains(command.name) else { return nil }
            return l.note(seconds, command: command.name, now: Int(Dispatcher.now()))
        }
        if let line { logger.debug("\(line)") }
    }
}
