//! Avatar Studio: turns a portrait, a voice recording and a prompt into a talking-avatar video
//! with the LiveAvatar model. The binary in `main.rs` is a thin front end over this library.

pub mod model;
pub mod weights;
