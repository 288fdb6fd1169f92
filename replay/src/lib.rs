//! Replaying verified ferry volumes into a registry (`ferry-unpack push`).
#![forbid(unsafe_code)]

pub mod mapping;
pub mod openshift;
