import ROMAStorage

extension Node {
    /// `switch_replication true <nid> all`: every live record of the vnodes this node is
    /// primary for is queued for the replica cluster too, on a pool thread, among the new writes,
    /// as `add`s: a key already there (a newer write delivered first, or the replica cluster's
    /// own) keeps its value.
    func replicateExistingData() {
        clusterReplication.runExistingData = true
        background { [self] in
            defer { clusterReplication.runExistingData = false }
            var sent = 0
            for name in hashNames {
                guard let s = storage(name) else { continue }
                let t = routing
                for vn in t.vnodes where t.nodes(forVnode: vn)?.first == nodeID {
                    guard clusterReplication.isOn.load(ordering: .relaxed), !isShuttingDown else { return }
                    let v32 = UInt32(truncatingIfNeeded: vn)
                    guard let keys = try? s.keys(ofVnode: v32) else { continue }
                    let now = Dispatcher.now()
                    for key in keys {
                        let rec = try? key.withUnsafeBytes { try s.rawRecord(vn: v32, key: $0) }
                        var e = ClusterReplication.event(hash: name, key: key, record: rec, now: now)
                        guard e.value != nil else { continue }  // a delete mark or expired: nothing to add
                        e.onlyIfAbsent = true
                        clusterReplication.enqueue(e)
                        sent += 1
                    }
                }
            }
            logger.notice("cluster replication: \(sent) existing record(s) queued for the replica cluster")
        }
    }
}
