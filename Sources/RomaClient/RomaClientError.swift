/// Errors thrown by `RomaClient`.
public enum RomaClientError: Error, Sendable, Equatable, CustomStringConvertible {
    /// The server answered `SERVER_ERROR …` (the whole line, e.g.
    /// `SERVER_ERROR Message forward failed.`).
    case serverError(String)
    /// The server answered `CLIENT_ERROR …` (the whole line).
    case clientError(String)
    /// The server answered something the command does not allow (e.g. `ERROR`); the connection
    /// it came on is closed.
    case unexpectedReply(command: String, reply: String)
    /// The reply broke the protocol framing (the connection is closed).
    case protocolError(String)
    /// A key is empty or contains a space, CR, LF, NUL or ESC (ROMA cannot carry it).
    case invalidKey(String)
    /// A bad argument to the client (seed, hash name, configuration).
    case invalidArgument(String)
    /// No node could serve the request within the allowed attempts; the message names the
    /// nodes tried and the last failure.
    case unavailable(String)
    /// The client was closed.
    case closed

    public var description: String {
        switch self {
        case .serverError(let l), .clientError(let l): return l
        case let .unexpectedReply(command, reply): return "unexpected reply to \(command): '\(reply)'"
        case .protocolError(let m): return m
        case .invalidKey(let k): return "invalid key '\(k)': keys must be non-empty without space, CR, LF, NUL or ESC"
        case .invalidArgument(let m): return m
        case .unavailable(let m): return m
        case .closed: return "the client is closed"
        }
    }
}

/// Outcome of `set`, `add`, `replace`, `append`, `prepend` and `cas`.
public enum StoreResult: Sendable, Equatable {
    /// `STORED`
    case stored
    /// `NOT_STORED` (add of an existing key, replace/append/prepend of a missing one).
    case notStored
    /// `EXISTS` (cas: the record changed since the `gets`).
    case exists
    /// `NOT_FOUND` (cas: no such record).
    case notFound
}

/// Outcome of `delete`.
public enum DeleteResult: Sendable, Equatable {
    /// `DELETED`
    case deleted
    /// `NOT_FOUND` (absent, expired or already deleted).
    case notFound
    /// `NOT_DELETED` (the server could not write the tombstone).
    case notDeleted
}
