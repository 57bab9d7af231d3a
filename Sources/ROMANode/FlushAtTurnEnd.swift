import NIOCore

/// Runs a flush at most once per event-loop turn, at its end: everything a handler writes during
/// the turn (replies that one read from a peer completed, requests made while the loop handles a
/// batch of reads) leaves in one write. Owned by one channel handler and used on its loop only.
final class FlushAtTurnEnd {
    private var pending = false

    func request(on loop: any EventLoop, _ flush: @escaping () -> Void) {
        guard !pending else { return }
        pending = true
        loop.assumeIsolated().execute { [self] in
            pending = false
            flush()
        }
    }
}
