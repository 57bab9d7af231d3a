import ArgumentParser
import ROMASnapshot
import ROMAStorage

#if canImport(Glibc)
import Glibc
#endif

@main
struct CPDB: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "cpdb",
        abstract: "Online snapshots of a ROMA node's TokyoCabinet division files (ROMA 1.3's cpdb, made safe).",
        discussion: """
        cpdb <port> snapshots the romad listening on <port> of this machine, like ROMA's cpdb: every \
        division i of every hash goes through safecopy (writes diverted to a cache), its i.tc is \
        copied to i.tc.<YYYYMMDDhhmmss> beside it, and the division returns to normal. The output \
        lines are ROMA's. Differences: waits end within milliseconds (ROMA polls every 5 s); copies \
        are durable (temporary file, fsync, rename); a manifest snapshot-<timestamp>.json with \
        sizes, record counts and SHA-256 is written beside the files; any failure exits non-zero \
        and leaves every division normal; usage without a port exits 64 (ROMA: 0).

        --consistent takes one point-in-time cut of each hash: all divisions enter safecopy \
        together, are copied in parallel and share one timestamp. Trade-off: the whole node is in \
        snapshot mode for the duration of the whole copy (every write goes to the caches, reads \
        look in two databases, and the caches grow with the write rate times the copy time), while \
        the default mode keeps only one division at a time out of normal but gives a snapshot \
        whose files were taken at different instants.

        A manifest is written only for a complete run; a failed run removes the snapshot files it \
        created. Snapshot options: cpdb help snapshot.

        Exit status: 0 success, 1 failure, 64 usage error, 130 interrupted (divisions are put back \
        to normal first).
        """,
        subcommands: [SnapshotCommand.self, VerifyCommand.self, RestoreCommand.self],
        defaultSubcommand: SnapshotCommand.self
    )

    /// A snapshot runs beside a serving node: take the scheduling policy of `--priority` before
    /// anything else, because parsing the command line alone (the Swift runtime's first
    /// protocol-conformance lookups) costs milliseconds of CPU. At nice 0 those milliseconds
    /// held a CPU while an event loop of the node waited for it (ftrace). The parser still
    /// validates the option; an invalid value leaves the policy unchanged.
    static func main() {
        let args = Array(CommandLine.arguments.dropFirst())
        if !["verify", "restore", "help"].contains(args.first ?? "") {
            var value = "idle"
            for (i, a) in args.enumerated() {
                if a == "--priority", i + 1 < args.count { value = args[i + 1] }
                if a.hasPrefix("--priority=") { value = String(a.dropFirst("--priority=".count)) }
            }
            BackgroundScheduling(rawValue: value)?.apply()
        }
        Self.main(nil)
    }
}

struct SnapshotCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "snapshot",
        abstract: "Take a snapshot of the node on <port> (the default subcommand: `cpdb <port>`)."
    )

    @Argument(help: "Port of the romad on this machine (its files are copied locally).")
    var port: String?

    @Flag(help: "One point-in-time cut per hash: all divisions at once, parallel copies, one timestamp.")
    var consistent = false

    @Option(help: ArgumentHelp("Write the snapshot files and manifest into DIR (created if needed) instead of beside the data files. With several hashes: DIR/<hash>/.", valueName: "DIR"))
    var dest: String?

    @Option(help: ArgumentHelp("After a successful run keep only the N newest runs (by manifest) of this node's hash in the destination.", valueName: "N"))
    var keep: Int?

    @Option(help: ArgumentHelp("Snapshot only this hash.", valueName: "NAME"))
    var hash: String?

    @Option(help: "Host the node listens on (default localhost, like ROMA).")
    var host = "localhost"

    @Flag(help: "Print a JSON summary on stdout instead of ROMA's lines.")
    var json = false

    @Option(help: ArgumentHelp("Give up waiting for a division state after SECONDS.", valueName: "SECONDS"))
    var timeout: Double = 600

    @Option(help: ArgumentHelp("CPU and disk scheduling of cpdb (all its threads, from the start): idle (Linux SCHED_IDLE, and idle-class I/O for the copies' writes: only CPU and disk time the node and its clients leave unused; a thread starved of CPU moves to nice 10 where the kernel allows), low (nice 10, lowest best-effort I/O) or normal.", valueName: "idle|low|normal"))
    var priority: String = "idle"

    @Flag(name: .customLong("no-direct-io"), help: "Write the copies through the page cache (with early writeback) instead of with O_DIRECT.")
    var noDirectIO = false

    @Flag(name: .customLong("no-space-check"), help: "Skip the free-space check of the destination.")
    var noSpaceCheck = false

    @Flag(name: .customLong("no-progress"), help: "No progress line, even on a terminal.")
    var noProgress = false

    @Flag(name: [.short, .long], help: "Report timings, the manifest path and retention on stderr.")
    var verbose = false

    static let usage = """
    cpdb [port]
    usage: cpdb [--consistent] [--dest DIR] [--keep N] [--hash NAME] [--host HOST] [--priority P] [--json] <port>
           cpdb verify <manifest>
           cpdb restore <manifest> [--storage-path DIR] [--yes]
    (cpdb --help for details; unlike ROMA's cpdb.rb this exits with status 64)

    """

    func run() throws {
        guard let port else {
            Console.write(1, SnapshotCommand.usage)
            throw ExitCode(64)
        }
        guard let p = Int(port), p > 0, p < 65536 else {
            Console.write(2, "cpdb: invalid port '\(port)': expected a number from 1 to 65535\n")
            throw ExitCode(64)
        }
        if let keep, keep < 1 {
            Console.write(2, "cpdb: --keep must be at least 1\n")
            throw ExitCode(64)
        }
        guard timeout > 0 else {
            Console.write(2, "cpdb: --timeout must be positive\n")
            throw ExitCode(64)
        }
        guard let scheduling = BackgroundScheduling(rawValue: priority) else {
            Console.write(2, "cpdb: --priority must be idle, low or normal, not '\(priority)'\n")
            throw ExitCode(64)
        }
        var o = SnapshotOptions()
        o.scheduling = scheduling
        o.directIO = !noDirectIO
        o.host = host
        o.port = p
        o.consistent = consistent
        o.dest = dest
        o.keep = keep
        o.hash = hash
        o.json = json
        o.timeout = timeout
        o.spaceCheck = !noSpaceCheck
        o.progress = !noProgress && isatty(2) == 1
        o.verbose = verbose
        installSignalHandlers()
        let status = SnapshotRun(options: o).run()
        if status != 0 { throw ExitCode(status) }
    }
}

struct VerifyCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "verify",
        abstract: "Recompute sizes, SHA-256 checksums and record counts of a snapshot's files.",
        discussion: "Prints `OK <file> <size> <sha256>` per good file. Exits 1 naming every file that is missing or differs."
    )

    @Argument(help: "A snapshot-<timestamp>.json manifest.")
    var manifest: String

    func run() throws {
        let path = FileSystem.absolute(manifest)
        let m: SnapshotManifest
        do { m = try SnapshotManifest.load(path) } catch {
            Console.write(2, "cpdb: \(error)\n")
            throw ExitCode(1)
        }
        let dir = directoryName(path)
        let checks = Verifier.verify(m, directory: dir)
        var bad: [FileCheck] = []
        for c in checks {
            if c.ok {
                Console.write(1, "OK \(c.path) \(c.size ?? 0) \(c.sha256 ?? "")\n")
            } else {
                bad.append(c)
                Console.write(1, "FAILED \(c.path): \(c.problems.joined(separator: "; "))\n")
            }
        }
        if m.files.count != m.divnum {
            Console.write(2, "cpdb: \(path) lists \(m.files.count) files for \(m.divnum) divisions\n")
            throw ExitCode(1)
        }
        if bad.isEmpty {
            Console.write(1, "verified \(checks.count) files of \(m.node) hash \(m.hash) (run \(m.runTimestamp), \(m.mode)): all OK\n")
        } else {
            Console.write(2, "cpdb: verify FAILED: \(bad.count) of \(checks.count) files differ from \(path): \(bad.map(\.file).joined(separator: ", "))\n")
            throw ExitCode(1)
        }
    }
}

struct RestoreCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "restore",
        abstract: "Restore a snapshot into a stopped node's data directory (offline).",
        discussion: """
        Restores into the directory the snapshot was taken from, or with --storage-path DIR into \
        DIR/<node>/<hash>/ (DIR is romad's --storage-path). Refuses while the directory's lock is \
        held by a running node (or is an empty ROMA 1.3 lock file), and verifies every snapshot \
        file first (nothing changes on a mismatch). The current <i>.tc and <i>.cache.tc files are \
        moved to before-restore-<timestamp>/ (cache files must go: a node would merge them into \
        the restored data), then the snapshot files are copied into place as <i>.tc durably.
        """
    )

    @Argument(help: "A snapshot-<timestamp>.json manifest.")
    var manifest: String

    @Option(name: .customLong("storage-path"), help: ArgumentHelp("romad's --storage-path to restore into (default: where the snapshot was taken from).", valueName: "DIR"))
    var storagePath: String?

    @Flag(help: "Do not ask for confirmation.")
    var yes = false

    func run() throws {
        let plan: RestorePlan
        do { plan = try Restore.plan(manifestPath: manifest, storagePath: storagePath) } catch {
            Console.write(2, "cpdb: \(error)\n")
            throw ExitCode(1)
        }
        let m = plan.manifest
        Console.write(1, """
        restore snapshot \(plan.manifestPath)
          node \(m.node), hash \(m.hash), \(m.divnum) files, mode \(m.mode), taken \(m.startedAt)
          into \(plan.targetDirectory)

        """)
        if !plan.moveAside.isEmpty {
            Console.write(1, "  current files to move aside into \(plan.asideDirectory)/: \(plan.moveAside.joined(separator: " "))\n")
        }
        if !yes {
            guard isatty(0) == 1 else {
                Console.write(2, "cpdb: refusing to restore without confirmation: pass --yes\n")
                throw ExitCode(1)
            }
            Console.write(1, "Restore? (yes/no) ")
            guard let answer = readLine(), answer.trimmedOf(" \t") == "yes" else {
                Console.write(2, "cpdb: restore cancelled; nothing was changed\n")
                throw ExitCode(1)
            }
        }
        do {
            try Restore.execute(plan) { Console.write(1, $0 + "\n") }
        } catch {
            Console.write(2, "cpdb: \(error)\n")
            throw ExitCode(1)
        }
        Console.write(1, "restore finished: \(plan.targetDirectory) holds the snapshot of run \(m.runTimestamp); start the node on it\n")
    }
}

extension String {
    func trimmedOf(_ set: String) -> String {
        var s = Substring(self)
        while let f = s.first, set.contains(f) { s.removeFirst() }
        while let l = s.last, set.contains(l) { s.removeLast() }
        return String(s)
    }
}
