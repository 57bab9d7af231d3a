import Dispatch
import Testing
import ROMAClient

#if canImport(Glibc)
import Glibc
#endif

/// A one-connection loopback server that reads requests and answers with canned bytes.
final class CannedServer: Sendable {
    let port: Int
    private let fd: Int32

    /// `script`: for each expected request line (prefix match), the bytes to answer.
    init(script: [(String, String)], closeAfter: Bool = true) {
        let s = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        var one: Int32 = 1
        setsockopt(s, SOL_SOCKET, SO_REUSEADDR, &one, socklen_t(MemoryLayout<Int32>.size))
        var addr = sockaddr_in()
        addr.sin_family = sa_family_t(AF_INET)
        addr.sin_addr.s_addr = inet_addr("127.0.0.1")
        addr.sin_port = 0
        _ = withUnsafePointer(to: &addr) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(s, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) } }
        listen(s, 1)
        var len = socklen_t(MemoryLayout<sockaddr_in>.size)
        _ = withUnsafeMutablePointer(to: &addr) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(s, $0, &len) } }
        port = Int(UInt16(bigEndian: addr.sin_port))
        fd = s
        let listener = s
        DispatchQueue.global().async {
            let c = accept(listener, nil, nil)
            guard c >= 0 else { return }
            var pending: [UInt8] = []
            for (expect, answer) in script {
                // Read one request line.
                while !(pending.count >= 2 && pending.firstRange(of: [13, 10]) != nil) {
                    var buf = [UInt8](repeating: 0, count: 4096)
                    let n = buf.withUnsafeMutableBytes { recv(c, $0.baseAddress, $0.count, 0) }
                    if n <= 0 { close(c); return }
                    pending += buf[0..<n]
                }
                let r = pending.firstRange(of: [13, 10])!
                let line = String(decoding: pending[..<r.lowerBound], as: UTF8.self)
                pending.removeSubrange(..<r.upperBound)
                if !line.hasPrefix(expect) { break }
                let bytes = Array(answer.utf8)
                _ = bytes.withUnsafeBytes { send(c, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
            }
            if closeAfter { close(c) }
        }
    }

    func stop() { close(fd) }
}

@Suite struct ClientTests {
    @Test func connectionRefusedNamesHostAndPort() throws {
        // A port nobody listens on: bind, read the port, close.
        let probe = CannedServer(script: [])
        let port = probe.port
        probe.stop()
        do {
            _ = try ROMAConnection(host: "127.0.0.1", port: port, connectTimeout: 2)
            Issue.record("connect must fail")
        } catch let e as ROMAClientError {
            #expect(e.kind == .connect)
            #expect(e.message.contains("127.0.0.1:\(port)"))
            #expect(e.message.contains("refused"))
        }
        #expect(throws: ROMAClientError.self) { try ROMAConnection(host: "127.0.0.1", port: 0) }
    }

    @Test func statGetSetAndErrors() throws {
        let server = CannedServer(script: [
            ("stat storage", "storages[roma].storage.option \r\nstorages[roma].storage.safecopy_stats [:normal, :safecopy_flushed]\r\nEND\r\n"),
            ("set k 0 0 3", "STORED\r\n"),
            ("abc", ""),
            ("gets k", "VALUE k 0 5\r\na\r\nbc\r\nEND\r\n"),
            ("gets nothing", "END\r\n"),
            ("stat [", "CLIENT_ERROR invalid regexp: [\r\n"),
            ("version", "VERSION ROMA-1.3.0\r\n"),
        ])
        defer { server.stop() }
        let c = try ROMAConnection(host: "127.0.0.1", port: server.port, timeout: 5)
        let stat = try c.stat("storage")
        #expect(stat.count == 2)
        #expect(stat[0].key == "storages[roma].storage.option" && stat[0].value == "")
        #expect(ROMAStat.symbolArray(stat[1].value) == ["normal", "safecopy_flushed"])
        #expect(try c.set("k", Array("abc".utf8)) == "STORED")
        #expect(try c.get("k") == Array("a\r\nbc".utf8))
        #expect(try c.get("nothing") == nil)
        #expect(throws: ROMAClientError.self) { try c.stat("[") }
        #expect(try c.version() == "VERSION ROMA-1.3.0")
        // The server closed the connection after its script.
        do {
            _ = try c.request("version")
            Issue.record("expected the connection to be closed")
        } catch let e as ROMAClientError {
            #expect(e.kind == .closed)
        }
    }

    @Test func readTimeout() throws {
        let server = CannedServer(script: [("hello", "partial line without end")], closeAfter: false)
        defer { server.stop() }
        let c = try ROMAConnection(host: "127.0.0.1", port: server.port, timeout: 0.2)
        do {
            _ = try c.request("hello")
            Issue.record("expected a timeout")
        } catch let e as ROMAClientError {
            #expect(e.kind == .timeout)
        }
    }

    @Test func statHelpers() {
        #expect(ROMAStat.symbolArray("[:normal, :normal, :cachecleaning]") == ["normal", "normal", "cachecleaning"])
        #expect(ROMAStat.symbolArray("[]") == [])
        #expect(ROMAStat.symbolArray("[normal]") == nil)
        #expect(ROMAStat.symbolArray("system('rm -rf /')") == nil)
        let kv = ROMAStat.split("a.b c d")
        #expect(kv.key == "a.b" && kv.value == "c d")
        #expect(ROMAStat.escapeRegex("storages[roma].x") == "storages\\[roma\\]\\.x")
    }
}
