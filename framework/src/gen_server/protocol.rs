//! What a caller needs to know of a server: its messages, each call with its answer's
//! type, and nothing of its code.
//!
//! # Why requests are types and the server still has one `match`
//! Three designs were written out for the same three servers (a counter, a key-value
//! cache, a job queue that answers later); the code of each is in
//! `docs/per-request-answers.md`:
//! - *a trait per request* (kameo's `Message<M>`): typed, but one handler per request,
//!   no single `match` to read a server's behaviour from, and a remote endpoint needs
//!   every request type registered by hand;
//! - *a typed request wrapper* (`Ask<Call, Reply>` around one enum): one `match`, but the
//!   server answers with a reply enum, so nothing stops it from answering `Get` with what
//!   `Len` answers; callers are typed, the server is not;
//! - *a declared protocol* (this one): each request is a struct with its answer's type,
//!   the server `match`es one enum whose arms each hold the request *and its caller*, and
//!   that caller only takes the answer type of its own request. Answers travel as one
//!   enum the caller unpacks, so typing costs no allocation and no dynamic dispatch.
//!
//! The third is as safe as kameo's (an answer of the wrong type does not compile), keeps
//! `gen_server`'s one `handle_call`, and crosses nodes as JSON. A proc-macro would read a
//! little better, but would be a second crate to build and publish; [`protocol!`] is a
//! plain `macro_rules!`.
//!
//! [`protocol!`]: crate::protocol!

use std::marker::PhantomData;

use super::reply::ReplySlot;
use super::{Flow, ReplyTo};

/// The messages a server answers: its calls (each with its answer's type), its casts and
/// its own infos. Written by [`protocol!`](crate::protocol!), not by hand.
///
/// Callers hold handles typed by a protocol ([`ServerRef`](crate::ServerRef),
/// [`Named`](crate::Named), across nodes `RemoteRef`), never by the server behind it: a
/// client links only the protocol, and two servers of one protocol are interchangeable
/// (a test double, a new version), as in Erlang a caller needs only the messages.
pub trait Protocol: 'static {
    /// Every call request as one value: what the mailbox and the wire carry.
    type Calls: Send + 'static;
    /// Every call's answer as one value; each caller unpacks its own.
    type Replies: Send + 'static;
    /// A call as `handle_call` gets it: the request and its caller, typed per request.
    type Call<'a>: Send;
    /// Its casts.
    type Cast: Send + 'static;
    /// Its servers' own info messages (timers, subscriptions, other local processes);
    /// [`Never`] when there are none.
    type Info: Send + 'static;

    /// Pairs a request with the slot its answer goes to.
    #[doc(hidden)]
    fn bind(calls: Self::Calls, slot: &mut ReplySlot<Self::Replies>) -> Self::Call<'_>;
}

/// A call request and the type of its answer (written by [`protocol!`](crate::protocol!)).
///
/// It names the enums its protocol's calls and answers travel in, rather than the
/// protocol itself, so that a server-side protocol that adds infos to a shared one
/// (`protocol! { pub Local: Shared { infos MyInfo; } }`) takes the same requests.
pub trait Request: Send + 'static {
    /// What the server answers to it.
    type Reply: Send + 'static;
    /// Its protocol's [`Protocol::Calls`].
    type Calls: Send + 'static;
    /// Its protocol's [`Protocol::Replies`].
    type Replies: Send + 'static;

    #[doc(hidden)]
    fn into_calls(self) -> Self::Calls;
    #[doc(hidden)]
    fn wrap(reply: Self::Reply) -> Self::Replies;
    /// `None`: the answer is another request's (only a peer speaking another version of
    /// the protocol can cause it).
    #[doc(hidden)]
    fn unwrap(replies: Self::Replies) -> Option<Self::Reply>;
}

/// A request of protocol `P` (or of one that shares `P`'s calls).
pub trait RequestOf<P: Protocol>: Request<Calls = P::Calls, Replies = P::Replies> {}

impl<P: Protocol, R: Request<Calls = P::Calls, Replies = P::Replies>> RequestOf<P> for R {}

/// The caller of one request, inside `handle_call` (OTP's `From`): answer now with
/// [`reply`](Caller::reply), or [`take`](Caller::take) it to answer later. If the server
/// does neither, the caller gets [`CallError::NoReply`](crate::CallError::NoReply) once
/// `handle_call` returns, or the exit reason if the server stops.
pub struct Caller<'a, R: Request> {
    slot: &'a mut ReplySlot<R::Replies>,
    request: PhantomData<fn() -> R>,
}

impl<'a, R: Request> Caller<'a, R> {
    #[doc(hidden)]
    pub fn new(slot: &'a mut ReplySlot<R::Replies>) -> Self {
        Self {
            slot,
            request: PhantomData,
        }
    }

    /// Answers now, and returns [`Flow::Continue`] so that an arm can end with it (OTP's
    /// `{reply, Reply, State}`). To answer and stop, reply, then return
    /// [`Flow::Stop`].
    pub fn reply(self, answer: R::Reply) -> Flow {
        self.slot.answer(Ok(R::wrap(answer)));
        Flow::Continue
    }

    /// Takes the caller out, to answer later from anywhere with [`ReplyTo::reply`]
    /// (OTP's `{noreply, State}` and then `gen_server:reply/2`).
    pub fn take(self) -> ReplyTo<R> {
        ReplyTo::new(self.slot.take())
    }

    /// True while the caller still waits (it may have timed out).
    pub fn is_waiting(&self) -> bool {
        self.slot.is_waiting()
    }
}

impl<R: Request> std::fmt::Debug for Caller<'_, R> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("Caller")
            .field(&std::any::type_name::<R>())
            .finish()
    }
}

/// What a protocol without calls, casts or infos has there: no value can be made, so
/// nothing can be sent. Unlike `std::convert::Infallible`, a serde type, so that such a
/// protocol still crosses nodes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub enum Never {}

/// Encodes one answer type for the wire; see [`EncodeReplies`].
#[doc(hidden)]
pub trait ReplyEncoder<T> {
    fn encode(&self, reply: &T) -> Result<Vec<u8>, String>;
}

/// Encodes a protocol's answers with `E`. [`protocol!`](crate::protocol!) implements it
/// for every `E` that encodes each answer type, so a protocol whose answers are not serde
/// types still compiles: only exporting it to other nodes asks for serde.
#[doc(hidden)]
pub trait EncodeReplies<E> {
    fn encode_with(&self, encoder: &E) -> Result<Vec<u8>, String>;
}

impl<E> EncodeReplies<E> for Never {
    fn encode_with(&self, _: &E) -> Result<Vec<u8>, String> {
        match *self {}
    }
}

/// A protocol without calls: nothing to bind.
#[doc(hidden)]
pub fn no_calls(calls: Never, _: &mut ReplySlot<Never>) -> Never {
    match calls {}
}

/// Declares a [`Protocol`]: its calls with their answers' types, its casts, its infos.
///
/// ```
/// use serde::{Deserialize, Serialize};
///
/// otp::protocol! {
///     /// A key-value cache, as its callers see it.
///     #[derive(Debug, Serialize, Deserialize)]
///     pub Cache;
///     calls CacheCall {
///         /// The value under a key.
///         Get(String) -> Option<String>,
///         /// How many keys it holds.
///         Len -> usize,
///     }
///     casts CacheCast {
///         /// Stores a value under a key.
///         Put {
///             key: String,
///             /// Replaces what the key held.
///             value: String,
///         },
///     }
/// }
/// ```
///
/// This declares:
/// - `pub enum Cache {}`, the protocol, to type handles (`ServerRef<Cache>`) and servers
///   (`type Protocol = Cache`);
/// - a struct per message, named after it, with public fields (`Get(pub String)`,
///   `Len`, `Put { pub key: String, pub value: String }`), carrying the `#[derive]`
///   given: what callers send (`cache.call(Get(key))` answers `Option<String>`,
///   `cache.cast(Put { .. })`);
/// - `CacheCall<'a>`, what `handle_call` matches: one variant per call, holding the
///   request and its [`Caller`] (`CacheCall::Get(Get(key), caller)`), whose
///   [`reply`](Caller::reply) takes only that call's answer type;
/// - `CacheCast`, what `handle_cast` matches: one variant per cast, holding it
///   (`CacheCast::Put(Put { key, value })`), with the same `#[derive]`.
///
/// Every section is optional (`calls`, `casts`, `infos`, in this order); a protocol
/// without one has [`Never`] there. `infos Type;` names the type of the server's own
/// info messages. With `Serialize` and `Deserialize` derived, and serde answers, the
/// protocol crosses nodes (`Node::export`, `RemoteRef`).
///
/// An answer of another type than the request declares does not compile:
/// ```compile_fail,E0308
/// # use otp::{Context, GenServer};
/// otp::protocol! { pub Counter; calls CounterCall { Get -> u64 } }
/// struct CounterServer;
/// impl GenServer for CounterServer {
///     type Protocol = Counter;
///     async fn handle_call(&mut self, call: CounterCall<'_>, _: &Context<Self>) -> otp::Result {
///         let CounterCall::Get(Get, caller) = call;
///         Ok(caller.reply("forty-two")) // Get answers a u64
///     }
/// }
/// ```
/// nor does a request of another protocol, nor an info of another type:
/// ```compile_fail,E0277
/// # use otp::GenServer;
/// otp::protocol! { pub Counter; calls CounterCall { Get -> u64 } infos u8; }
/// otp::protocol! { pub Other; calls OtherCall { Ping -> () } }
/// # struct CounterServer;
/// # impl GenServer for CounterServer { type Protocol = Counter; }
/// # async fn demo() {
/// let counter = CounterServer.start().await.unwrap();
/// let _ = counter.call(Ping).await; // not one of Counter's calls
/// # }
/// ```
/// ```compile_fail,E0308
/// # use otp::GenServer;
/// otp::protocol! { pub Counter; calls CounterCall { Get -> u64 } infos u8; }
/// # struct CounterServer;
/// # impl GenServer for CounterServer { type Protocol = Counter; }
/// # async fn demo() {
/// let counter = CounterServer.start().await.unwrap();
/// counter.send_info("tick"); // Counter's infos are u8
/// # }
/// ```
///
/// A server that serves a shared protocol and wants infos of its own declares a protocol
/// that extends it: its handles take the same requests, and remote callers of the shared
/// one reach it (JSON does not name the Rust type):
/// ```
/// # otp::protocol! { pub Shared; calls SharedCall { Ping -> () } }
/// pub enum Tick { Now }
/// otp::protocol! {
///     /// The shared protocol, and the ticks only this server's own timers send.
///     pub Local: Shared { infos Tick; }
/// }
/// ```
#[macro_export]
macro_rules! protocol {
    (
        $(#[doc = $doc:expr])*
        $vis:vis $name:ident : $base:ty { infos $info:ty $(;)? }
    ) => {
        $(#[doc = $doc])*
        $vis enum $name {}

        impl $crate::Protocol for $name {
            type Calls = <$base as $crate::Protocol>::Calls;
            type Replies = <$base as $crate::Protocol>::Replies;
            type Call<'a> = <$base as $crate::Protocol>::Call<'a>;
            type Cast = <$base as $crate::Protocol>::Cast;
            type Info = $info;

            fn bind(
                calls: Self::Calls,
                slot: &mut $crate::gen_server::ReplySlot<Self::Replies>,
            ) -> Self::Call<'_> {
                <$base as $crate::Protocol>::bind(calls, slot)
            }
        }
    };
    (
        $(#[doc = $doc:expr])*
        $(#[derive($($derive:path),* $(,)?)])?
        $vis:vis $name:ident;
        $( calls $calls:ident { $($calls_body:tt)* } )?
        $( casts $casts:ident { $($casts_body:tt)* } )?
        $( infos $info:ty; )?
    ) => {
        $(#[doc = $doc])*
        $vis enum $name {}

        $crate::__protocol_calls! {
            ($($($derive),*)?) [$vis] $name [$($casts)?] [$($info)?]
            $( $calls { $($calls_body)* } )?
        }
        $crate::__protocol_casts! {
            ($($($derive),*)?) [$vis] $name
            $( $casts { $($casts_body)* } )?
        }
    };
}

/// The calls of [`protocol!`]: their structs, the enum `handle_call` matches, and the
/// `Protocol` impl (which a protocol without calls gets here too).
#[doc(hidden)]
#[macro_export]
macro_rules! __protocol_calls {
    ($derives:tt [$vis:vis] $name:ident [$($casts:ident)?] [$($info:ty)?]) => {
        impl $crate::Protocol for $name {
            type Calls = $crate::gen_server::Never;
            type Replies = $crate::gen_server::Never;
            type Call<'a> = $crate::gen_server::Never;
            type Cast = $crate::__protocol_or!($($casts)? | $crate::gen_server::Never);
            type Info = $crate::__protocol_or!($($info)? | $crate::gen_server::Never);

            fn bind(
                calls: $crate::gen_server::Never,
                slot: &mut $crate::gen_server::ReplySlot<$crate::gen_server::Never>,
            ) -> $crate::gen_server::Never {
                $crate::gen_server::no_calls(calls, slot)
            }
        }
    };
    (
        $derives:tt [$vis:vis] $name:ident [$($casts:ident)?] [$($info:ty)?]
        $calls:ident {
            $(
                $(#[$meta:meta])*
                $call:ident
                $( ( $($field:ty),* $(,)? ) )?
                $( { $($(#[$field_meta:meta])* $field_name:ident : $named:ty),* $(,)? } )?
                -> $reply:ty
            ),* $(,)?
        }
    ) => {
        $(
            $crate::__message! {
                $derives [$($meta)*]
                $vis $call $( ( $($field),* ) )? $( { $($(#[$field_meta])* $field_name : $named),* } )?
            }
        )*

        #[doc = concat!("The calls of [`", stringify!($name), "`] as `handle_call` gets them: each request with its caller.")]
        $vis enum $calls<'a> {
            $(
                #[doc = concat!("[`", stringify!($call), "`], answered with `", stringify!($reply), "`.")]
                $call($call, $crate::Caller<'a, $call>),
            )*
        }

        impl ::std::fmt::Debug for $calls<'_> {
            fn fmt(&self, f: &mut ::std::fmt::Formatter<'_>) -> ::std::fmt::Result {
                match self {
                    $(Self::$call(..) => f.write_str(stringify!($call)),)*
                }
            }
        }

        const _: () = {
            #[derive $derives]
            #[doc(hidden)]
            pub enum __Calls {
                $($call($call),)*
            }

            #[doc(hidden)]
            pub enum __Replies {
                $($call($reply),)*
            }

            impl<E> $crate::gen_server::EncodeReplies<E> for __Replies
            where
                $(E: $crate::gen_server::ReplyEncoder<$reply>,)*
            {
                fn encode_with(
                    &self,
                    encoder: &E,
                ) -> ::std::result::Result<::std::vec::Vec<u8>, ::std::string::String> {
                    match self {
                        $(Self::$call(reply) => $crate::gen_server::ReplyEncoder::<$reply>::encode(encoder, reply),)*
                    }
                }
            }

            $(
                impl $crate::Request for $call {
                    type Reply = $reply;
                    type Calls = __Calls;
                    type Replies = __Replies;

                    fn into_calls(self) -> __Calls {
                        __Calls::$call(self)
                    }
                    fn wrap(reply: $reply) -> __Replies {
                        __Replies::$call(reply)
                    }
                    #[allow(unreachable_patterns)]
                    fn unwrap(replies: __Replies) -> ::std::option::Option<$reply> {
                        match replies {
                            __Replies::$call(reply) => ::std::option::Option::Some(reply),
                            _ => ::std::option::Option::None,
                        }
                    }
                }
            )*

            impl $crate::Protocol for $name {
                type Calls = __Calls;
                type Replies = __Replies;
                type Call<'a> = $calls<'a>;
                type Cast = $crate::__protocol_or!($($casts)? | $crate::gen_server::Never);
                type Info = $crate::__protocol_or!($($info)? | $crate::gen_server::Never);

                fn bind(
                    calls: __Calls,
                    slot: &mut $crate::gen_server::ReplySlot<__Replies>,
                ) -> $calls<'_> {
                    match calls {
                        $(__Calls::$call(request) => $calls::$call(request, $crate::Caller::new(slot)),)*
                    }
                }
            }
        };
    };
}

/// The casts of [`protocol!`]: their structs and the enum `handle_cast` matches.
#[doc(hidden)]
#[macro_export]
macro_rules! __protocol_casts {
    ($derives:tt [$vis:vis] $name:ident) => {};
    (
        $derives:tt [$vis:vis] $name:ident
        $casts:ident {
            $(
                $(#[$meta:meta])*
                $cast:ident
                $( ( $($field:ty),* $(,)? ) )?
                $( { $($(#[$field_meta:meta])* $field_name:ident : $named:ty),* $(,)? } )?
            ),* $(,)?
        }
    ) => {
        $(
            $crate::__message! {
                $derives [$($meta)*]
                $vis $cast $( ( $($field),* ) )? $( { $($(#[$field_meta])* $field_name : $named),* } )?
            }
        )*

        #[derive $derives]
        #[doc = concat!("The casts of [`", stringify!($name), "`] as `handle_cast` gets them.")]
        $vis enum $casts {
            $(
                #[doc = concat!("[`", stringify!($cast), "`].")]
                $cast($cast),
            )*
        }

        $(
            impl ::std::convert::From<$cast> for $casts {
                fn from(cast: $cast) -> Self {
                    Self::$cast(cast)
                }
            }
        )*
    };
}

/// One message struct of [`protocol!`]: unit, tuple or named fields, all public.
#[doc(hidden)]
#[macro_export]
macro_rules! __message {
    ($derives:tt [$($meta:meta)*] $vis:vis $name:ident) => {
        #[derive $derives] $(#[$meta])* $vis struct $name;
    };
    ($derives:tt [$($meta:meta)*] $vis:vis $name:ident ( $($field:ty),* )) => {
        #[derive $derives] $(#[$meta])* $vis struct $name($(pub $field),*);
    };
    ($derives:tt [$($meta:meta)*] $vis:vis $name:ident { $($(#[$field_meta:meta])* $field:ident : $ty:ty),* }) => {
        #[derive $derives] $(#[$meta])* $vis struct $name { $($(#[$field_meta])* pub $field: $ty),* }
    };
}

/// The first type if given, else the second.
#[doc(hidden)]
#[macro_export]
macro_rules! __protocol_or {
    ($given:ty | $default:ty) => {
        $given
    };
    (| $default:ty) => {
        $default
    };
}
