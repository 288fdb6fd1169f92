//! Operator catalogs: OLM's file-based catalogs (FBC, what an index image's `/configs`
//! holds) and the older SQLite index, read, selected, checked and written again, for
//! `ferry-pack catalog list`, and rebuilt as catalog images (issue 12).
//!
//! - [`fbc`]: read a catalog from a directory tree or from one layer's tar stream,
//!   `.indexignore` honoured, JSON and YAML object streams, errors that name file, object
//!   and line. For a large catalog: read without raw bundles ([`RawBundles::None`]),
//!   select, then [`fill_raw_dir`] / [`fill_raw_tar`] the kept ones, so memory follows
//!   the selection (5,000 bundles, 100 MB: about 20 MiB resident).
//! - [`model`]: packages, channels, bundles, deprecations; bundles kept raw.
//! - [`version`]: OLM versions (tolerant bounds) and ranges.
//! - [`filter`]: oc-mirror v2's selection (catalog-filter) from `mirror.operators[]`, the
//!   dependency report, and the images the selection needs.
//! - [`validate`]: one head per channel, no cycle, no entry without its bundle.
//! - [`write`]: deterministic `configs/<package>/catalog.json`, and the listing.
//! - [`sqlite`]: the SQLite index (`/database/index.db`) of OpenShift 4.6–4.10 catalogs:
//!   opened read-only and read into the same model (so [`list`] works on it), selected by
//!   package only as `opm index prune` does (channel and version filters are refused),
//!   and pruned into a new database (other packages and every row naming them deleted,
//!   then `VACUUM`: byte-identical for the same input and packages).
//!
//! - [`image`]: catalog *images*: where the config's labels put the catalog, reading it
//!   from the one layer that holds it (the other layers are not opened), and the rebuilt
//!   image of a selection (layers holding only the catalog or opm's cache dropped, one
//!   deterministic tar+gzip layer of the new content, configs, manifests and index),
//!   byte-identical for the same input.
//!
//! What this crate must not do: touch the network (blobs and layers are handed to it
//! through [`image::Blobs`], new blobs go out through [`image::Sink`]), unpack an image's
//! filesystem (it reads the tar headers of layers and the one layer holding the catalog),
//! know ferry's bundle format, or decode `olm.bundle.object` properties (catalogs are
//! hundreds of MB; bundles are carried as raw bytes).
#![forbid(unsafe_code)]

pub mod fbc;
pub mod filter;
mod ignore;
pub mod image;
pub mod model;
pub mod sqlite;
pub mod validate;
pub mod version;
pub mod write;

#[cfg(test)]
mod tests;

pub use fbc::{
    fill_raw_dir, fill_raw_tar, read_dir, read_tar, Location, RawBundles, ReadError, ReadOptions,
};
pub use filter::{filter, Filter, FilterError, FilterOptions, Filtered};
pub use model::{Bundle, Catalog, Channel, ChannelEntry, Deprecation, Package, PackageContent};
pub use validate::{validate, ValidationError};
pub use write::{list, write, CatalogFile, Listing};
