//! What a caller needs to know of a server: its messages, nothing of its code.

/// The messages a server answers: calls (each with a reply) and casts.
///
/// In Erlang a caller of a `gen_server` needs only the messages, never the module. Here
/// every handle a caller holds ([`ServerRef`](crate::ServerRef), [`Named`](crate::Named)
/// and, across nodes, `RemoteRef`) is typed by a protocol, not by the server behind it.
/// So a client links only the protocol, not the server's code, and two implementations
/// of one protocol are interchangeable behind one name (a test double, a new version).
///
/// A server whose messages nobody else implements can be its own protocol:
/// `impl Protocol for MyServer` and `type Protocol = Self`.
///
/// # One reply type, or one per request
/// `Reply` is one type for every call, as `handle_call` is one callback in OTP: one
/// `match` on the request, and a reply that can cross the network (remote calls serialize
/// it). When requests need answers of different types, a local protocol can carry a
/// typed [`ReplyTo`](crate::ReplyTo) inside each request and be called with
/// [`ServerRef::request`](crate::ServerRef::request): no reply variant a caller must
/// treat as impossible. The framework's own control servers (supervisors) work so.
///
/// # Example
/// ```
/// use otp::gen_server::Protocol;
///
/// /// A counter, whoever implements it.
/// pub struct Counter;
///
/// impl Protocol for Counter {
///     /// Read the count.
///     type Call = ();
///     type Reply = u64;
///     /// Add to it.
///     type Cast = u64;
/// }
/// ```
pub trait Protocol: 'static {
    /// Call requests.
    type Call: Send + 'static;
    /// Call replies.
    type Reply: Send + 'static;
    /// Cast messages.
    type Cast: Send + 'static;
}
