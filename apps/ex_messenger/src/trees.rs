//! What the server's and the client's supervision trees share: the start names their spec
//! files use (`node`, configured from the command line, and the side's one exported
//! GenServer, with arguments from the program) and how a tree is loaded: the file built into
//! the binary, or `--tree FILE`.

use std::path::PathBuf;

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

/// Start names `node` (this process's node, with `config`) and `start` (`server`,
/// registered as `registered`, started with `args` on every (re)start).
pub fn registry<G>(
    config: NodeConfig,
    start: &str,
    registered: &'static str,
    server: G,
    args: G::Args,
) -> Registry
where
    G: GenServer + Clone,
    G::Args: Clone + Sync,
{
    let mut registry = Registry::new();
    registry.child("node", ChildType::Worker, move |id, (): (), _name| {
        Node::child_spec(id, config.clone())
    });
    registry.child(start, ChildType::Worker, move |id, (): (), _name| {
        let (server, args) = (server.clone(), args.clone());
        ChildSpec::worker(id, move |parent| {
            parent.start_named(registered, server.clone(), args.clone())
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
