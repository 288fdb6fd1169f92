//! Generates the man pages and shell completions of ferry-pack from its clap definitions.

use clap::CommandFactory;

#[allow(dead_code)]
mod cli {
    include!("src/cli.rs");
}

include!("../build-support/docs.rs");

fn main() -> std::io::Result<()> {
    println!("cargo:rerun-if-changed=src/cli.rs");
    println!("cargo:rerun-if-changed=../build-support/docs.rs");
    write_docs(cli::Cli::command(), "ferry-pack")
}
