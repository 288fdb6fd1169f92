//! Reads a mirror and says what it holds: for measuring the reader's memory
//! (`heaptrack target/release/examples/read_mirror DIR`, `/usr/bin/time -f %M`).

fn main() {
    let Some(dir) = std::env::args_os().nth(1) else {
        eprintln!("usage: read_mirror DIR");
        std::process::exit(2);
    };
    match mirror::read_mirror(std::path::Path::new(&dir)) {
        Ok(m) => {
            println!(
                "{} images, {} blobs, {} manifest types, {} tree entries",
                m.images.len(),
                m.blobs.len(),
                m.manifest_types.len(),
                m.tree.len()
            );
            // Hold the model while the process's peak is read.
            std::hint::black_box(&m);
        }
        Err(e) => {
            eprintln!("{e}");
            std::process::exit(1);
        }
    }
}
