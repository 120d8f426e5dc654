//! Logs recorded by the host with tenant, plugin and version attached.

use crate::bindings::base::switchboard::plugin::log as host;
pub use host::Level;

pub fn log(level: Level, message: &str) {
    host::log(level, message)
}
pub fn debug(message: &str) {
    host::log(Level::Debug, message)
}
pub fn info(message: &str) {
    host::log(Level::Info, message)
}
pub fn warn(message: &str) {
    host::log(Level::Warn, message)
}
pub fn error(message: &str) {
    host::log(Level::Error, message)
}
