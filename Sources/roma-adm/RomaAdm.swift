import ArgumentParser
import ROMAClient
import ROMARouting

#if canImport(Glibc)
import Glibc
#endif

/// `roma-adm <command> [port]` (spec R8.3): sends one command line to a node on this machine and
/// prints the reply. Like ROMA's tool, the reply is whatever arrives until the node has been
/// silent for half a second; `balse`, `shutdown` and `shutdown_self` get their `(yes/no)`
/// prompts answered `yes`; storage commands ask for the value on stdin.
@main
struct RomaAdm: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "roma-adm",
        abstract: "Send one command to a ROMA node on this machine and print the reply.",
        discussion: """
        Examples: roma-adm stats 10001; roma-adm "stat storage" 10001; roma-adm balse 10001; \
        roma-adm recover 127.0.0.1:10001; roma-adm nodelist 10001 --json; \
        roma-adm switch_failover off 127.0.0.1:10001.
        Cluster work (recover, release, balance) is followed until it ends, with a progress line \
        on a terminal; `join HOST:PORT` follows the join of a node started with `romad -j`.
        Differences from ROMA: `start` is not supported (run romad directly); the exit status is 1 \
        when the node cannot be reached or answers with an error.
        """
    )

    @Argument(help: ArgumentHelp("""
        The command line, then the node's port or host:port (default 12000). A command with \
        arguments is quoted as for ROMA's tool ("stat storage" 10001), or given word by word with \
        the port last (switch_failover off 10001).
        """, valueName: "command [port]"))
    var words: [String] = []

    /// The command line: every word but the port.
    var command: String { words.count <= 2 ? (words.first ?? "") : words.dropLast().joined(separator: " ") }

    /// The port or host:port: the second of two words (as ROMA reads them), the last of more.
    var port: String? { words.count >= 2 ? words.last : nil }

    func validate() throws {
        guard !words.isEmpty else { throw ValidationError("Missing expected argument '<command [port]>'") }
    }

    @Flag(help: "Print the result as one JSON object.")
    var json = false

    @Flag(name: .customLong("no-wait"), help: "Do not follow recover, release, balance or join until they end.")
    var noWait = false

    @Option(name: .customLong("wait-limit"), help: ArgumentHelp("Give up following long work after SECONDS.", valueName: "SECONDS"))
    var waitLimit: Double = 3600

    @Option(help: "Host of the node (default localhost).")
    var host = "localhost"

    @Option(help: ArgumentHelp("Give up after SECONDS.", valueName: "SECONDS"))
    var timeout: Double = 5

    static let haltCommands: Set<String> = ["balse", "shutdown", "shutdown_self"]
    static let valueCommands = ["set", "add", "replace", "append", "prepend", "cas", "alist_delete", "alist_include?",
                                "alist_insert", "alist_sized_insert", "alist_swap_and_insert", "alist_swap_and_sized_insert",
                                "alist_join_with_time", "alist_join", "alist_push", "alist_sized_push", "alist_swap_and_push",
                                "alist_update_at"]

    static func write(_ fd: Int32, _ text: String) {
        let bytes = Array(text.utf8)
        _ = bytes.withUnsafeBytes { Glibc.write(fd, $0.baseAddress, $0.count) }
    }

    func run() throws {
        var portText = port ?? "12000"
        var host = self.host
        if let i = portText.lastIndex(where: { $0 == ":" || $0 == "_" }), !portText.allSatisfy(\.isNumber) {
            host = String(portText[..<i])
            portText = String(portText[portText.index(after: i)...])
        }
        guard let p = Int(portText), portText.allSatisfy(\.isNumber), p > 0, p < 65536 else {
            RomaAdm.write(2, "Argument Error: roma-adm [adm-command] [port No.]\n[port No.] should be Interger\n")
            throw ExitCode(64)
        }
        let name = command.split(separator: " ").first.map(String.init) ?? ""
        if name == "start" {
            RomaAdm.write(2, "roma-adm: `start` is not supported; start the node with romad\n")
            throw ExitCode(64)
        }
        // `join HOST:PORT` follows a node started with `romad -j`: it sends nothing but a stat.
        var payload = Array((name == "join" ? "stat run_join" : command).utf8) + [13, 10]
        if RomaAdm.valueCommands.contains(where: { name.hasPrefix($0) }) {
            RomaAdm.write(1, "Please input value.\n")
            let value = readLine(strippingNewline: true) ?? ""
            payload += Array(value.utf8) + [13, 10]
        }
        let conn: ROMAConnection
        do {
            conn = try ROMAConnection(host: host, port: p, connectTimeout: timeout, timeout: timeout)
        } catch {
            RomaAdm.write(2, "roma-adm: \(error)\n")
            throw ExitCode(1)
        }
        defer { conn.close() }
        var reply: [UInt8] = []
        do {
            try conn.send(payload)
            let deadline = ROMAConnection.now() + timeout
            var answered = 0
            while true {
                let (bytes, closed) = try conn.readUntilIdle(idle: 0.5, limit: max(0.1, deadline - ROMAConnection.now()))
                reply += bytes
                if closed || ROMAConnection.now() >= deadline { break }
                // Answer the confirmation prompts of the halt commands.
                let text = String(decoding: reply, as: UTF8.self)
                let prompts = text.components(of: "(yes/no)")
                if RomaAdm.haltCommands.contains(name) && prompts > answered {
                    answered = prompts
                    try conn.send(Array("yes\r\n".utf8))
                    continue
                }
                if bytes.isEmpty || !RomaAdm.haltCommands.contains(name) { break }
            }
        } catch {
            RomaAdm.write(2, "roma-adm: \(error)\n")
            throw ExitCode(1)
        }
        var text = String(decoding: reply, as: UTF8.self)
        text = text.replacingCRLF()
        let first = text.split(separator: "\n", omittingEmptySubsequences: true).first.map(String.init) ?? ""
        let failed = reply.isEmpty || ROMAConnection.isErrorReply(first) || (name != "join" && text.contains("SERVER_ERROR") && !text.contains("STARTED"))
        var progress: [String: String] = [:]
        if !failed && !noWait && RomaAdm.followed.contains(name) {
            progress = try follow(name, host: host, port: p)
        }
        if json {
            var fields = ["\"command\": \(RomaAdm.quote(command))", "\"node\": \(RomaAdm.quote("\(host):\(p)"))",
                          "\"reply\": \(RomaAdm.quote(text.hasSuffix("\n") ? String(text.dropLast()) : text))",
                          "\"ok\": \(!failed)"]
            if !progress.isEmpty {
                fields.append("\"result\": {" + progress.sorted { $0.key < $1.key }
                    .map { "\(RomaAdm.quote($0.key)): \(RomaAdm.quote($0.value))" }.joined(separator: ", ") + "}")
            }
            RomaAdm.write(1, "{" + fields.joined(separator: ", ") + "}\n")
        } else {
            RomaAdm.write(1, text.hasSuffix("\n") || text.isEmpty ? text : text + "\n")
            if !progress.isEmpty {
                RomaAdm.write(1, progress.sorted { $0.key < $1.key }.map { "\($0.key) \($0.value)" }.joined(separator: "\n") + "\n")
            }
        }
        if failed { throw ExitCode(1) }
    }

    /// Commands whose work goes on after the reply.
    static let followed: Set<String> = ["recover", "release", "balance", "join"]

    /// Polls the node's `stat` until the work ends; a progress line on a terminal. Returns the
    /// final counters.
    func follow(_ name: String, host: String, port: Int) throws -> [String: String] {
        let conn = try ROMAConnection(host: host, port: port, connectTimeout: timeout, timeout: timeout)
        defer { conn.close() }
        let tty = isatty(2) == 1
        let start = ROMAConnection.now()
        var last: [String: String] = [:]
        var seenRunning = false
        while ROMAConnection.now() - start < waitLimit {
            let st = Dictionary(try conn.stat("^(stats.run_(recover|release|balance|join|iterate_storage)|routing.(primary|secondary1|short_vnodes|lost_vnodes|vnodes.length|nodes.length))$")
                .map { ($0.key, $0.value) }, uniquingKeysWith: { a, _ in a })
            last = st
            let running: Bool
            switch name {
            case "recover": running = st["stats.run_recover"] == "true"
            case "release": running = st["stats.run_release"] == "true"
            case "balance": running = st["stats.run_balance"] == "true"
            default: running = st["stats.run_join"] == "true"
            }
            if running { seenRunning = true }
            let held = (Int(st["routing.primary"] ?? "0") ?? 0) + (Int(st["routing.secondary1"] ?? "0") ?? 0)
            if tty {
                let line = "\r\(name): \(Int(ROMAConnection.now() - start)) s, this node primary of \(st["routing.primary"] ?? "?") and in \(held) vnodes, short vnodes \(st["routing.short_vnodes"] ?? "?")   "
                RomaAdm.write(2, line)
            }
            // Done when the process has stopped (it may have ended before the first look).
            if !running && (seenRunning || ROMAConnection.now() - start > 1) { break }
            usleep(250_000)
        }
        if tty { RomaAdm.write(2, "\r\u{1B}[K") }
        let tenths = Int((ROMAConnection.now() - start) * 10)
        last["elapsed_s"] = "\(tenths / 10).\(tenths % 10)"
        return last
    }

    /// JSON string quoting (ROMARouting's, as the routing dumps use it).
    static func quote(_ s: String) -> String { JSONText.quote(s) }
}

extension String {
    /// Number of non-overlapping occurrences of `needle`.
    func components(of needle: String) -> Int { ranges(of: needle).count }

    /// CR LF → LF.
    func replacingCRLF() -> String {
        var out = ""
        var pendingCR = false
        for c in unicodeScalars {
            if pendingCR {
                pendingCR = false
                if c == "\n" { out.unicodeScalars.append("\n"); continue }
                out.unicodeScalars.append("\r")
            }
            if c == "\r" { pendingCR = true } else { out.unicodeScalars.append(c) }
        }
        if pendingCR { out.unicodeScalars.append("\r") }
        return out
    }
}
