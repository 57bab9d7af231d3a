#if canImport(Glibc)
import Glibc
#endif
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix
import Testing
@testable import ROMANode

/// A file seed's bytes go out from a pool thread on a duplicate of the connection's descriptor,
/// found by the channel's addresses (`OffLoopSend`): the duplicate must be that connection's socket.
@Suite struct FileSendTests {
    @Test func theDescriptorFoundForAChannelIsThatConnectionsSocket() throws {
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        defer { try? group.syncShutdownGracefully() }
        let server = try ServerBootstrap(group: group).bind(host: "127.0.0.1", port: 0).wait()
        defer { try? server.close().wait() }
        let port = try #require(server.localAddress?.port)
        // Two connections: the lookup must tell them apart.
        let first = try ClientBootstrap(group: group).connect(host: "127.0.0.1", port: port).wait()
        defer { try? first.close().wait() }
        let second = try ClientBootstrap(group: group).connect(host: "127.0.0.1", port: port).wait()
        defer { try? second.close().wait() }
        for channel in [first, second] {
            let fd = try #require(OffLoopSend.duplicateDescriptor(of: channel))
            defer { close(fd) }
            var a = sockaddr_in()
            var length = socklen_t(MemoryLayout<sockaddr_in>.size)
            let got = withUnsafeMutablePointer(to: &a) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &length) }
            }
            #expect(got == 0)
            #expect(Int(UInt16(bigEndian: a.sin_port)) == channel.localAddress?.port)
        }
        // A channel that is not a connected socket has no such descriptor.
        #expect(OffLoopSend.duplicateDescriptor(of: server) == nil)
    }

    /// Without the connection's descriptor nothing is sent: the start throws (answered
    /// `SERVER_ERROR`), the file is closed and `finish` is told nothing went out.
    @Test func withoutTheDescriptorNothingIsSentAndTheFileIsReleased() throws {
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        defer { try? group.syncShutdownGracefully() }
        // A listening channel has no connected socket to find.
        let server = try ServerBootstrap(group: group).bind(host: "127.0.0.1", port: 0).wait()
        defer { try? server.close().wait() }
        var fds: [Int32] = [-1, -1]
        #expect(pipe(&fds) == 0)
        defer { close(fds[0]) }
        let writeEnd = fds[1]
        let finished = NIOLockedValueBox<[Bool]>([])
        let send = FileSend(chunk: 4096, linger: .seconds(1), prepare: { (writeEnd, 10) }, delay: { _ in 0 },
                            finish: { ok in finished.withLockedValue { $0.append(ok) } })
        #expect(throws: FileSend.Failure.self) { _ = try send.start(on: server) }
        #expect(finished.withLockedValue { $0 } == [false])
        // The write end was closed: the read end sees the end of the pipe.
        var byte: UInt8 = 0
        #expect(read(fds[0], &byte, 1) == 0)
    }
}
