//! Replaying verified ferry volumes into a registry (`ferry-unpack push`): where each image
//! goes, the push itself, and what it leaves for the cluster and the next bundle.
#![forbid(unsafe_code)]

pub mod mapping;
pub mod openshift;
pub mod outputs;
pub mod push;
pub mod registry;
