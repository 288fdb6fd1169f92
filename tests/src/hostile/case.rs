//! What a case is: the files given, which are hostile, what verify must say, what must
//! never reach the registry, and who must refuse it ([`CaughtBy`]).

use super::fixture::{file_name, Fixture};

/// Who must refuse a case.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CaughtBy {
    /// `verify` exits 1 (SPEC.md §6.1: R1–R26 per volume, R27 across them).
    Verify,
    /// A signed lie only decoding reveals (R31, R32): `verify` passes each volume, so
    /// `extract` must exit 1 saying so.
    Extract,
    /// As `Extract`, but extracting would write gigabytes: `push` must fail saying so.
    Push,
}

pub struct Case {
    pub name: String,
    pub category: &'static str,
    /// The files given, in order: (file name, bytes).
    pub files: Vec<(String, Vec<u8>)>,
    /// Which of `files` are hostile (by name).
    pub hostile: Vec<String>,
    /// `verify --json` status of each hostile file (`invalid`, `damaged`, `foreign`);
    /// the other files must be `ok`.
    pub status: &'static str,
    /// What the refusal must say besides the file's path: the region or rule, and where.
    pub says: Vec<String>,
    /// Blobs that must not reach the registry.
    pub absent: Vec<String>,
    /// Blobs the case's own signed manifest vouches for (beyond the good bundle's).
    pub vouched: Vec<String>,
    pub caught_by: CaughtBy,
}

/// The cases made so far.
pub(super) struct Cases<'a> {
    pub(super) fx: &'a Fixture,
    pub(super) out: Vec<Case>,
}

impl Cases<'_> {
    /// One hostile volume given alone, refused by verify.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn alone(
        &mut self,
        category: &'static str,
        name: impl Into<String>,
        file: &str,
        bytes: Vec<u8>,
        status: &'static str,
        says: Vec<String>,
        absent: Vec<String>,
    ) {
        self.out.push(Case {
            name: name.into(),
            category,
            files: vec![(file.to_string(), bytes)],
            hostile: vec![file.to_string()],
            status,
            says,
            absent,
            vouched: Vec::new(),
            caught_by: CaughtBy::Verify,
        });
    }

    pub(super) fn invalid(
        &mut self,
        category: &'static str,
        name: &str,
        bytes: Vec<u8>,
        says: &[&str],
    ) {
        let file = file_name(&self.fx.good[0]);
        self.alone(
            category,
            name,
            &file,
            bytes,
            "invalid",
            says.iter().map(|s| s.to_string()).collect(),
            Vec::new(),
        );
    }

    pub(super) fn damaged(
        &mut self,
        category: &'static str,
        name: &str,
        bytes: Vec<u8>,
        says: Vec<String>,
    ) {
        let file = file_name(&self.fx.good[0]);
        self.alone(category, name, &file, bytes, "damaged", says, Vec::new());
    }
}

/// A tar header rewrite with its description.
pub(super) type Craft<'a> = (&'a str, &'a dyn Fn(&mut [u8]));
