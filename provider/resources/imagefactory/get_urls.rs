//! `imagefactory:getUrls`: the download and installer URLs of a schematic for a
//! Talos version and platform, built from the configured factory base URL (no
//! request is made).

use serde::{Deserialize, Serialize};

use crate::framework::{CheckFailure, Context, Function, ResourceError};
use crate::schema::PulumiType;
use crate::talos::secrets::VersionContract;

/// Arguments of `getUrls`.
#[derive(Debug, Clone, Deserialize, PulumiType)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct GetUrlsArgs {
    /// Schematic ID (64 hex characters) from `imagefactory.Schematic`.
    pub schematic_id: String,
    /// Talos version, e.g. `v1.12.4`.
    pub talos_version: String,
    /// CPU architecture: `amd64` (default) or `arm64`.
    pub architecture: Option<String>,
    /// Platform, e.g. `nocloud` or `metal`. Leave empty for a single-board computer (`sbc`).
    pub platform: Option<String>,
    /// Single-board computer name (e.g. `rpi_generic`); implies the `metal` images.
    pub sbc: Option<String>,
}

/// Result of `getUrls`.
#[derive(Debug, Clone, Serialize, PulumiType)]
#[serde(rename_all = "camelCase")]
pub struct GetUrlsResult {
    /// The schematic ID asked for.
    pub schematic_id: String,
    /// The Talos version asked for.
    pub talos_version: String,
    /// The architecture used.
    pub architecture: String,
    /// The platform used (`metal` for an SBC).
    pub platform: String,
    /// The URLs.
    pub urls: Urls,
}

/// Image and installer URLs.
#[derive(Debug, Clone, Serialize, PulumiType)]
#[serde(rename_all = "camelCase")]
#[pulumi(token = "imagefactory:Urls")]
pub struct Urls {
    /// Raw disk image compressed with xz (`.raw.xz`), as pulumi-talos gives it. Not for
    /// `download:File`: Proxmox VE cannot decompress xz. Use `diskImageQcow2` or
    /// `diskImageRaw` there.
    pub disk_image: String,
    /// Raw disk image with secure boot (`.raw.xz`; not for `download:File`, see `diskImage`).
    pub disk_image_secureboot: String,
    /// The disk image as qcow2 (`.qcow2`): for `download:File` with `contentType: import`,
    /// then `disks[].importFrom`. PVE imports it as is.
    pub disk_image_qcow2: String,
    /// The uncompressed raw disk image (`.raw`): for `download:File` with `contentType: import`
    /// (PVE does not decompress `import` content), when the factory serves uncompressed images
    /// (the lab's does).
    pub disk_image_raw: String,
    /// The raw disk image compressed with zstd (`.raw.zst`): for `download:File` with
    /// `decompressionAlgorithm: zst`, which PVE allows for `contentType: iso` only.
    pub disk_image_raw_zst: String,
    /// Initramfs.
    pub initramfs: String,
    /// Installer container image (`<host>/<platform>-installer/<id>:<version>`).
    pub installer: String,
    /// Secure-boot installer container image.
    pub installer_secureboot: String,
    /// Boot ISO.
    pub iso: String,
    /// Secure-boot ISO.
    pub iso_secureboot: String,
    /// Kernel.
    pub kernel: String,
    /// Kernel command line.
    pub kernel_command_line: String,
    /// iPXE script.
    pub pxe: String,
    /// Unified kernel image (secure boot).
    pub uki: String,
}

/// The `getUrls` function.
pub struct GetUrls;

impl Function for GetUrls {
    const TOKEN: &'static str = "proxmox-talos:imagefactory:getUrls";
    type Args = GetUrlsArgs;
    type Result = GetUrlsResult;

    fn check(&self, _ctx: &Context, args: &GetUrlsArgs) -> Vec<CheckFailure> {
        let mut f = Vec::new();
        if args.schematic_id.len() != 64 || !args.schematic_id.chars().all(|c| c.is_ascii_hexdigit()) {
            f.push(CheckFailure::new("schematicId", "expected the 64 hexadecimal characters of a schematic ID"));
        }
        if VersionContract::parse(&args.talos_version).is_err() || !args.talos_version.starts_with('v') {
            f.push(CheckFailure::new(
                "talosVersion",
                format!("{:?} is not a Talos version; expected e.g. v1.12.4", args.talos_version),
            ));
        }
        if let Some(a) = &args.architecture {
            if a != "amd64" && a != "arm64" {
                f.push(CheckFailure::new("architecture", format!("{a:?} is not supported; expected amd64 or arm64")));
            }
        }
        if args.platform.as_deref().is_some_and(|p| !p.is_empty()) && args.sbc.as_deref().is_some_and(|s| !s.is_empty())
        {
            f.push(CheckFailure::new("sbc", "set either platform or sbc, not both"));
        }
        f
    }

    async fn invoke(&self, ctx: &Context, args: GetUrlsArgs) -> Result<GetUrlsResult, ResourceError> {
        let base = ctx.config().image_factory_url();
        Ok(build(&base, args))
    }
}

/// The URLs for `args` under the factory at `base` (no trailing slash).
pub fn build(base: &str, args: GetUrlsArgs) -> GetUrlsResult {
    let arch = args.architecture.filter(|a| !a.is_empty()).unwrap_or_else(|| "amd64".to_string());
    let platform = args.platform.filter(|p| !p.is_empty()).unwrap_or_else(|| "metal".to_string());
    let (id, ver) = (&args.schematic_id, &args.talos_version);
    let image = |file: String| format!("{base}/image/{id}/{ver}/{file}");
    let host = base.split_once("://").map_or(base, |(_, h)| h);
    // The public factory serves iPXE from its own host; any other factory under /pxe.
    let pxe_base = match base.split_once("://") {
        Some((scheme, "factory.talos.dev")) => format!("{scheme}://pxe.factory.talos.dev"),
        _ => base.to_string(),
    };
    let urls = Urls {
        disk_image: image(format!("{platform}-{arch}.raw.xz")),
        disk_image_secureboot: image(format!("{platform}-{arch}-secureboot.raw.xz")),
        disk_image_qcow2: image(format!("{platform}-{arch}.qcow2")),
        disk_image_raw: image(format!("{platform}-{arch}.raw")),
        disk_image_raw_zst: image(format!("{platform}-{arch}.raw.zst")),
        initramfs: image(format!("initramfs-{arch}.xz")),
        installer: format!("{host}/{platform}-installer/{id}:{ver}"),
        installer_secureboot: format!("{host}/{platform}-installer-secureboot/{id}:{ver}"),
        iso: image(format!("{platform}-{arch}.iso")),
        iso_secureboot: image(format!("{platform}-{arch}-secureboot.iso")),
        kernel: image(format!("kernel-{arch}")),
        kernel_command_line: image(format!("cmdline-{platform}-{arch}")),
        pxe: format!("{pxe_base}/pxe/{id}/{ver}/{platform}-{arch}"),
        uki: image(format!("{platform}-{arch}-secureboot-uki.efi")),
    };
    GetUrlsResult { schematic_id: id.clone(), talos_version: ver.clone(), architecture: arch, platform, urls }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ID: &str = "376567988ad370138ad8b2698212367b8edcb69b5fd68c80be1f2ec7d603b4ba";

    #[test]
    fn nocloud_urls_on_the_public_factory() {
        let r = build(
            "https://factory.talos.dev",
            GetUrlsArgs {
                schematic_id: ID.into(),
                talos_version: "v1.12.4".into(),
                architecture: None,
                platform: Some("nocloud".into()),
                sbc: None,
            },
        );
        assert_eq!(r.urls.disk_image, format!("https://factory.talos.dev/image/{ID}/v1.12.4/nocloud-amd64.raw.xz"));
        assert_eq!(r.urls.installer, format!("factory.talos.dev/nocloud-installer/{ID}:v1.12.4"));
        assert_eq!(r.urls.pxe, format!("https://pxe.factory.talos.dev/pxe/{ID}/v1.12.4/nocloud-amd64"));
        assert_eq!(r.urls.iso, format!("https://factory.talos.dev/image/{ID}/v1.12.4/nocloud-amd64.iso"));
        let base = format!("https://factory.talos.dev/image/{ID}/v1.12.4/nocloud-amd64");
        assert_eq!(r.urls.disk_image_qcow2, format!("{base}.qcow2"));
        assert_eq!(r.urls.disk_image_raw, format!("{base}.raw"));
        assert_eq!(r.urls.disk_image_raw_zst, format!("{base}.raw.zst"));
    }

    #[test]
    fn an_sbc_uses_metal_images_and_a_lab_factory_serves_pxe_itself() {
        let r = build(
            "https://127.0.0.1:8443",
            GetUrlsArgs {
                schematic_id: ID.into(),
                talos_version: "v1.12.4".into(),
                architecture: Some("arm64".into()),
                platform: None,
                sbc: Some("rpi_generic".into()),
            },
        );
        assert_eq!(r.platform, "metal");
        assert_eq!(r.urls.disk_image, format!("https://127.0.0.1:8443/image/{ID}/v1.12.4/metal-arm64.raw.xz"));
        assert_eq!(r.urls.pxe, format!("https://127.0.0.1:8443/pxe/{ID}/v1.12.4/metal-arm64"));
        assert_eq!(r.urls.installer, format!("127.0.0.1:8443/metal-installer/{ID}:v1.12.4"));
    }
}
