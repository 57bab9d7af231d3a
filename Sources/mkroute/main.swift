// mkroute: creates the initial routing table `<nid>.route` for each node (spec R4.2, R4.3).
import ArgumentParser
import ROMARouting

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Writes `text` plus a newline to stderr.
func printError(_ text: String) {
    var s = text
    if !s.hasSuffix("\n") { s += "\n" }
    let bytes = Array(s.utf8)
    var off = 0
    while off < bytes.count {
        let n = bytes[off...].withUnsafeBytes { write(2, $0.baseAddress, $0.count) }
        if n <= 0 { break }
        off += n
    }
}

/// Command-line front end of `MkRoute.make`; `-h` means `--hash` as in ROMA, help is `--help`.
struct MkRouteCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "mkroute",
        abstract: "Create the initial ROMA routing table files (<node-id>.route in the current directory).",
        helpNames: [.long]
    )

    @Option(name: [.customShort("h", allowingJoined: true), .customLong("hash")],
            help: ArgumentHelp("Digest bits.", valueName: "bits"))
    var hash: Int = 32

    @Option(name: [.customShort("d", allowingJoined: true), .customLong("divide")],
            help: ArgumentHelp("Divide bits.", valueName: "bits"))
    var divide: Int = 9

    @Option(name: [.customShort("r", allowingJoined: true), .customLong("redundant")],
            help: ArgumentHelp("Redundancy.", valueName: "num"))
    var redundant: Int = 2

    @Flag(name: .customLong("replication_in_host"), help: "Allow replicas on one host.")
    var replicationInHost = false

    @Flag(name: .customLong("enabled_repeathost"), help: "Deprecated spelling of --replication_in_host.")
    var enabledRepeathost = false

    @Option(name: .customLong("out"), help: ArgumentHelp("Directory to write the .route files into (default: the current directory).", valueName: "dir"))
    var out: String?

    @Argument(help: ArgumentHelp("Node ids (host_port or host:port).", valueName: "node-id"))
    var nodeIDs: [String] = []

    func run() throws {
        if enabledRepeathost { print(MkRoute.repeathostWarning) }
        let table: RoutingTable
        let nids: [String]
        do {
            nids = try MkRoute.validate(nodes: nodeIDs, dgstBits: hash, divBits: divide, rn: redundant)
            table = try MkRoute.make(nodes: nids, dgstBits: hash, divBits: divide, rn: redundant,
                                     replicationInHost: replicationInHost || enabledRepeathost)
        } catch {
            printError(error.description)
            throw ExitCode.failure
        }
        // ROMA 1.3 discarded all balancing when one step found no candidate (spec §11 item 11);
        // here the moves made are kept, and what could not be evened out is reported.
        for position in 0..<redundant {
            let spread = MkRoute.imbalance(of: table, position: position)
            if spread > 1 {
                printError("Warning: position \(position) (\(position == 0 ? "primary" : "secondary\(position)")) is balanced to within \(spread) vnodes only (no vnode could be moved further without putting two replicas on one host); the best table found is kept")
            }
        }
        let dir = out ?? "."
        // --out names a directory of our own: make it (and its parents) when missing.
        if out != nil && mkdir(dir, 0o755) != 0 && errno == ENOENT {
            var path = dir.hasPrefix("/") ? "/" : ""
            for part in dir.split(separator: "/") {
                path += (path.isEmpty || path.hasSuffix("/") ? "" : "/") + part
                _ = mkdir(path, 0o755)
            }
        }
        for nid in nids {
            do {
                try table.save(path: "\(dir)/\(nid).route")
            } catch {
                printError(error.description)
                throw ExitCode.failure
            }
        }
        print("nodes => \(RubyInspect.array(nids))")
        print("Routing table has created.")
    }
}

MkRouteCommand.main()
