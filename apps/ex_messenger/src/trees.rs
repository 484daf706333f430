//! What the server's and the client's supervision trees share: the start names their spec
//! files use (`node`, configured from the command line, and the side's one exported
//! GenServer, with arguments from the program) and how a tree is loaded: the file built into
//! the binary, or `--tree FILE`.

use std::path::PathBuf;

use otp::gen_server::Start;
use otp::node::{Node, NodeConfig};
use otp::spec::Registry;
use otp::supervisor::{ChildSpec, ChildType, SupervisorRef};
use otp::GenServer;

/// A spec file compiled into the binary.
pub struct BuiltIn {
    /// Its text.
    pub text: &'static str,
    /// Its path in the repository, for error messages.
    pub path: &'static str,
}

/// Start names `node` (this process's node, with `config`) and `start` (the server
/// `server(args)` builds on every (re)start, such as `MessageServer::with_args`,
/// registered as `registered`).
pub fn registry<G, A>(
    config: NodeConfig,
    start: &str,
    registered: &'static str,
    server: fn(A) -> Start<G>,
    args: A,
) -> Registry
where
    G: GenServer,
    A: Clone + Send + Sync + 'static,
{
    let mut registry = Registry::new();
    registry.child("node", ChildType::Worker, move |id, (): (), _name| {
        Node::child_spec(id, config.clone())
    });
    registry.child(start, ChildType::Worker, move |id, (): (), _name| {
        let args = args.clone();
        ChildSpec::worker(id, move |parent| {
            parent.start_named(registered, server(args.clone()))
        })
    });
    registry
}

/// Loads the tree (`file`, else the built-in one) and starts it; `what` names it in errors.
pub async fn start(
    file: Option<&PathBuf>,
    built_in: BuiltIn,
    registry: &Registry,
    what: &str,
) -> anyhow::Result<SupervisorRef> {
    let tree = match file {
        Some(path) => otp::spec::load(path, registry)?,
        None => otp::spec::parse(built_in.text, built_in.path, registry)?,
    };
    tree.start()
        .await
        .map_err(|e| anyhow::anyhow!("cannot start the {what}: {e}"))
}
