import NIOCore
import NIOEmbedded
import ROMAProtocol
import Testing
@testable import ROMANode

/// The connection to another node keeps replies matched to requests, or closes: Ruby ROMA
/// answers a command it does not know with several lines (and reads a storage command's data
/// block as one more command), so after such a reply nothing more on that connection is trusted.
@Suite struct PeerChannelTests {
    private struct Setup {
        let channel: EmbeddedChannel
        let handler: PeerChannelHandler
        let replies: [EventLoopFuture<PeerReply>]
    }

    /// A connected channel with `requests` replica writes in flight on it.
    private func setup(requests: Int) throws -> Setup {
        let channel = EmbeddedChannel()
        let handler = PeerChannelHandler(nid: "127.0.0.9_10001")
        try channel.pipeline.syncOperations.addHandler(handler)
        try channel.connect(to: SocketAddress(ipAddress: "127.0.0.9", port: 10001)).wait()
        var futures: [EventLoopFuture<PeerReply>] = []
        for i in 0..<requests {
            var b = channel.allocator.buffer(capacity: 64)
            b.writeString("rset k\(i)\u{1B}roma 0 0 1 1 0\r\nv\r\n")
            futures.append(handler.send(b, kind: .line, timeout: .seconds(5)))
        }
        channel.embeddedEventLoop.run()
        return Setup(channel: channel, handler: handler, replies: futures)
    }

    private func feed(_ s: Setup, _ text: String) throws {
        var b = s.channel.allocator.buffer(capacity: text.utf8.count)
        b.writeString(text)
        try s.channel.writeInbound(b)
        s.channel.embeddedEventLoop.run()
    }

    private func outcome(_ f: EventLoopFuture<PeerReply>) throws -> String {
        do {
            return try f.wait().lineString ?? "?"
        } catch let e as PeerError {
            if case .protocolError = e { return "protocol error" }
            if case .closed = e { return "closed" }
            return "\(e)"
        }
    }

    @Test func repliesInStepAreMatchedInOrder() throws {
        let s = try setup(requests: 3)
        try feed(s, "STORED\r\nNOT_STORED\r\nSTORED\r\n")
        #expect(try s.replies.map(outcome) == ["STORED", "NOT_STORED", "STORED"])
        #expect(s.handler.isOpen)
        _ = try? s.channel.finish()
    }

    /// Ruby ROMA while it starts: `rset` is unknown and answered on four lines starting with an
    /// empty one, then the value line is taken as a command. None of it may pass for `STORED`.
    @Test func rubyUnknownCommandReplyFailsEveryRequestAndCloses() throws {
        let s = try setup(requests: 3)
        try feed(s, "\r\nERROR: 'rset' is not roma command.\r\nDid you mean this?\r\n\tset\r\n"
                 + "ERROR: 'v' is not roma command. Please check command.\r\n(closing telnet connection command is 'quit')\r\n")
        #expect(try outcome(s.replies[0]) == "protocol error")
        #expect(try outcome(s.replies[1]) == "protocol error")
        #expect(try outcome(s.replies[2]) == "protocol error")
        #expect(!s.handler.isOpen)
        _ = try? s.channel.finish()
    }

    /// A one-line `ERROR` goes to its request; what was sent behind it fails (a replica write is
    /// then retried) rather than taking the next stray line as its reply.
    @Test func errorReplyIsDeliveredAndTheRestFails() throws {
        let s = try setup(requests: 3)
        try feed(s, "STORED\r\nERROR: 'rset' is not roma command. Please check command.\r\n"
                 + "(closing telnet connection command is 'quit')\r\nSTORED\r\n")
        #expect(try outcome(s.replies[0]) == "STORED")
        #expect(try outcome(s.replies[1]).hasPrefix("ERROR: 'rset'"))
        #expect(try outcome(s.replies[2]) == "protocol error")
        #expect(!s.handler.isOpen)
        #expect(Replicator.needsRetry(.line(ByteBuffer(string: "ERROR"))))
        _ = try? s.channel.finish()
    }

    @Test func clientErrorClosesTooButServerErrorKeepsTheStream() throws {
        let s = try setup(requests: 2)
        try feed(s, "SERVER_ERROR Message forward failed.\r\nSTORED\r\n")
        #expect(try s.replies.map(outcome) == ["SERVER_ERROR Message forward failed.", "STORED"])
        #expect(s.handler.isOpen)
        let t = try setup(requests: 2)
        try feed(t, "CLIENT_ERROR bad data chunk\r\nERROR\r\n")
        #expect(try outcome(t.replies[0]) == "CLIENT_ERROR bad data chunk")
        #expect(try outcome(t.replies[1]) == "protocol error")
        #expect(!t.handler.isOpen)
        _ = try? s.channel.finish()
        _ = try? t.channel.finish()
    }
}
