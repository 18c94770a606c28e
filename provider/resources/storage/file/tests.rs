//! Tests of `storage:File` without a storage: content types inferred from file
//! names, Check's failures naming their property, source files' names and
//! checksums, ids, dates, sizes and the state preview predicts.

use std::path::Path;
use std::time::Duration;

use super::upload::size_text;
use super::*;

fn raw(name: &str) -> FileArgs {
    FileArgs {
        node_name: "pve".into(),
        datastore_id: "local".into(),
        content_type: None,
        source_raw: Some(FileSourceRaw { data: "#cloud-config\n".into(), file_name: name.into() }),
        source_file: None,
        overwrite: None,
        timeout_upload: None,
    }
}

fn from_file(path: &Path) -> FileArgs {
    FileArgs {
        source_raw: None,
        source_file: Some(FileSourceFile { path: path.display().to_string(), file_name: None, checksum: None }),
        ..raw("x")
    }
}

fn paths(r: Result<FileArgs, Vec<CheckFailure>>) -> Vec<String> {
    r.err().unwrap_or_default().into_iter().map(|f| f.property).collect()
}

#[test]
fn content_types_are_inferred_from_file_names() {
    for (name, want) in [
        ("user-data.yaml", Some("snippets")),
        ("net.YML", Some("snippets")),
        ("meta.json", Some("snippets")),
        ("hook.sh", Some("snippets")),
        ("x.cfg", Some("snippets")),
        ("notes.txt", Some("snippets")),
        ("talos.iso", Some("iso")),
        ("noble.img", Some("iso")),
        ("debian.tar.zst", Some("vztmpl")),
        ("alpine.tar.xz", Some("vztmpl")),
        ("ct.tar.gz", Some("vztmpl")),
        ("disk.qcow2", Some("import")),
        ("disk.raw", Some("import")),
        ("disk.vmdk", Some("import")),
        ("vm.ova", Some("import")),
        ("blob.bin", None),
        (".yaml", None),
    ] {
        assert_eq!(infer_content_type(name), want, "{name}");
    }
    let checked = check_args(raw("user-data.yaml")).unwrap();
    assert_eq!(checked.content_type.as_deref(), Some("snippets"));
    let plan = Plan::of(&checked).unwrap();
    assert_eq!((plan.volid.as_str(), plan.route), ("local:snippets/user-data.yaml", Route::Sftp("snippets")));
    let iso = Plan::of(&FileArgs { content_type: Some("iso".into()), ..raw("a.iso") }).unwrap();
    assert_eq!(iso.route, Route::Upload);
    assert_eq!(route("backup"), Route::Sftp("dump"));
}

#[test]
fn bad_inputs_name_their_property() {
    let both = FileArgs {
        source_file: Some(FileSourceFile { path: "/etc/hostname".into(), file_name: None, checksum: None }),
        ..raw("a.yaml")
    };
    assert_eq!(paths(check_args(both)), ["sourceFile"]);
    assert_eq!(paths(check_args(FileArgs { source_raw: None, ..raw("a.yaml") })), ["sourceRaw"]);
    assert_eq!(paths(check_args(raw(""))), ["sourceRaw.fileName"]);
    assert_eq!(paths(check_args(raw("a/b.yaml"))), ["sourceRaw.fileName"]);
    assert_eq!(paths(check_args(raw(".hidden.yaml"))), ["sourceRaw.fileName"]);
    let unknown = check_args(raw("blob.bin")).unwrap_err();
    assert_eq!(unknown[0].property, "contentType");
    assert!(unknown[0].reason.contains("set `contentType`") && unknown[0].reason.contains("snippets"));
    assert!(check_args(FileArgs { content_type: Some("snippets".into()), ..raw("blob.bin") }).is_ok());
    assert_eq!(paths(check_args(FileArgs { content_type: Some("images".into()), ..raw("a.yaml") })), ["contentType"]);
    let iso_name = check_args(FileArgs { content_type: Some("iso".into()), ..raw("a.yaml") }).unwrap_err();
    assert_eq!(iso_name[0].property, "sourceRaw.fileName");
    assert!(iso_name[0].reason.contains(".iso or .img"), "{}", iso_name[0].reason);
    assert_eq!(
        paths(check_args(FileArgs { content_type: Some("import".into()), ..raw("a.QCOW2") })),
        ["sourceRaw.fileName"]
    );
    assert!(check_args(FileArgs { content_type: Some("backup".into()), ..raw("vzdump-qemu-100.vma.zst") }).is_ok());
    assert_eq!(paths(check_args(FileArgs { timeout_upload: Some(0), ..raw("a.yaml") })), ["timeoutUpload"]);
    assert_eq!(paths(check_args(FileArgs { node_name: " ".into(), ..raw("a.yaml") })), ["nodeName"]);
    let missing = check_args(from_file(Path::new("/nonexistent/dir/talos.iso"))).unwrap_err();
    assert_eq!(missing[0].property, "sourceFile.path");
    assert!(missing[0].reason.contains("cannot be read"), "{}", missing[0].reason);
    assert_eq!(paths(check_args(from_file(Path::new("/")))), ["sourceFile.path", "sourceFile.fileName"]);
}

#[test]
fn source_files_get_a_name_and_a_verified_checksum() {
    let dir = std::env::temp_dir().join(format!("pt-storage-file-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("talos.iso");
    std::fs::write(&path, b"hello").unwrap();
    let sum = "2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824";

    let checked = check_args(from_file(&path)).unwrap();
    let src = checked.source_file.as_ref().unwrap();
    assert_eq!((src.file_name.as_deref(), src.checksum.as_deref()), (Some("talos.iso"), Some(sum)));
    assert_eq!(checked.content_type.as_deref(), Some("iso"));
    assert_eq!(source_digest(&checked).unwrap(), (sum.to_string(), 5));

    let mut given = from_file(&path);
    given.source_file.as_mut().unwrap().checksum = Some(sum.to_uppercase());
    assert_eq!(check_args(given).unwrap().source_file.unwrap().checksum.as_deref(), Some(sum));
    let mut wrong = from_file(&path);
    wrong.source_file.as_mut().unwrap().checksum = Some("0".repeat(64));
    let e = check_args(wrong).unwrap_err();
    assert_eq!(e[0].property, "sourceFile.checksum");
    assert!(e[0].reason.contains(sum), "{}", e[0].reason);
    let mut not_hex = from_file(&path);
    not_hex.source_file.as_mut().unwrap().checksum = Some("xyz".into());
    assert_eq!(paths(check_args(not_hex)), ["sourceFile.checksum"]);

    // An edited file gets a new checksum: the diff shows it.
    std::thread::sleep(Duration::from_millis(10));
    std::fs::write(&path, b"hello, world").unwrap();
    let again = check_args(from_file(&path)).unwrap();
    assert_ne!(again.source_file.unwrap().checksum.as_deref(), Some(sum));
    let mut renamed = from_file(&path);
    renamed.source_file.as_mut().unwrap().file_name = Some("other.bin".into());
    assert_eq!(paths(check_args(renamed)), ["contentType"]);
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn ids_dates_and_predictions() {
    let snippet = parse_id("pve/local:snippets/user-data.yaml").unwrap();
    assert_eq!(
        (snippet.node.as_str(), snippet.storage.as_str(), snippet.content.as_str(), snippet.file.as_str()),
        ("pve", "local", "snippets", "user-data.yaml")
    );
    assert_eq!(parse_id("pve/local:snippets/a/b.yaml"), None);
    assert_eq!(parse_id("/local:snippets/a.yaml"), None);
    assert_eq!(parse_id("pve/local:snippets/"), None);
    assert_eq!(parse_id("nonsense"), None);
    assert_eq!(rfc3339(0).as_deref(), Some("1970-01-01T00:00:00Z"));
    assert_eq!(rfc3339(1_767_225_600).as_deref(), Some("2026-01-01T00:00:00Z"));
    assert_eq!(
        (size_text(812), size_text(3500), size_text(3 << 20)),
        ("812 B".into(), "3.4 KiB".into(), "3.0 MiB".into())
    );

    let checked = check_args(raw("user-data.yaml")).unwrap();
    let p = predicted(checked.clone(), None).unwrap();
    assert_eq!(p.volume_id.as_deref(), Some("local:snippets/user-data.yaml"));
    assert_eq!(p.content_sha256, Some(sha256_hex(b"#cloud-config\n")));
    assert_eq!((p.file_size, p.file_modification_date.as_deref()), (Some(14), None));
    let old = FileState { file_modification_date: Some("2026-01-01T00:00:00Z".into()), ..p.clone() };
    let same = predicted(checked, Some(&old)).unwrap();
    assert_eq!(same.file_modification_date, old.file_modification_date);
}
