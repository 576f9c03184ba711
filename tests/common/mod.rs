//! Helpers shared by the integration tests. Each test binary uses a part of them.
#![allow(dead_code, unused_imports)]

pub mod encoder_fixtures;
pub mod fixtures;
pub mod media;

pub use fixtures::*;
pub use media::*;
