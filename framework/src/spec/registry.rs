//! Start names: what a spec file's `"start": "..."` refers to.

use std::collections::BTreeMap;
use std::fmt;

use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::gen_server::Start;
use crate::supervisor::{ChildSpec, ChildType, Supervisor};
use crate::GenServer;

/// Builds a child spec from a file's `id`, `args` and `name`; `Err` is the reason the args
/// do not fit, with the path inside `args`.
type Build =
    dyn Fn(&str, Value, Option<String>) -> Result<ChildSpec, (String, String)> + Send + Sync;

/// Maps start names to Rust constructors. A child's `args` are deserialized into the
/// constructor's argument type while the file is loaded, so a bad argument is reported
/// before anything starts.
///
/// ```
/// # use otp::{Context, GenServer};
/// # use otp::gen_server::Init;
/// # otp::protocol! { pub Idle; }
/// struct Counter(u64);
/// # impl GenServer for Counter { type Protocol = Idle; }
/// struct Room { name: String }
/// # impl GenServer for Room { type Protocol = Idle; }
/// impl Init<String> for Room {
///     async fn init(name: String, _: &Context<Self>) -> otp::Result<Self> {
///         Ok(Room { name })
///     }
/// }
/// let mut registry = otp::spec::Registry::new();
/// registry.gen_server("counter", Counter); // a file's "args": 7 starts Counter(7)
/// registry.gen_server("room", Room::with_args); // "args": "lobby" builds a Room in its process
/// assert_eq!(registry.names().collect::<Vec<_>>(), ["counter", "room"]);
/// ```
#[derive(Default)]
pub struct Registry {
    entries: BTreeMap<String, Entry>,
}

struct Entry {
    kind: ChildType,
    build: Box<Build>,
}

impl Registry {
    /// An empty registry.
    pub fn new() -> Self {
        Self::default()
    }

    /// Registers a GenServer: `build` makes the server from a file's `args` (deserialized
    /// into `A`) for its first start and every restart: its value (a tuple struct's name is
    /// such a function: `registry.gen_server("counter", Counter)` for `struct
    /// Counter(u64)`), or what its [`Init`](crate::gen_server::Init) builds it from
    /// (`registry.gen_server("room", Room::with_args)`).
    pub fn gen_server<A, G, S, F>(&mut self, start: &str, build: F) -> &mut Self
    where
        A: DeserializeOwned + Clone + Send + Sync + 'static,
        G: GenServer,
        S: Into<Start<G>>,
        F: Fn(A) -> S + Clone + Send + Sync + 'static,
    {
        let build = move |id: &str, args: Value, name: Option<String>| {
            let args: A = deserialize_args(args)?;
            let build = build.clone();
            Ok(ChildSpec::worker(id, move |parent| {
                let server: Start<G> = build(args.clone()).into();
                let name = name.clone();
                async move {
                    match name {
                        Some(name) => parent.start_named(name, server).await,
                        None => parent.start(server).await,
                    }
                }
            }))
        };
        self.insert(start, ChildType::Worker, Box::new(build))
    }

    /// Registers a supervisor module: `build` makes it from a file's `args` (deserialized
    /// into `A`) for every start.
    pub fn supervisor<A, S, F>(&mut self, start: &str, build: F) -> &mut Self
    where
        A: DeserializeOwned + Clone + Send + Sync + 'static,
        S: Supervisor,
        F: Fn(A) -> S + Clone + Send + Sync + 'static,
    {
        let build = move |id: &str, args: Value, name: Option<String>| {
            let args: A = deserialize_args(args)?;
            let build = build.clone();
            Ok(ChildSpec::supervisor(id, move |parent| {
                parent.start_supervisor(name.clone(), build(args.clone()))
            }))
        };
        self.insert(start, ChildType::Supervisor, Box::new(build))
    }

    /// Registers any child: `build` gets the child's `id`, its `args` (deserialized into
    /// `A`) and its `name` from the file, and returns the spec; the file's `restart` and
    /// `shutdown` then apply. For children that need what only the program knows (a node's
    /// cookie from the command line, say), captured by the closure.
    ///
    /// ```
    /// # use otp::supervisor::{ChildSpec, ChildType};
    /// # use otp::GenServer;
    /// # use std::net::SocketAddr;
    /// # otp::protocol! { pub Idle; }
    /// struct Listener { banner: String, listen: SocketAddr }
    /// # impl GenServer for Listener { type Protocol = Idle; }
    /// let banner = String::from("welcome"); // from the command line, say
    /// let mut registry = otp::spec::Registry::new();
    /// registry.child("listener", ChildType::Worker, move |id, listen: SocketAddr, _name| {
    ///     let banner = banner.clone();
    ///     ChildSpec::worker(id, move |parent| {
    ///         parent.start(Listener { banner: banner.clone(), listen })
    ///     })
    /// });
    /// ```
    pub fn child<A, F>(&mut self, start: &str, kind: ChildType, build: F) -> &mut Self
    where
        A: DeserializeOwned,
        F: Fn(&str, A, Option<String>) -> ChildSpec + Send + Sync + 'static,
    {
        let build = move |id: &str, args: Value, name: Option<String>| {
            let args: A = deserialize_args(args)?;
            let mut spec = build(id, args, name);
            // The registered kind is what files are checked against; the spec agrees.
            spec.kind = kind;
            Ok(spec)
        };
        self.insert(start, kind, Box::new(build))
    }

    /// The registered start names, sorted.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.entries.keys().map(String::as_str)
    }

    fn insert(&mut self, start: &str, kind: ChildType, build: Box<Build>) -> &mut Self {
        self.entries.insert(start.to_owned(), Entry { kind, build });
        self
    }

    /// What `start` names: its kind and how to build a child spec from a file's fields.
    pub(crate) fn get(&self, start: &str) -> Option<(ChildType, &Build)> {
        self.entries
            .get(start)
            .map(|entry| (entry.kind, entry.build.as_ref()))
    }
}

impl fmt::Debug for Registry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_set().entries(self.entries.keys()).finish()
    }
}

/// Deserializes `args`; on failure returns the path inside the args and the reason.
fn deserialize_args<T: DeserializeOwned>(args: Value) -> Result<T, (String, String)> {
    serde_path_to_error::deserialize(args).map_err(|error| {
        let path = error.path().to_string();
        let inner = error.into_inner().to_string();
        let problem = format!("{inner} (expected {})", std::any::type_name::<T>());
        (if path == "." { String::new() } else { path }, problem)
    })
}
