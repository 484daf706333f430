//! A pool of cache workers behind a router: each key belongs to one worker, picked by
//! hashing the key, and each worker runs under one supervisor. A worker that crashes
//! comes back empty; the others keep their keys.
//!
//! `cargo run --example pool`

use std::collections::hash_map::DefaultHasher;
use std::collections::HashMap;
use std::hash::{Hash, Hasher};
use std::time::Duration;

use otp::supervisor::{self, ChildSpec, SupervisorSpec};
use otp::{CallError, Context, Flow, GenServer, Named};

otp::protocol! {
    /// One cache worker.
    pub Cache;
    calls CacheCall {
        /// The value under a key.
        Get(String) -> Option<String>,
        /// How many keys this worker holds.
        Len -> usize,
    }
    casts CacheCast {
        /// Stores a value.
        Put(String, String),
    }
}

#[derive(Default)]
struct CacheWorker(HashMap<String, String>);

impl GenServer for CacheWorker {
    type Protocol = Cache;

    async fn handle_call(&mut self, call: CacheCall<'_>, _: &Context<Self>) -> otp::Result {
        Ok(match call {
            CacheCall::Get(Get(key), caller) => caller.reply(self.0.get(&key).cloned()),
            CacheCall::Len(Len, caller) => caller.reply(self.0.len()),
        })
    }

    async fn handle_cast(&mut self, cast: CacheCast, _: &Context<Self>) -> otp::Result {
        let CacheCast::Put(Put(key, value)) = cast;
        self.0.insert(key, value);
        Ok(Flow::Continue)
    }
}

/// Routes each key to its worker, by name: a restarted worker is reached as before.
struct Pool {
    workers: Vec<Named<Cache>>,
}

impl Pool {
    const SIZE: usize = 4;

    /// The supervisor spec of the pool's workers, `cache.0` to `cache.3`.
    fn spec() -> SupervisorSpec {
        let children = (0..Self::SIZE)
            .map(|index| {
                let name = format!("cache.{index}");
                ChildSpec::worker(name.clone(), move |parent| {
                    parent.start_named(name.clone(), CacheWorker::default())
                })
            })
            .collect();
        SupervisorSpec {
            flags: Default::default(),
            children,
        }
    }

    fn new() -> Self {
        let workers = (0..Self::SIZE)
            .map(|index| Named::new(format!("cache.{index}")))
            .collect();
        Self { workers }
    }

    fn worker(&self, key: &str) -> &Named<Cache> {
        let mut hasher = DefaultHasher::new();
        key.hash(&mut hasher);
        &self.workers[hasher.finish() as usize % self.workers.len()]
    }

    fn put(&self, key: &str, value: &str) {
        self.worker(key).cast(Put(key.to_owned(), value.to_owned()));
    }

    async fn get(&self, key: &str) -> Result<Option<String>, CallError> {
        self.worker(key).call(Get(key.to_owned())).await
    }
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let top = Pool::spec().start().await?;
    let pool = Pool::new();
    for n in 0..20 {
        pool.put(&format!("key{n}"), &format!("value {n}"));
    }
    println!("key7 -> {:?}", pool.get("key7").await?);
    for worker in &pool.workers {
        println!("{} holds {} keys", worker.name(), worker.call(Len).await?);
    }

    // Crash the worker that holds key7: it comes back empty, the others keep theirs.
    let owner = pool.worker("key7");
    let old = owner.resolve()?;
    old.kill();
    supervisor::restarted(owner, old.id(), Duration::from_secs(5)).await?;
    println!(
        "after {} crashed: key7 -> {:?}",
        owner.name(),
        pool.get("key7").await?
    );
    let kept: usize = {
        let mut kept = 0;
        for worker in &pool.workers {
            kept += worker.call(Len).await?;
        }
        kept
    };
    println!("the pool still holds {kept} of 20 keys");

    top.stop().await?;
    Ok(())
}
