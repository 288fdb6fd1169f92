// Man pages and shell completions from a clap definition, shared by the build scripts of
// ferry-pack and ferry-unpack (included, since build scripts cannot share a crate cheaply).
// Written into target/<profile>/share/man/man1/ and target/<profile>/share/completions/.

fn write_docs(cmd: clap::Command, bin: &'static str) -> std::io::Result<()> {
    use std::fs::{self, File};
    use std::path::PathBuf;

    use clap_complete::Shell;

    let out = PathBuf::from(std::env::var_os("OUT_DIR").expect("cargo sets OUT_DIR"));
    // OUT_DIR is target/<profile>/build/<package>-<hash>/out.
    let Some(profile_dir) = out.ancestors().nth(3) else {
        return Ok(());
    };
    let share = profile_dir.join("share");
    let man = share.join("man/man1");
    let completions = share.join("completions");
    fs::create_dir_all(&man)?;
    fs::create_dir_all(&completions)?;
    clap_mangen::Man::new(cmd.clone()).render(&mut File::create(man.join(format!("{bin}.1")))?)?;
    for sub in cmd.get_subcommands() {
        let name = format!("{bin}-{}", sub.get_name());
        // A build script runs once: leaking the name is how clap takes a computed one.
        let page = sub.clone().name(&*Box::leak(name.clone().into_boxed_str()));
        clap_mangen::Man::new(page).render(&mut File::create(man.join(format!("{name}.1")))?)?;
    }
    for shell in [Shell::Bash, Shell::Zsh, Shell::Fish] {
        clap_complete::generate_to(shell, &mut cmd.clone(), bin, &completions)?;
    }
    Ok(())
}
