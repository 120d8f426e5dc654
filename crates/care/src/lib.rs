//! The care layer: what a tenant configures and what happens to each of its messages.
//!
//! Owns: the tenant config file ([`tenant`]), the care policy ([`policy`], CEL rules), the reply
//! guards ([`guards`]), business hours ([`hours`]), a message through classifiers, policy,
//! suggesters and guards ([`pipeline`]), the durable engine that accepts, processes, resumes and
//! delivers ([`worker`]), and the care workflow: the rules ([`care`]) and what the engine does
//! with them ([`workflow`]).
//!
//! Knows nothing of HTTP, axum or the server's workers; it reaches plugins only through
//! `switchboard-runtime` and rows only through `switchboard-store`.
//!
//! Modules, lowest first; each uses only those before it:
//! 1. [`traces`], [`hours`], [`guards`], [`policy`]: leaves;
//! 2. [`care`]: service levels, away, surveys, teams and sign-off, incident rules, reports —
//!    configuration and pure rules, no tenant and no engine;
//! 3. [`tenant`]: the config file, which gathers all of the above;
//! 4. [`pipeline`]: one message through one tenant;
//! 5. [`worker`]: the durable engine;
//! 6. [`workflow`]: the care workflow as `impl Engine` blocks.

pub mod care;
pub mod guards;
pub mod hours;
pub mod pipeline;
pub mod policy;
pub mod tenant;
pub mod traces;
pub mod worker;
pub mod workflow;
