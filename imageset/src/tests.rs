//! Whole files: the real-looking configs in `testdata/` and every bad-config case, checked
//! by the message a user reads (`file:line:col: path: what`).

use std::path::{Path, PathBuf};

use crate::{ImageSet, ImageSetError, Platform};

fn testdata(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("testdata")
        .join(name)
}

fn parse(text: &str) -> Result<ImageSet, ImageSetError> {
    ImageSet::parse(text.to_string(), Path::new("imageset.yaml"))
}

fn err(text: &str) -> String {
    parse(text).unwrap_err().to_string()
}

fn pull_err(text: &str) -> String {
    parse(text)
        .unwrap()
        .validate_for_pull()
        .unwrap_err()
        .to_string()
}

const HEAD: &str = "kind: ImageSetConfiguration\napiVersion: mirror.openshift.io/v2alpha1\n";

#[test]
fn efk_additional_images_pull_set() {
    let set = ImageSet::from_file(&testdata("efk-additional-images.yaml")).unwrap();
    let pull = set.validate_for_pull().unwrap();
    let names: Vec<String> = pull.images.iter().map(|i| i.name.to_string()).collect();
    assert_eq!(names.len(), 5);
    assert_eq!(
        names[0],
        "registry.redhat.io/openshift4/ose-elasticsearch-operator:v4.6"
    );
    assert!(names[3]
        .ends_with("@sha256:272de9b117e8b76572954ad57a6f89c07b40d3362b41e39650d048134e49fd81"));
    let fluentd = &pull.images[2];
    assert_eq!(
        fluentd.platforms,
        vec!["linux/amd64".parse::<Platform>().unwrap()]
    );
    assert_eq!(set.image_at(fluentd.index), Some((11, 5)));
    // --platform applies where the entry has none.
    let cli = ["linux/arm64".parse::<Platform>().unwrap()];
    assert_eq!(pull.images[0].platforms_or(&cli), &cli);
    assert_eq!(fluentd.platforms_or(&cli), &fluentd.platforms[..]);
    // archiveSize is accepted and noted, not silently dropped.
    assert_eq!(pull.notes.len(), 1);
    let note = pull.notes[0].to_string();
    assert!(
        note.contains("efk-additional-images.yaml:6:1: note: archiveSize: 4"),
        "{note}"
    );
}

#[test]
fn oc_mirror_examples_parse_and_are_refused_by_section() {
    let docs = ImageSet::from_file(&testdata("oc-mirror-docs-image-set-config.yaml")).unwrap();
    assert_eq!(docs.config.mirror.operators[0].packages.len(), 3);
    assert_eq!(
        docs.config.mirror.helm.repositories[0].charts[0].name,
        "cosigned"
    );
    let e = docs.validate_for_pull().unwrap_err();
    assert!(matches!(e, ImageSetError::Unsupported { .. }));
    let msg = e.to_string();
    assert!(
        msg.contains("oc-mirror-docs-image-set-config.yaml:5:3: mirror.platform: OpenShift release payloads are not supported"),
        "{msg}"
    );

    let e2e = ImageSet::from_file(&testdata("oc-mirror-e2e/config-72708.yaml")).unwrap();
    assert_eq!(e2e.config.mirror.platform.architectures, vec!["s390x"]);
    assert!(e2e
        .validate_for_pull()
        .unwrap_err()
        .to_string()
        .contains("mirror.platform: OpenShift release payloads"));

    let blocked = ImageSet::from_file(&testdata("oc-mirror-e2e/config-83582.yaml")).unwrap();
    let msg = blocked.validate_for_pull().unwrap_err().to_string();
    assert!(
        msg.contains(":4:3: mirror.platform: OpenShift release payloads are not supported"),
        "{msg}"
    );

    let efk = ImageSet::from_file(&testdata("efk-operators.yaml")).unwrap();
    let op = &efk.config.mirror.operators[0];
    assert_eq!(
        op.target_catalog.as_ref().unwrap().0,
        "my-operator/my-operator-index"
    );
    assert_eq!(
        op.packages[0].channels[0].min_version.as_deref(),
        Some("5.1.0")
    );
    assert_eq!(op.platforms[0].architecture, "amd64");
    // The seed's case is pulled: one catalog, its destination, no image listed besides.
    let set = efk.validate_for_pull().unwrap();
    assert!(set.images.is_empty());
    assert_eq!(set.operators.len(), 1);
    let o = &set.operators[0];
    assert_eq!(
        o.catalog.reference.to_string(),
        "registry.redhat.io/redhat/redhat-operator-index:v4.8"
    );
    assert_eq!(
        o.target_catalog.as_deref(),
        Some("my-operator/my-operator-index")
    );
    assert_eq!(o.target_tag.as_deref(), Some("v1"));
    assert_eq!(o.config.packages.len(), 2);
    assert!(!o.config.include_dependencies);
    assert_eq!(efk.operator_at(0), Some((6, 5)));
}

#[test]
fn operators_are_checked_as_far_as_the_file_allows() {
    let oci = format!("{HEAD}mirror:\n  operators:\n  - catalog: oci:///tmp/cat\n");
    let msg = pull_err(&oci);
    assert!(
        msg.contains("imageset.yaml:5:5: mirror.operators[0].catalog: oci:///tmp/cat: ferry reads catalogs from a registry only"),
        "{msg}"
    );
    let twice = format!("{HEAD}mirror:\n  operators:\n  - catalog: a.io/c:1\n  - catalog: a.io/c:1\n    packages:\n    - name: p\n");
    let msg = pull_err(&twice);
    assert!(
        msg.contains("mirror.operators[1]: the catalog a.io/c:1 is listed again on line 5"),
        "{msg}"
    );
    let deps = format!("{HEAD}mirror:\n  operators:\n  - catalog: a.io/c:1\n    includeDependencies: true\n    skipDependencies: true\n");
    let set = parse(&deps).unwrap().validate_for_pull().unwrap();
    assert!(set.operators[0].config.include_dependencies);
    assert!(
        set.notes[0]
            .text
            .contains("skipDependencies is declared by oc-mirror but not read"),
        "{:?}",
        set.notes
    );
    let typo = format!(
        "{HEAD}mirror:\n  operators:\n  - catalog: a.io/c:1\n    includeDependency: true\n"
    );
    assert!(parse(&typo).is_err());
}

#[test]
fn helm_and_samples_are_refused() {
    let helm = format!("{HEAD}mirror:\n  additionalImages:\n  - name: a.io/b:1\n  helm:\n    local:\n    - name: c\n      path: /x\n");
    assert!(
        pull_err(&helm).contains("imageset.yaml:6:3: mirror.helm: Helm charts are not supported")
    );
    let samples = format!(
        "{HEAD}mirror:\n  additionalImages:\n  - name: a.io/b:1\n  samples:\n  - name: s\n"
    );
    assert!(pull_err(&samples).contains("imageset.yaml:6:3: mirror.samples:"));
    // An empty section is no request: `helm: {}` and `operators: []` pass.
    let empty = format!("{HEAD}mirror:\n  additionalImages:\n  - name: a.io/b:1\n  helm: {{}}\n  operators: []\n  platform:\n");
    parse(&empty).unwrap().validate_for_pull().unwrap();
}

#[test]
fn malformed_reference_names_file_line_column_field() {
    let text = format!("{HEAD}mirror:\n  additionalImages:\n  - name: registry.redhat.io/ubi8/ubi:8.9\n  - name: quay.io/a/b:1\n  - name: \"registry.redhat.io/ubi8:\"\n");
    assert_eq!(
        err(&text),
        "imageset.yaml:7:11: mirror.additionalImages[2].name: \"registry.redhat.io/ubi8:\" is not a reference: the tag at byte 24: the tag is empty (expected a letter, digit or `_`, then up to 127 letters, digits, `_`, `.` or `-`)"
    );
    for (name, why) in [
        ("registry.redhat.io/ubi8/ubi", "no tag or digest"),
        ("oci:///tmp/layout", "oci:// transport is not supported"),
        ("Quay.io/A/b:1", "the repository name at byte 8: 'A' is uppercase, and repository paths are lowercase"),
        ("quay.io/a@sha256:1234", "the digest at byte 17: \"sha256:1234\" is not a sha256 digest: it has 4 hex digits after `sha256:`, not 64"),
    ] {
        let text = format!("{HEAD}mirror:\n  additionalImages:\n  - name: {name}\n");
        let e = err(&text);
        assert!(
            e.starts_with("imageset.yaml:5:11: mirror.additionalImages[0].name: "),
            "{e}"
        );
        assert!(e.contains(why), "{name}: {e}");
    }
    // docker:// is oc-mirror's default transport and is accepted.
    let text = format!("{HEAD}mirror:\n  additionalImages:\n  - name: docker://quay.io/a/b:1\n");
    let set = parse(&text).unwrap().validate_for_pull().unwrap();
    assert_eq!(set.images[0].name.written, "quay.io/a/b:1");
}

#[test]
fn unknown_fields_are_errors_with_their_place() {
    let text =
        format!("{HEAD}mirror:\n  additionalImages:\n  - name: a.io/b:1\n    targetrepo: x\n");
    let e = err(&text);
    assert!(e.starts_with("imageset.yaml:6:5: mirror.additionalImages[0]: unknown field `targetrepo`, expected one of `name`, `targetRepo`"), "{e}");
    let text = format!("{HEAD}storageConfig:\n  local:\n    path: /x\nmirror: {{}}\n");
    let e = err(&text);
    assert!(
        e.starts_with("imageset.yaml:3:1: unknown field `storageConfig`"),
        "{e}"
    );
    let text = format!("{HEAD}mirror:\n  additionalImages:\n  - name: a.io/b:1\n    platforms:\n    - os: linux\n      arch: amd64\n");
    let e = err(&text);
    assert!(
        e.starts_with(
            "imageset.yaml:8:7: mirror.additionalImages[0].platforms[0]: unknown field `arch`"
        ),
        "{e}"
    );
    // Duplicate keys are refused, as Go's strict YAML does.
    let text = format!("{HEAD}mirror:\n  additionalImages: []\n  additionalImages: []\n");
    assert_eq!(
        err(&text),
        "imageset.yaml:4:3: mirror: duplicate entry with key \"additionalImages\""
    );
}

#[test]
fn kind_and_api_version() {
    let e = err(
        "apiVersion: mirror.openshift.io/v2alpha1\nkind: DeleteImageSetConfiguration\ndelete: {}\n",
    );
    assert!(e.starts_with("imageset.yaml:2:1: kind: DeleteImageSetConfiguration is oc-mirror's list of images to delete"), "{e}");
    let e = err("apiVersion: v1\nkind: ConfigMap\n");
    assert!(
        e.starts_with("imageset.yaml:2:1: kind: \"ConfigMap\" is not an image set"),
        "{e}"
    );
    let e = err("kind: ImageSetConfiguration\napiVersion: mirror.openshift.io/v1alpha2\nstorageConfig: {}\nmirror: {}\n");
    assert!(
        e.starts_with(
            "imageset.yaml:2:1: apiVersion: mirror.openshift.io/v1alpha2 is oc-mirror v1's format"
        ),
        "{e}"
    );
    let e = err("kind: ImageSetConfiguration\napiVersion: mirror.openshift.io/v3\nmirror: {}\n");
    assert!(
        e.contains("apiVersion: \"mirror.openshift.io/v3\" is not supported"),
        "{e}"
    );
    assert!(err("kind: ImageSetConfiguration\nmirror: {}\n")
        .contains("imageset.yaml: apiVersion: missing"));
    assert!(err("mirror: {}\n").contains("imageset.yaml: kind: missing"));
    assert!(err("").contains("imageset.yaml: the file is empty"));
    assert!(err("   \n# nothing\n").contains("the file is empty"));
    let e = err(HEAD);
    assert!(e.contains("missing field `mirror`"), "{e}");
    let e = err("- a\n- b\n");
    assert!(e.contains("expected an image set (a mapping)"), "{e}");
    let e = err(&format!(
        "{HEAD}mirror:\n  additionalImages:\n  - name: [a\n"
    ));
    assert!(e.starts_with("imageset.yaml:"), "{e}");
    let e = err(&format!("{HEAD}mirror: {{}}\n---\n{HEAD}mirror: {{}}\n"));
    assert!(e.contains("more than one document"), "{e}");
    let big = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(
        big.path(),
        vec![b'#'; (crate::load::MAX_FILE_BYTES + 1) as usize],
    )
    .unwrap();
    let e = ImageSet::from_file(big.path()).unwrap_err().to_string();
    assert!(e.ends_with(": larger than 4 MiB: not an image set"), "{e}");
    let e = ImageSet::from_file(Path::new("/nonexistent/imageset.yaml"))
        .unwrap_err()
        .to_string();
    assert!(
        e.starts_with("/nonexistent/imageset.yaml: cannot read the image set:"),
        "{e}"
    );
}

#[test]
fn targets_tags_patterns_platforms_are_checked() {
    let t = |entry: &str| {
        err(&format!(
            "{HEAD}mirror:\n  additionalImages:\n  - name: a.io/b:1\n    {entry}\n"
        ))
    };
    assert!(t("targetRepo: quay.io/x:1").contains(
        "mirror.additionalImages[0].targetRepo: \"quay.io/x:1\" is not a repository path"
    ));
    assert!(t("targetTag: \"bad tag\"").contains(
        "imageset.yaml:6:16: mirror.additionalImages[0].targetTag: tag \"bad tag\" is not a tag"
    ));
    let e = err(&format!(
        "{HEAD}mirror:\n  blockedImages:\n  - name: \"(unclosed\"\n"
    ));
    assert!(e.starts_with("imageset.yaml:5:11: mirror.blockedImages[0].name: \"(unclosed\" is not a regular expression"), "{e}");
    let e = pull_err(&format!("{HEAD}mirror:\n  additionalImages:\n  - name: a.io/b:1\n    platforms:\n    - os: linux\n      architecture: \"\"\n"));
    assert_eq!(e, "imageset.yaml:8:7: mirror.additionalImages[0].platforms[0].architecture: the architecture is empty (e.g. amd64, arm64)");
    // A numeric-looking tag is taken as written.
    let set = parse(&format!("{HEAD}mirror:\n  additionalImages:\n  - name: a.io/b:1\n    targetTag: 1.0\n    targetRepo: mirror/b\n")).unwrap();
    let pull = set.validate_for_pull().unwrap();
    assert_eq!(pull.images[0].target_tag.as_deref(), Some("1.0"));
    assert_eq!(pull.images[0].target_repo.as_deref(), Some("mirror/b"));
    // Null sections are empty sections, as in oc-mirror.
    let e = pull_err(&format!(
        "{HEAD}mirror:\n  additionalImages:\n  operators:\n"
    ));
    assert!(
        e.starts_with("imageset.yaml:4:3: mirror.additionalImages: no images to pull"),
        "{e}"
    );
    let e = pull_err(&format!("{HEAD}mirror:\n  additionalImages: []\n"));
    assert!(
        e.starts_with("imageset.yaml:4:3: mirror.additionalImages: no images to pull"),
        "{e}"
    );
    let e = pull_err(&format!("{HEAD}mirror:\n  blockedImages: []\n"));
    assert!(
        e.starts_with("imageset.yaml:3:1: mirror: no images to pull"),
        "{e}"
    );
}

#[test]
fn blocked_and_duplicates() {
    let text = format!("{HEAD}mirror:\n  additionalImages:\n  - name: registry.redhat.io/ubi8/ubi:8.9\n  - name: quay.io/x/debug-tools:1\n  - name: registry.redhat.io/ubi8/ubi:8.9\n  blockedImages:\n  - name: debug\n");
    let pull = parse(&text).unwrap().validate_for_pull().unwrap();
    assert_eq!(pull.images.len(), 1);
    assert_eq!(pull.blocked.len(), 1);
    assert_eq!(pull.blocked[0].0.written, "quay.io/x/debug-tools:1");
    assert_eq!(pull.blocked[0].1, "debug");
    let notes: Vec<String> = pull.notes.iter().map(|n| n.to_string()).collect();
    assert_eq!(notes, ["imageset.yaml:7:5: note: registry.redhat.io/ubi8/ubi:8.9 is listed twice (line 5); pulled once"]);

    let text = format!("{HEAD}mirror:\n  additionalImages:\n  - name: ubuntu:22.04\n  - name: docker.io/library/ubuntu:22.04\n    platforms:\n    - os: linux\n      architecture: arm64\n");
    let e = pull_err(&text);
    assert!(e.starts_with("imageset.yaml:6:5: mirror.additionalImages[1]: docker.io/library/ubuntu:22.04 is listed again on line 5 with other platforms"), "{e}");

    let text = format!("{HEAD}mirror:\n  additionalImages:\n  - name: quay.io/a/b:1\n  blockedImages:\n  - name: \"^quay\\\\.io/\"\n");
    let e = pull_err(&text);
    assert!(
        e.starts_with(
            "imageset.yaml:6:3: mirror.blockedImages: every image of additionalImages is blocked"
        ),
        "{e}"
    );
}

#[test]
fn every_oc_mirror_e2e_config_parses() {
    let dir = testdata("oc-mirror-e2e");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
        .collect();
    files.sort();
    assert!(files.len() >= 50, "{}", files.len());
    let (mut parsed, mut pullable, mut v1) = (0, 0, 0);
    for f in &files {
        let name = f.file_name().unwrap().to_str().unwrap();
        let text = std::fs::read_to_string(f).unwrap();
        match ImageSet::from_file(f) {
            Ok(set) => {
                parsed += 1;
                if set.validate_for_pull().is_ok() {
                    pullable += 1;
                }
            }
            Err(e) => {
                let e = e.to_string();
                if text.contains("mirror.openshift.io/v1alpha2") {
                    assert!(e.contains("is oc-mirror v1's format"), "{e}");
                    v1 += 1;
                } else if name == "config-73783.yaml" {
                    assert!(
                        e.contains(":6:12: mirror.additionalImages[1].name: ")
                            && e.contains("is not a sha256 digest: it has 66 hex digits after `sha256:`, not 64"),
                        "{e}"
                    );
                } else if name == "config-88132-invalid.yaml" {
                    assert!(e.contains(":6:19: mirror.additionalImages[0].targetRepo: \"invalid:@tag\" is not a repository path"), "{e}");
                } else {
                    panic!("oc-mirror's {name} does not parse: {e}");
                }
            }
        }
    }
    assert_eq!(v1, 5);
    assert_eq!(parsed, files.len() - v1 - 2);
    assert!(pullable >= 5, "{pullable}");
}
