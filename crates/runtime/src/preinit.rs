//! Pre-initialisation (contract 0.1.2's `preinit`): a plugin's tenant-independent state (compiled
//! patterns, parsed models) is built once, at load, and every call starts from a snapshot of it
//! instead of rebuilding it.
//!
//! The plugin's `init` runs with [`wasmtime_wizer`] in an instance whose every import traps, under
//! the deadline and memory limit of a call; the snapshot is a new component whose memory and
//! globals start as `init` left them. Calls still get a fresh instance each, of the snapshot, so
//! nothing a call does survives into the next. Since `init` can reach no import, the snapshot
//! holds only what the plugin's own code computed from its own binary: sharing it between tenants
//! (the cache keys it by the binary's digest alone) shares code, not any tenant's data.

use std::sync::LazyLock;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use wasmtime::component::{Component, Instance, Linker, WasmList};
use wasmtime::{Config, Engine, OptLevel, Store, Trap, UpdateDeadline};
use wasmtime_wizer::{ComponentInstanceState, Wizer};

use crate::limits::{Limits, MemoryLimiter};
use switchboard_contract as contract;

/// Whether `bytes` is a component exporting a `preinit` this host can run. Reads the top-level
/// export names only, without compiling: a plugin without it is loaded exactly as before.
pub fn wants_preinit(bytes: &[u8]) -> bool {
    use wasmparser::{Parser, Payload};
    let mut names = Vec::new();
    let mut depth = 0usize;
    for payload in Parser::new(0).parse_all(bytes) {
        let Ok(payload) = payload else {
            return false;
        };
        match payload {
            Payload::Version { encoding, .. }
                if depth == 0 && encoding != wasmparser::Encoding::Component =>
            {
                return false;
            }
            Payload::ModuleSection { .. } | Payload::ComponentSection { .. } => depth += 1,
            Payload::End(_) => depth = depth.saturating_sub(1),
            Payload::ComponentExportSection(exports) if depth == 0 => {
                names.extend(
                    exports
                        .into_iter()
                        .flatten()
                        .map(|e| e.name.name.to_string()),
                );
            }
            _ => {}
        }
    }
    contract::find_interface(names.iter().map(String::as_str), contract::PREINIT).is_some()
}

/// Store state of the pre-initialising instance: only the limits, since it has no capability.
struct InitState {
    limiter: MemoryLimiter,
    deadline: Instant,
    timed_out: bool,
}

/// The engine that runs `init`: Cranelift without optimisations, since the instrumented
/// component runs once and compiling it is most of what pre-initialising costs. The snapshot,
/// which every call runs, is compiled by the runtime's own engine.
static INIT_ENGINE: LazyLock<Result<Engine, String>> = LazyLock::new(|| {
    let mut config = Config::new();
    config.wasm_component_model(true);
    config.epoch_interruption(true);
    config.cranelift_opt_level(OptLevel::None);
    Engine::new(&config).map_err(|e| crate::first_line(&e))
});

/// How often the init engine's epoch advances while an init runs.
const TICK: Duration = Duration::from_millis(5);

/// Run the plugin's `init` and return the snapshot component's bytes, or why it failed (one
/// line, for [`crate::LoadError::Preinit`]). Blocks the calling thread (run it off the async
/// workers).
pub fn snapshot(bytes: &[u8], limits: &Limits) -> Result<Vec<u8>, String> {
    let engine = INIT_ENGINE
        .as_ref()
        .map_err(|e| format!("no engine to run init: {e}"))?;
    let done = AtomicBool::new(false);
    std::thread::scope(|scope| {
        // Deadlines are checked at epoch ticks; this engine ticks only while an init runs.
        scope.spawn(|| {
            while !done.load(Ordering::Relaxed) {
                std::thread::sleep(TICK);
                engine.increment_epoch();
            }
        });
        let result = futures::executor::block_on(run_init(engine, bytes, limits));
        done.store(true, Ordering::Relaxed);
        result
    })
}

async fn run_init(engine: &Engine, bytes: &[u8], limits: &Limits) -> Result<Vec<u8>, String> {
    let mut wizer = Wizer::new();
    let (cx, instrumented) = wizer
        .keep_init_func(true)
        .instrument_component(bytes)
        .map_err(|e| format!("cannot instrument the component: {}", crate::first_line(&e)))?;
    let component = Component::new(engine, &instrumented).map_err(|e| {
        format!(
            "cannot compile the instrumented component: {}",
            crate::first_line(&e)
        )
    })?;
    let names: Vec<String> = component
        .component_type()
        .exports(engine)
        .map(|(n, _)| n.to_string())
        .collect();
    let export = contract::find_interface(names.iter().map(String::as_str), contract::PREINIT)
        .ok_or("the component exports no `preinit` this host supports")?;
    let iface = component
        .get_export_index(None, export)
        .ok_or("`preinit` is not an instance")?;
    let init = component
        .get_export_index(Some(&iface), contract::PREINIT_FUNCTION)
        .ok_or_else(|| format!("`{export}` lacks the function `init`"))?;

    // Every import traps: init may not read config, secrets, kv, the clock or randomness, or log.
    let mut linker = Linker::<InitState>::new(engine);
    linker
        .define_unknown_imports_as_traps(&component)
        .map_err(|e| crate::first_line(&e))?;
    let mut store = Store::new(
        engine,
        InitState {
            limiter: MemoryLimiter {
                limit: limits.memory_bytes as usize,
                hit: false,
                peak: 0,
            },
            deadline: Instant::now() + Duration::from_millis(limits.timeout_ms),
            timed_out: false,
        },
    );
    store.limiter(|s| &mut s.limiter);
    store.set_epoch_deadline(1);
    store.epoch_deadline_callback(|mut ctx| {
        let state = ctx.data_mut();
        if Instant::now() >= state.deadline {
            state.timed_out = true;
            Ok(UpdateDeadline::Interrupt)
        } else {
            Ok(UpdateDeadline::Continue(1))
        }
    });

    let ran: wasmtime::Result<Instance> = async {
        let instance = linker.instantiate_async(&mut store, &component).await?;
        let func = instance.get_typed_func::<(), ()>(&mut store, &init)?;
        func.call_async(&mut store, ()).await?;
        Ok(instance)
    }
    .await;
    let instance = match ran {
        Ok(instance) => instance,
        Err(e) => {
            let state = store.data();
            return Err(if state.limiter.hit {
                format!(
                    "init exceeded the memory limit of {} bytes",
                    limits.memory_bytes
                )
            } else if state.timed_out || matches!(e.downcast_ref::<Trap>(), Some(Trap::Interrupt)) {
                format!(
                    "init did not finish within the deadline of {} ms",
                    limits.timeout_ms
                )
            } else if let Some(import) = called_import(&e) {
                format!(
                    "init called the host import `{import}`; it may call none (config, secrets, kv, log, clocks and randomness belong to calls, and a `HashMap` with the default hasher asks for randomness)"
                )
            } else {
                format!("init failed: {}", crate::first_line(&e))
            });
        }
    };

    // Reading the state back runs only wizer's own accessors; give them a fresh deadline.
    store.data_mut().deadline = Instant::now() + Duration::from_millis(limits.timeout_ms);
    let mut access = Access {
        store: &mut store,
        instance,
        error: None,
    };
    let snapshot = wizer
        .snapshot_component(&cx, &mut access)
        .await
        .map_err(|e| format!("cannot snapshot: {}", crate::first_line(&e)))?;
    if let Some(e) = access.error {
        return Err(format!("cannot read the initialised state: {e}"));
    }
    Ok(snapshot)
}

/// The import a trap came from, when init called one (every import traps during init).
fn called_import(e: &wasmtime::Error) -> Option<String> {
    let text = format!("{e:#}");
    let rest = &text[text.find("unknown import: `")? + "unknown import: `".len()..];
    Some(rest[..rest.find('`')?].to_string())
}

/// Wizer's view of the initialised instance: its accessor functions, called through wasmtime.
/// Errors are kept (the trait has no way to return them) and reported after the snapshot.
struct Access<'a> {
    store: &'a mut Store<InitState>,
    instance: Instance,
    error: Option<String>,
}

impl Access<'_> {
    async fn call<R>(&mut self, instance: &str, func: &str) -> Option<R>
    where
        R: wasmtime::component::Lift + Send + Sync + 'static,
    {
        if self.error.is_some() {
            return None;
        }
        let result: wasmtime::Result<R> = async {
            let iface = self
                .instance
                .get_export_index(&mut *self.store, None, instance)
                .ok_or_else(|| wasmtime::format_err!("no export `{instance}`"))?;
            let idx = self
                .instance
                .get_export_index(&mut *self.store, Some(&iface), func)
                .ok_or_else(|| wasmtime::format_err!("no export `{instance}#{func}`"))?;
            let typed = self
                .instance
                .get_typed_func::<(), (R,)>(&mut *self.store, &idx)?;
            Ok(typed.call_async(&mut *self.store, ()).await?.0)
        }
        .await;
        match result {
            Ok(r) => Some(r),
            Err(e) => {
                self.error = Some(crate::first_line(&e));
                None
            }
        }
    }
}

impl ComponentInstanceState for Access<'_> {
    async fn call_func_ret_list_u8(
        &mut self,
        instance: &str,
        func: &str,
        contents: impl FnOnce(&[u8]) + Send,
    ) {
        match self.call::<WasmList<u8>>(instance, func).await {
            Some(list) => contents(list.as_le_slice(&*self.store)),
            None => contents(&[]),
        }
    }

    async fn call_func_ret_s32(&mut self, instance: &str, func: &str) -> i32 {
        self.call(instance, func).await.unwrap_or_default()
    }

    async fn call_func_ret_s64(&mut self, instance: &str, func: &str) -> i64 {
        self.call(instance, func).await.unwrap_or_default()
    }

    async fn call_func_ret_f32(&mut self, instance: &str, func: &str) -> u32 {
        self.call::<f32>(instance, func)
            .await
            .unwrap_or_default()
            .to_bits()
    }

    async fn call_func_ret_f64(&mut self, instance: &str, func: &str) -> u64 {
        self.call::<f64>(instance, func)
            .await
            .unwrap_or_default()
            .to_bits()
    }
}
