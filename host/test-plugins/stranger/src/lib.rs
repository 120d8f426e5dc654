//! A component of some other world: loading it as a plugin must be refused clearly.

wit_bindgen::generate!({
    inline: "
        package other:thing;
        world greeter { export greet: func() -> string; }
    ",
});

// Exported only in the wasm build.
#[cfg_attr(not(target_arch = "wasm32"), allow(dead_code))]
struct Stranger;

impl Guest for Stranger {
    fn greet() -> String {
        "hello".into()
    }
}

#[cfg(target_arch = "wasm32")]
export!(Stranger);
