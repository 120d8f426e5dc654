//! Write Switchboard plugins in Rust.
//!
//! A plugin is a WebAssembly component built with `cargo build --target wasm32-wasip2`. Implement
//! the trait of its kind ([`Classifier`], [`ReplySuggester`] or [`ChannelAdapter`]) and export it
//! with the matching macro; only that kind's exports end up in the component:
//!
//! ```ignore
//! use switchboard_sdk::prelude::*;
//!
//! struct Shouting;
//!
//! impl Classifier for Shouting {
//!     fn info() -> PluginInfo {
//!         PluginInfo::new("shouting", env!("CARGO_PKG_VERSION"), "Flags messages written in capitals")
//!     }
//!     fn classify(message: Message, _ctx: CallContext) -> Result<Vec<Label>, PluginError> {
//!         let letters: Vec<char> = message.text.chars().filter(|c| c.is_alphabetic()).collect();
//!         let upper = letters.iter().filter(|c| c.is_uppercase()).count();
//!         if letters.len() >= 8 && upper * 10 >= letters.len() * 8 {
//!             return Ok(vec![Label::new("shouting", 0.9).because("mostly capital letters")]);
//!         }
//!         Ok(vec![])
//!     }
//! }
//!
//! switchboard_sdk::export_classifier!(Shouting);
//! ```
//!
//! State that does not depend on the tenant (compiled patterns, parsed models) can be built once,
//! when the host loads the plugin, rather than on every call: name a function that builds it
//! and the host runs it once and starts every call from a snapshot of the result (contract
//! 0.1.2's `preinit`). It may call no host import (config, kv, log, clock, randomness: a
//! `HashMap` with the default hasher asks for randomness), or the plugin does not load:
//!
//! ```ignore
//! static PATTERN: LazyLock<Regex> = LazyLock::new(|| Regex::new("(?i)refund").unwrap());
//! fn init() {
//!     LazyLock::force(&PATTERN);
//! }
//! switchboard_sdk::export_classifier!(Shouting, init = init);
//! ```
//!
//! Everything a plugin can reach goes through the host: [`config`] (and secrets), [`kv`],
//! [`log`] and [`http`]. The host scopes each of them to one tenant and one plugin.

#[doc(hidden)]
pub mod bindings;
pub mod config;
pub mod http;
pub mod kv;
pub mod log;
mod types_ext;

pub use bindings::base::switchboard::plugin::types::{
    Attachment, AttachmentKind, Author, CallContext, Draft, Evidence, Label, LengthRule,
    LengthUnit, Message, MessageAction, Origin, OutboundReply, PluginError, PluginInfo, Span,
    Visibility,
};

/// A classifier: labels a message.
pub trait Classifier {
    fn info() -> PluginInfo;
    fn classify(message: Message, context: CallContext) -> Result<Vec<Label>, PluginError>;
}

/// A reply-suggester: drafts replies, best first.
pub trait ReplySuggester {
    fn info() -> PluginInfo;
    fn suggest(
        message: Message,
        labels: Vec<Label>,
        context: CallContext,
    ) -> Result<Vec<Draft>, PluginError>;
}

pub use connector::*;
mod connector;

mod classifier_glue {
    use crate::bindings::classifier::exports::switchboard::plugin::classify;

    impl<T: crate::Classifier> classify::Guest for T {
        fn about() -> crate::PluginInfo {
            T::info()
        }
        fn classify(
            message: crate::Message,
            context: crate::CallContext,
        ) -> Result<Vec<crate::Label>, crate::PluginError> {
            T::classify(message, context)
        }
    }
}

mod suggester_glue {
    use crate::bindings::suggester::exports::switchboard::plugin::suggest;

    impl<T: crate::ReplySuggester> suggest::Guest for T {
        fn about() -> crate::PluginInfo {
            T::info()
        }
        fn suggest(
            message: crate::Message,
            labels: Vec<crate::Label>,
            context: crate::CallContext,
        ) -> Result<Vec<crate::Draft>, crate::PluginError> {
            T::suggest(message, labels, context)
        }
    }
}

/// Export a [`Classifier`] implementation as this component's classifier.
/// `init = f` also exports `f` as its pre-initialisation (see the crate docs).
#[macro_export]
macro_rules! export_classifier {
    ($t:ident, init = $init:path) => {
        $crate::export_classifier!($t);
        $crate::export_init!($init);
    };
    ($t:ident) => {
        // Only a wasm build is a component; native builds (tests, clippy) skip the exports.
        #[cfg(target_arch = "wasm32")]
        mod __switchboard_classifier_exports {
            use super::*;
            $crate::bindings::classifier::__switchboard_export_classifier_world!($t with_types_in $crate::bindings::classifier);
        }
        // Native builds: keep the implementation "used" so lints stay meaningful.
        #[cfg(not(target_arch = "wasm32"))]
        const _: fn() = || {
            let _ = <$t as $crate::Classifier>::info;
            let _ = <$t as $crate::Classifier>::classify;
        };
    };
}

/// Export a [`ReplySuggester`] implementation as this component's reply-suggester.
/// `init = f` also exports `f` as its pre-initialisation (see the crate docs).
#[macro_export]
macro_rules! export_suggester {
    ($t:ident, init = $init:path) => {
        $crate::export_suggester!($t);
        $crate::export_init!($init);
    };
    ($t:ident) => {
        // Only a wasm build is a component; native builds (tests, clippy) skip the exports.
        #[cfg(target_arch = "wasm32")]
        mod __switchboard_suggester_exports {
            use super::*;
            $crate::bindings::suggester::__switchboard_export_suggester_world!($t with_types_in $crate::bindings::suggester);
        }
        // Native builds: keep the implementation "used" so lints stay meaningful.
        #[cfg(not(target_arch = "wasm32"))]
        const _: fn() = || {
            let _ = <$t as $crate::ReplySuggester>::info;
            let _ = <$t as $crate::ReplySuggester>::suggest;
        };
    };
}

/// Export `init` as the component's pre-initialisation (contract 0.1.2's `preinit.init`): the
/// host calls it once at load, with every import refused, and starts each call from a snapshot
/// of what it built. Used through the `init = …` form of the export macros.
#[doc(hidden)]
#[macro_export]
macro_rules! export_init {
    ($init:path) => {
        #[cfg(target_arch = "wasm32")]
        mod __switchboard_preinit_exports {
            use super::*;
            pub struct Preinit;
            impl $crate::bindings::preinit::exports::switchboard::plugin::preinit::Guest for Preinit {
                fn init() {
                    $init()
                }
            }
            $crate::bindings::preinit::__switchboard_export_preinit_world!(Preinit with_types_in $crate::bindings::preinit);
        }
        #[cfg(not(target_arch = "wasm32"))]
        const _: fn() = $init;
    };
}

/// The names a plugin usually needs.
pub mod prelude {
    pub use crate::{
        Attachment, AttachmentKind, Author, CallContext, Classifier, Draft, Evidence, Label,
        LengthRule, LengthUnit, Message, MessageAction, Origin, OutboundReply, PluginError,
        PluginInfo, ReplySuggester, Span, Visibility, config, http, kv, log,
    };
    pub use crate::{
        Capability, ChannelAdapter, ChannelInfo, DeliveryReceipt, Event, HttpRequest, HttpResponse,
        PollBatch, SkippedEvent, WebhookOutcome,
    };
}
