//! Generated bindings for the contract in `wit/`. Plugin authors use the re-exports at the crate
//! root instead; these modules are public only so that the export macros can reach them.

/// The shared types and host imports, generated once and reused by every world below.
pub mod base {
    wit_bindgen::generate!({
        path: "../wit",
        world: "switchboard:plugin/imports@0.1.2",
        type_section_suffix: "switchboard-sdk-base",
        generate_all,
    });
}

pub mod classifier {
    wit_bindgen::generate!({
        path: "../wit",
        world: "switchboard:plugin/classifier@0.1.2",
        with: {
            "switchboard:plugin/types@0.1.2": crate::bindings::base::switchboard::plugin::types,
            "switchboard:plugin/config@0.1.2": crate::bindings::base::switchboard::plugin::config,
            "switchboard:plugin/kv@0.1.2": crate::bindings::base::switchboard::plugin::kv,
            "switchboard:plugin/log@0.1.2": crate::bindings::base::switchboard::plugin::log,
        },
        pub_export_macro: true,
        export_macro_name: "__switchboard_export_classifier_world",
        default_bindings_module: "switchboard_sdk::bindings::classifier",
    });
}

pub mod suggester {
    wit_bindgen::generate!({
        path: "../wit",
        world: "switchboard:plugin/reply-suggester@0.1.2",
        with: {
            "switchboard:plugin/types@0.1.2": crate::bindings::base::switchboard::plugin::types,
            "switchboard:plugin/config@0.1.2": crate::bindings::base::switchboard::plugin::config,
            "switchboard:plugin/kv@0.1.2": crate::bindings::base::switchboard::plugin::kv,
            "switchboard:plugin/log@0.1.2": crate::bindings::base::switchboard::plugin::log,
        },
        pub_export_macro: true,
        export_macro_name: "__switchboard_export_suggester_world",
        default_bindings_module: "switchboard_sdk::bindings::suggester",
    });
}

pub mod connector {
    wit_bindgen::generate!({
        path: "../wit",
        world: "switchboard:plugin/answering-channel-adapter@0.1.2",
        with: {
            "switchboard:plugin/types@0.1.2": crate::bindings::base::switchboard::plugin::types,
            "switchboard:plugin/config@0.1.2": crate::bindings::base::switchboard::plugin::config,
            "switchboard:plugin/kv@0.1.2": crate::bindings::base::switchboard::plugin::kv,
            "switchboard:plugin/log@0.1.2": crate::bindings::base::switchboard::plugin::log,
        },
        pub_export_macro: true,
        export_macro_name: "__switchboard_export_connector_world",
        default_bindings_module: "switchboard_sdk::bindings::connector",
    });
}

/// Contract 0.1.2's `preinit`, in a world of its own: a plugin that names an init function gets
/// this export beside its kind's (the two worlds are merged when the component is built), and a
/// plugin that does not is built exactly as before.
pub mod preinit {
    wit_bindgen::generate!({
        path: "../wit",
        world: "switchboard:plugin/preinitialised@0.1.2",
        pub_export_macro: true,
        export_macro_name: "__switchboard_export_preinit_world",
        default_bindings_module: "switchboard_sdk::bindings::preinit",
    });
}
