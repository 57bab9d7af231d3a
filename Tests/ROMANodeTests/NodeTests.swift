import Foundation
import Logging
import ROMANode
import ROMAStorage
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// A blocking loopback connection for talking to an in-process node.
final class RawConnection {
    let fd: Int32

    init(port: Int) throws {
        fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        var addr = sockaddr_in()
        addr.sin_family = sa_family_t(AF_INET)
        addr.sin_port = in_port_t(UInt16(port).bigEndian)
        addr.sin_addr.s_addr = inet_addr("127.0.0.1")
        let rc = withUnsafePointer(to: &addr) { p in
            p.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard rc == 0 else { close(fd); throw POSIXError(.ECONNREFUSED) }
        var tv = timeval(tv_sec: 5, tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
    }

    deinit { close(fd) }

    func send(_ s: String) {
        let b = Array(s.utf8)
        _ = b.withUnsafeBytes { Glibc.send(fd, $0.baseAddress, $0.count, 0) }
    }

    /// Reads until the received bytes end with `terminator`.
    func read(until terminator: String) -> String {
        var got: [UInt8] = []
        var buf = [UInt8](repeating: 0, count: 65536)
        let t = Array(terminator.utf8)
        while !(got.count >= t.count && Array(got.suffix(t.count)) == t) {
            let n = recv(fd, &buf, buf.count, 0)
            if n <= 0 { break }
            got += buf[0..<n]
        }
        return String(decoding: got, as: UTF8.self)
    }

    func call(_ s: String, until terminator: String = "\r\n") -> String {
        send(s)
        return read(until: terminator)
    }
}

/// Starts a node on a free port in a fresh directory; stops it and removes the directory after.
func withNode(engine: EngineKind = .tokyoCabinet(TCOptions()), afterStop: (String) -> Void = { _ in },
              _ body: (Node, Int, String) throws -> Void) throws {
    let dir = FileManager.default.temporaryDirectory.appendingPathComponent("romanode-\(UUID().uuidString)").path
    defer { try? FileManager.default.removeItem(atPath: dir) }
    var config = NodeConfig()
    config.address = "127.0.0.1"
    config.port = 0
    config.storage = engine
    config.storagePath = dir
    config.threads = 1
    var logger = Logger(label: "test")
    logger.logLevel = .error
    let node = try Node(config: config, logger: logger)
    try node.start()
    defer {
        node.shutdown(reason: "test done")
        node.waitUntilStopped()
        afterStop(dir)
    }
    try body(node, node.boundPort!, dir)
}

@Suite struct NodeTests {
    @Test(arguments: ["tc", "memory"])
    func storageCommandsRoundTrip(engine: String) throws {
        try withNode(engine: engine == "tc" ? .tokyoCabinet(TCOptions()) : .memory) { _, port, _ in
            let c = try RawConnection(port: port)
            #expect(c.call("set k1 0 0 5\r\nhello\r\n") == "STORED\r\n")
            #expect(c.call("get k1\r\n", until: "END\r\n") == "VALUE k1 0 5\r\nhello\r\nEND\r\n")
            #expect(c.call("gets k1\r\n", until: "END\r\n") == "VALUE k1 0 5 0\r\nhello\r\nEND\r\n")
            #expect(c.call("cas k1 0 0 5 0\r\nHELLO\r\n") == "STORED\r\n")
            #expect(c.call("cas k1 0 0 5 0\r\nhello\r\n") == "EXISTS\r\n")
            #expect(c.call("append k1 0 0 1\r\n!\r\n") == "STORED\r\n")
            #expect(c.call("get k1 nokey\r\n", until: "END\r\n") == "VALUE k1 0 6\r\nHELLO!\r\nEND\r\n")
            #expect(c.call("set n 0 0 2\r\n10\r\nincr n 5\r\n", until: "15\r\n") == "STORED\r\n15\r\n")
            #expect(c.call("decr n 100\r\n") == "0\r\n")
            #expect(c.call("delete k1\r\n") == "DELETED\r\n")
            #expect(c.call("delete k1\r\n") == "NOT_FOUND\r\n")
            #expect(c.call("set q 0 0 1 noreply\r\nx\r\nget q\r\n", until: "END\r\n") == "VALUE q 0 1\r\nx\r\nEND\r\n")
            #expect(c.call("version\r\n") == "VERSION ROMA-1.3.0\r\n")
        }
    }

    @Test func malformedInputKeepsTheStreamInSync() throws {
        try withNode { _, port, _ in
            let c = try RawConnection(port: port)
            #expect(c.call("set k 0 0 5 extra junk\r\nhello\r\nversion\r\n", until: "VERSION ROMA-1.3.0\r\n")
                == "CLIENT_ERROR Wrong number of arguments.\r\nVERSION ROMA-1.3.0\r\n")
            #expect(c.call("set k 0 0 3\r\nhello\r\nversion\r\n", until: "VERSION ROMA-1.3.0\r\n")
                == "CLIENT_ERROR bad data chunk\r\nVERSION ROMA-1.3.0\r\n")
            #expect(c.call("get k\r\n", until: "END\r\n") == "END\r\n")
            #expect(c.call("foobar\r\n", until: "'quit')\r\n").hasPrefix("ERROR: 'foobar' is not roma command."))
        }
    }

    @Test func safecopyCycleThroughTheProtocol() throws {
        try withNode { node, port, dir in
            let c = try RawConnection(port: port)
            #expect(c.call("set_storage_status 0 safecopy roma\r\n") == "PUSHED\r\n")
            var stats = ""
            for _ in 0..<500 {
                stats = c.call("stat safecopy\r\n", until: "END\r\n")
                if stats.contains("[:safecopy_flushed,") { break }
                usleep(2000)
            }
            #expect(stats.contains("[:safecopy_flushed, :normal"))
            #expect(c.call("set_storage_status 0 safecopy roma\r\n") == "CLIENT_ERROR storage[0] != :normal status\r\n")
            #expect(c.call("set_storage_status 0 normal roma\r\n") == "PUSHED\r\n")
            for _ in 0..<500 {
                stats = c.call("stat safecopy\r\n", until: "END\r\n")
                if stats.contains("[:normal, :normal") { break }
                usleep(2000)
            }
            #expect(stats.hasPrefix("storages[roma].storage.safecopy_stats [:normal, :normal"))
            #expect(c.call("set_storage_status 0 safecopy nohash\r\n") == "CLIENT_ERROR hash_name = nohash does not found\r\n")
            #expect(c.call("set_storage_status 10 safecopy roma\r\n") == "CLIENT_ERROR divnum <= 10\r\n")
            let log = try String(contentsOfFile: "\(dir)/127.0.0.1_0/roma/status.log.1", encoding: .utf8)
            #expect(log.split(separator: "\n").map { $0.split(separator: " ").dropFirst().joined(separator: " ") }
                == ["0 safecopy_flushing", "0 safecopy_flushed", "0 cachecleaning", "0 normal"])
            _ = node
        }
    }

    @Test func shutdownRemovesTheLock() throws {
        try withNode(afterStop: { dir in
            #expect(!FileManager.default.fileExists(atPath: "\(dir)/127.0.0.1_0/roma/lock"))
            #expect(FileManager.default.fileExists(atPath: "\(dir)/127.0.0.1_0/roma/0.tc"))
        }) { _, _, dir in
            #expect(FileManager.default.fileExists(atPath: "\(dir)/127.0.0.1_0/roma/lock"))
        }
    }
}
