//! Start names: what a spec file's `"start": "..."` refers to.

use std::collections::BTreeMap;
use std::fmt;

use serde::de::DeserializeOwned;
use serde_json::Value;

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
/// # use otp::{BoxError, Context, GenServer, Protocol};
/// # #[derive(Clone)] struct Counter;
/// # impl Protocol for Counter { type Call = (); type Reply = (); type Cast = (); }
/// # impl GenServer for Counter {
/// #     type Protocol = Self; type Args = u64; type State = u64; type Info = ();
/// #     async fn init(&self, _: &Context<Self>, n: u64) -> Result<u64, BoxError> { Ok(n) }
/// # }
/// let mut registry = otp::spec::Registry::new();
/// registry.gen_server("counter", Counter);
/// assert_eq!(registry.names().collect::<Vec<_>>(), ["counter"]);
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

    /// Registers a GenServer: `server` is cloned for every start, `args` come from the file.
    pub fn gen_server<G>(&mut self, start: &str, server: G) -> &mut Self
    where
        G: GenServer + Clone,
        G::Args: DeserializeOwned + Clone + Sync,
    {
        let build = move |id: &str, args: Value, name: Option<String>| {
            let args: G::Args = deserialize_args(args)?;
            let server = server.clone();
            Ok(ChildSpec::worker(id, move |parent| {
                let (server, args, name) = (server.clone(), args.clone(), name.clone());
                async move {
                    match name {
                        Some(name) => parent.start_named(name, server, args).await,
                        None => parent.start(server, args).await,
                    }
                }
            }))
        };
        self.insert(start, ChildType::Worker, Box::new(build))
    }

    /// Registers a supervisor module whose `init` takes `args` from the file.
    pub fn supervisor<S>(&mut self, start: &str, supervisor: S) -> &mut Self
    where
        S: Supervisor + Clone,
        S::Args: DeserializeOwned + Clone + Sync,
    {
        let build = move |id: &str, args: Value, name: Option<String>| {
            let args: S::Args = deserialize_args(args)?;
            let supervisor = supervisor.clone();
            Ok(ChildSpec::supervisor(id, move |parent| {
                parent.start_supervisor(name.clone(), supervisor.clone(), args.clone())
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
    /// # use otp::{BoxError, Context, GenServer, Protocol};
    /// # use std::net::SocketAddr;
    /// # #[derive(Clone)] struct Listener;
    /// # impl Protocol for Listener { type Call = (); type Reply = (); type Cast = (); }
    /// # impl GenServer for Listener {
    /// #     type Protocol = Self; type Args = (String, SocketAddr); type State = (); type Info = ();
    /// #     async fn init(&self, _: &Context<Self>, _: Self::Args) -> Result<(), BoxError> { Ok(()) }
    /// # }
    /// let banner = String::from("welcome"); // from the command line, say
    /// let mut registry = otp::spec::Registry::new();
    /// registry.child("listener", ChildType::Worker, move |id, listen: SocketAddr, _name| {
    ///     let banner = banner.clone();
    ///     ChildSpec::worker(id, move |parent| parent.start(Listener, (banner.clone(), listen)))
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
