import ArgumentParser
import ROMAClient

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
        Examples: roma-adm stats 10001; roma-adm "stat storage" 10001; roma-adm balse 10001.
        Differences from ROMA: `start` is not supported (run romad directly); the exit status is 1 \
        when the node cannot be reached or answers with an error.
        """
    )

    @Argument(help: "The command line, quoted when it has arguments (e.g. \"stat storage\").")
    var command: String

    @Argument(help: "Port of the node (default 12000).")
    var port: String?

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
        let portText = port ?? "12000"
        guard let p = Int(portText), portText.allSatisfy(\.isNumber), p > 0, p < 65536 else {
            RomaAdm.write(2, "Argument Error: roma-adm [adm-command] [port No.]\n[port No.] should be Interger\n")
            throw ExitCode(64)
        }
        let name = command.split(separator: " ").first.map(String.init) ?? ""
        if name == "start" {
            RomaAdm.write(2, "roma-adm: `start` is not supported; start the node with romad\n")
            throw ExitCode(64)
        }
        var payload = Array(command.utf8) + [13, 10]
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
        RomaAdm.write(1, text.hasSuffix("\n") || text.isEmpty ? text : text + "\n")
        let first = text.split(separator: "\n", omittingEmptySubsequences: true).first.map(String.init) ?? ""
        if reply.isEmpty || ROMAConnection.isErrorReply(first) { throw ExitCode(1) }
    }
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
