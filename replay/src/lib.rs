//! Replaying verified ferry volumes into a registry (`ferry-unpack push`): where each image
//! goes, the push itself, and what it leaves for the cluster and the next bundle.
//!
//! What this crate must not do: print (it returns reports and emits events through a
//! callback), read a volume except through `format-spec`, or send anything the signed
//! tables do not vouch for; a tag is pushed only after every manifest it names.
#![forbid(unsafe_code)]

pub mod mapping;
pub mod openshift;
pub mod outputs;
pub mod push;
pub mod record;
pub mod registry;
