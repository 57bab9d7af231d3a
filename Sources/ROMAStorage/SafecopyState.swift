/// The per-division snapshot state (spec R7.1).
public enum SafecopyState: String, Sendable, CaseIterable {
    case normal
    case safecopyFlushing = "safecopy_flushing"
    case safecopyFlushed = "safecopy_flushed"
    case cachecleaning

    /// The state's name as ROMA writes it (status.log, `safecopy_stats`).
    public var name: String { rawValue }

    /// Transitions allowed by R7.1 (anything else is refused and changes nothing).
    public func canMove(to next: SafecopyState) -> Bool {
        switch (self, next) {
        case (.normal, .safecopyFlushing), (.safecopyFlushing, .safecopyFlushed),
             (.safecopyFlushed, .cachecleaning), (.cachecleaning, .normal),
             (.cachecleaning, .safecopyFlushing):
            return true
        default:
            return false
        }
    }

    /// Writes go to the cache database in these states (R7.4).
    public var writesToCache: Bool { self == .safecopyFlushing || self == .safecopyFlushed }
}
