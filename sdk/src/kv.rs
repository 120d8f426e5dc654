//! A key-value store private to this plugin in the current tenant.

use crate::bindings::base::switchboard::plugin::kv as host;
pub use host::KvError;

pub fn get(key: &str) -> Option<Vec<u8>> {
    host::get(key)
}

pub fn get_string(key: &str) -> Option<String> {
    host::get(key).and_then(|v| String::from_utf8(v).ok())
}

pub fn set(key: &str, value: &[u8]) -> Result<(), KvError> {
    host::set(key, value)
}

pub fn delete(key: &str) {
    host::delete(key)
}

/// Keys starting with `prefix`, sorted, at most `limit`.
pub fn list_keys(prefix: &str, limit: u32) -> Vec<String> {
    host::list_keys(prefix, limit)
}
