import Foundation
import Testing
@testable import RomaClient

#if canImport(Glibc)
import Glibc
#endif

/// A real `romad` on 127.0.0.1 with memory storage in a temporary directory. `stop()` kills it
/// (by its pid) and removes the directory; call it on every path (`defer`).
final class RomadProcess {
    let port: Int
    let directory: String
    private let process: Process

    var nodeID: String { "127.0.0.1_\(port)" }
    var seed: String { "127.0.0.1:\(port)" }
    var isRunning: Bool { process.isRunning }

    /// The romad binary: `$ROMAD_BIN`, else next to the test bundle (`swift build` puts every
    /// product in one directory), else `.build/debug/romad` of this package.
    static func binary() throws -> String {
        if let env = ProcessInfo.processInfo.environment["ROMAD_BIN"], !env.isEmpty { return env }
        var candidates: [String] = []
        if let exe = try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe") {
            var dir = URL(fileURLWithPath: exe).deletingLastPathComponent()
            // Inside `<name>.xctest/...` on some platforms: climb out of the bundle.
            while dir.path.contains(".xctest") { dir.deleteLastPathComponent() }
            candidates.append(dir.appendingPathComponent("romad").path)
        }
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        candidates.append(root.appendingPathComponent(".build/debug/romad").path)
        for c in candidates where FileManager.default.isExecutableFile(atPath: c) { return c }
        throw RomadError("romad binary not found (looked at \(candidates.joined(separator: ", "))); run `swift build` first or set ROMAD_BIN")
    }

    /// A TCP port on 127.0.0.1 that nothing listened on a moment ago.
    static func freePort() -> Int {
        let s = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        defer { close(s) }
        var addr = sockaddr_in()
        addr.sin_family = sa_family_t(AF_INET)
        addr.sin_addr.s_addr = inet_addr("127.0.0.1")
        addr.sin_port = 0
        _ = withUnsafePointer(to: &addr) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(s, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) } }
        var len = socklen_t(MemoryLayout<sockaddr_in>.size)
        _ = withUnsafeMutablePointer(to: &addr) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(s, $0, &len) } }
        return Int(UInt16(bigEndian: addr.sin_port))
    }

    private init(port: Int, directory: String, process: Process) {
        self.port = port
        self.directory = directory
        self.process = process
    }

    /// Starts romad and waits until it answers `version` (retrying on another port if the one
    /// picked was taken in the meantime).
    /// A fixed `port` (a restart of a node) is not retried elsewhere.
    static func start(port fixedPort: Int? = nil, timeout: Duration = .seconds(30)) async throws -> RomadProcess {
        let bin = try binary()
        var lastError: Error = RomadError("not started")
        for _ in 0..<3 {
            let dir = FileManager.default.temporaryDirectory.appendingPathComponent("romaclient-test-\(UUID().uuidString)").path
            try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
            let port = fixedPort ?? freePort()
            let p = Process()
            p.executableURL = URL(fileURLWithPath: bin)
            p.arguments = ["127.0.0.1", "-p", "\(port)", "--storage", "memory", "--storage-path", dir, "--threads", "1"]
            p.currentDirectoryURL = URL(fileURLWithPath: dir)
            guard FileManager.default.createFile(atPath: dir + "/romad.log", contents: nil),
                  let log = FileHandle(forWritingAtPath: dir + "/romad.log") else {
                throw RomadError("cannot create \(dir)/romad.log")
            }
            p.standardOutput = log
            p.standardError = log
            p.standardInput = FileHandle.nullDevice
            try p.run()
            let node = RomadProcess(port: port, directory: dir, process: p)
            do {
                try await node.waitReady(timeout: timeout)
                return node
            } catch {
                lastError = error
                node.stop()
            }
        }
        throw lastError
    }

    /// Polls `version` until romad answers, it exits, or `timeout` passes.
    private func waitReady(timeout: Duration) async throws {
        let clock = ContinuousClock()
        let deadline = clock.now + timeout
        while clock.now < deadline {
            guard process.isRunning else { throw RomadError("romad exited during start-up:\n\(logText())") }
            if Self.answersVersion(port: port) { return }
            try await Task.sleep(for: .milliseconds(20))  // poll interval, not a wait for readiness
        }
        throw RomadError("romad not ready after \(timeout):\n\(logText())")
    }

    /// One blocking `version` round trip with a 1 s receive timeout.
    static func answersVersion(port: Int) -> Bool {
        let s = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard s >= 0 else { return false }
        defer { close(s) }
        var tv = timeval(tv_sec: 1, tv_usec: 0)
        setsockopt(s, SOL_SOCKET, SO_RCVTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
        var addr = sockaddr_in()
        addr.sin_family = sa_family_t(AF_INET)
        addr.sin_addr.s_addr = inet_addr("127.0.0.1")
        addr.sin_port = in_port_t(UInt16(port).bigEndian)
        let rc = withUnsafePointer(to: &addr) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(s, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) } }
        guard rc == 0 else { return false }
        let req = Array("version\r\n".utf8)
        guard req.withUnsafeBytes({ send(s, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }) == req.count else { return false }
        var got: [UInt8] = []
        var buf = [UInt8](repeating: 0, count: 256)
        while !got.contains(10) {
            let n = buf.withUnsafeMutableBytes { recv(s, $0.baseAddress, $0.count, 0) }
            if n <= 0 { return false }
            got += buf[0..<n]
        }
        return String(decoding: got, as: UTF8.self).hasPrefix("VERSION")
    }

    func logText() -> String {
        (try? String(contentsOfFile: directory + "/romad.log", encoding: .utf8)) ?? ""
    }

    /// Kills romad (SIGKILL, by pid), reaps it and removes its directory. Idempotent.
    func stop() {
        if process.isRunning {
            kill(process.processIdentifier, SIGKILL)
        }
        process.waitUntilExit()
        try? FileManager.default.removeItem(atPath: directory)
    }
}

struct RomadError: Error, CustomStringConvertible {
    let description: String
    init(_ d: String) { description = d }
}

/// Polls `condition` until it holds or `timeout` passes (then records a failure).
func eventually(_ what: String, timeout: Duration = .seconds(10), _ condition: () async throws -> Bool) async throws {
    let clock = ContinuousClock()
    let deadline = clock.now + timeout
    while clock.now < deadline {
        if try await condition() { return }
        try await Task.sleep(for: .milliseconds(10))
    }
    Issue.record("condition not met within \(timeout): \(what)")
}
