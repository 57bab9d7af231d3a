// recoverlost: puts data of lost vnodes back into a running cluster (spec R8.1) from a stopped
// node's TokyoCabinet files or from cpdb snapshot files, with ROMA 1.3's weaknesses fixed
// (spec §11 item 14): the time argument is optional, the files are only read (they may be copies,
// a stopped node's files or snapshot files; no lock is taken), cache files (`i.cache.tc`) and
// snapshot copies (`i.tc.<timestamp>`) are not mistaken for divisions, and records keep their
// real clocks (ROMA forced them to 0, so they only landed where nothing newer existed by luck).
import ArgumentParser
import ROMAClient
import ROMARouting
import ROMAStorage

#if canImport(Glibc)
import Glibc
#endif

struct RecoverLost: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "recoverlost",
        abstract: "Copy the records of lost vnodes from a stopped node's files (or snapshot files) into a running cluster.",
        discussion: """
        Lost vnodes: those with no node in the cluster's routing table, plus those the routing log \
        records as lost since <yyyymmddhhmmss> when given (history_of_lost). Each is given to the \
        nodes its list now names (auto_assign) or, if empty, to the node holding the fewest vnodes, \
        which is then announced to every node with setroute.
        """
    )

    @Argument(help: "Address of a node of the cluster.") var address: String
    @Argument(help: "Its port.") var port: String
    @Argument(help: "A storage path: <path>/<hash>/<i>.tc (a stopped node's data directory <storage>/<host>_<port>, or a copy).") var storagePath: String
    @Argument(help: "Also recover vnodes lost since then (yyyymmddhhmmss).") var since: String?

    @Option(name: .customLong("snapshot"), parsing: .singleValue, help: "Read the files of this cpdb manifest (snapshot-<ts>.json) instead of the storage path's; repeatable.")
    var manifests: [String] = []

    @Flag(name: .customLong("dry-run"), help: "Report what would be copied, copy nothing.")
    var dryRun = false

    func run() throws {
        guard let p = Int(port), p > 0, p < 65536 else { throw ValidationError("Port number is not numeric.") }
        if let since, since.count != 14 || !since.allSatisfy(\.isNumber) {
            throw ValidationError("time must be 14 digits: yyyymmddhhmmss")
        }
        let c = try ROMAConnection(host: address, port: p, connectTimeout: 5, timeout: 60)
        defer { c.close() }
        try c.sendLine("routingdump bin")
        guard let n = Int(try c.readLine()) else { throw ValidationError("\(address):\(p) did not send its routing table") }
        let bin = try c.readExact(n)
        _ = try c.readLine()
        _ = try c.readLine()
        let table = try RoutingTable(binary: bin)
        var lost = Set(table.lostVnodes)
        if let since {
            for line in try { try c.sendLine("history_of_lost \(since)"); return try c.readUntilEnd() }() {
                if let vn = UInt64(line) { lost.insert(vn) }
            }
        }
        print("\(lost.count) vnodes where data was lost.")
        if lost.isEmpty { return }

        // Records of the lost vnodes, per hash and vnode, from the files (read-only).
        var records: [String: [UInt64: [([UInt8], [UInt8])]]] = [:]
        for (hash, file) in try sources() {
            let r = try TCReader(path: file)
            try r.forEach { k, v in
                if let h = RecordHeader(decoding: v), lost.contains(UInt64(h.vnode)) {
                    records[hash, default: [:]][UInt64(h.vnode), default: []].append((Array(k), Array(v)))
                }
                return true
            }
        }
        var load: [String: Int] = [:]
        for vn in table.vnodes { for nid in table.nodes(forVnode: vn) ?? [] { load[nid, default: 0] += 1 } }
        for (i, vn) in lost.sorted().enumerated() {
            var targets = table.nodes(forVnode: vn) ?? []
            let wasEmpty = targets.isEmpty
            if wasEmpty {
                guard let pick = table.nodes.min(by: { (load[$0] ?? 0, $0) < (load[$1] ?? 0, $1) }) else {
                    throw ValidationError("the routing table has no node")
                }
                targets = [pick]
                load[pick, default: 0] += 1
                print("\(i + 1)/\(lost.count) \(vn) assign to \(RubyInspect.array(targets))")
            } else {
                print("\(i + 1)/\(lost.count) \(vn) was auto assigned at \(RubyInspect.array(targets))")
            }
            if dryRun { continue }
            for nid in targets {
                for (hash, byVnode) in records.sorted(by: { $0.key < $1.key }) {
                    guard let recs = byVnode[vn] else { continue }
                    do {
                        try push(recs, hash: hash, vn: vn, to: nid)
                    } catch {
                        print("push_a_vnode_stream aborted in \(vn): \(error)")
                        throw ExitCode.failure
                    }
                }
            }
            if wasEmpty {
                let clk = (table.clock(forVnode: vn) ?? 0)
                let line = "setroute \(vn) \(clk) \(targets.joined(separator: " "))"
                for nid in [targets[0]] + table.nodes.filter({ $0 != targets[0] }) {
                    guard let (h, port) = split(nid), let pc = try? ROMAConnection(host: h, port: port, connectTimeout: 5, timeout: 10) else { continue }
                    _ = try? pc.request(line)
                    pc.close()
                }
            }
        }
        print("Recover process has succeed.")
    }

    /// (hash name, file) pairs to read.
    func sources() throws -> [(String, String)] {
        if !manifests.isEmpty {
            var out: [(String, String)] = []
            for m in manifests {
                guard let text = FileSystem.readText(m) else { throw ValidationError("cannot read \(m)") }
                let hash = field(text, "hash") ?? "roma"
                let dir = String(m[..<(m.lastIndex(of: "/") ?? m.startIndex)])
                for f in fileNames(text) { out.append((hash, f.hasPrefix("/") ? f : "\(dir.isEmpty ? "." : dir)/\(f)")) }
            }
            return out
        }
        var out: [(String, String)] = []
        for hash in FileSystem.list(storagePath).sorted() where FileSystem.isDirectory("\(storagePath)/\(hash)") {
            // Division files only: `<i>.tc` — not `<i>.cache.tc`, not `<i>.tc.<timestamp>`.
            for f in FileSystem.list("\(storagePath)/\(hash)").sorted() {
                let name = f.hasSuffix(".tc") ? String(f.dropLast(3)) : ""
                if !name.isEmpty, name.allSatisfy(\.isNumber) { out.append((hash, "\(storagePath)/\(hash)/\(f)")) }
            }
        }
        if out.isEmpty { throw ValidationError("no <hash>/<i>.tc files under \(storagePath)") }
        return out
    }

    /// `"key": "value"` of a flat JSON text (the manifest's top-level strings).
    func field(_ json: String, _ key: String) -> String? {
        guard let r = json.range(of: "\"\(key)\"") else { return nil }
        let rest = json[r.upperBound...].drop { $0 == " " || $0 == ":" }
        guard rest.first == "\"" else { return nil }
        return String(rest.dropFirst().prefix { $0 != "\"" })
    }

    /// The `"file"` entries of a manifest.
    func fileNames(_ json: String) -> [String] {
        var out: [String] = []
        var s = Substring(json)
        while let r = s.range(of: "\"file\"") {
            let rest = s[r.upperBound...].drop { $0 == " " || $0 == ":" }
            if rest.first == "\"" { out.append(String(rest.dropFirst().prefix { $0 != "\"" })) }
            s = s[r.upperBound...]
        }
        return out
    }

    func split(_ nid: String) -> (String, Int)? {
        guard let i = nid.lastIndex(of: "_"), let p = Int(nid[nid.index(after: i)...]) else { return nil }
        return (String(nid[..<i]), p)
    }

    /// One `spushv` stream of records (header ‖ value as stored) to `nid`.
    func push(_ recs: [([UInt8], [UInt8])], hash: String, vn: UInt64, to nid: String) throws {
        guard let (h, p) = split(nid) else { throw ValidationError("bad node id \(nid)") }
        let c = try ROMAConnection(host: h, port: p, connectTimeout: 5, timeout: 60)
        defer { c.close() }
        try c.sendLine("spushv \(hash) \(vn)")
        let ready = try c.readLine()
        guard ready == "READY" else { throw ValidationError("\(nid) answered '\(ready)'") }
        var out: [UInt8] = []
        for (k, v) in recs {
            guard let hd = v.withUnsafeBytes({ RecordHeader(decoding: $0) }) else { continue }
            VnodeStreamRecord.append(&out, header: hd, key: k, value: v[RecordHeader.size...])
        }
        out += VnodeStreamRecord.terminator
        try c.send(out)
        let done = try c.readLine()
        guard done == "STORED" else { throw ValidationError("\(nid) answered '\(done)' after the records") }
    }
}

RecoverLost.main()
