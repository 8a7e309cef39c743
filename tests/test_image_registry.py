"""RegistrySource against a real docker-registry (anonymous and htpasswd) and a tiny server
for the failures a real registry will not produce (500, closed connections, Bearer tokens)."""

from __future__ import annotations

import base64
import hashlib
import json
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from imagescan.errors import ImageReadError, PlatformError, ReferenceError_, RegistryError
from imagescan.image.model import Platform, SourceKind, SourceOptions
from imagescan.image.platform import host_platform
from imagescan.image.registry import RegistrySource, parse_challenge, pull_scope
from tests import services
from tests.image_support import member_names, read_all_layers
from tests.imagebuilder import (
    File,
    ImageSpec,
    write_multiplatform_oci_dir,
    write_oci_dir,
)
from tests.services import RegistryService, TinyRegistry, TokenRegistryService, free_port

# The service fixtures live in tests/services.py (session scope: one registry per run).
registry = services.registry
auth_registry = services.auth_registry
token_registry = services.token_registry
tls_registry = services.tls_registry

PLAIN = SourceOptions(plain_http=True)
SPEC = ImageSpec(
    layers=[[File("/etc/base.txt", b"base")], [File("/usr/bin/tool", b"\x7fELF" + b"x" * 5000)]],
    env=["PATH=/usr/bin", "LD_LIBRARY_PATH=/opt/lib"],
    entrypoint=["/usr/bin/tool"],
    cmd=["--help"],
    user="1000",
    working_dir="/work",
)


@dataclass(frozen=True)
class Pushed:
    layout: Path
    single: str
    multi: str


def _skopeo_digest(ref: str, creds: tuple[str, str] | None = None) -> str:
    command = ["skopeo", "inspect", "--tls-verify=false", "--raw"]
    if creds:
        command.append(f"--creds={creds[0]}:{creds[1]}")
    raw = subprocess.run([*command, f"docker://{ref}"], check=True, capture_output=True).stdout
    return "sha256:" + hashlib.sha256(raw).hexdigest()


@pytest.fixture(scope="module")
def pushed(registry: RegistryService, tmp_path_factory: pytest.TempPathFactory) -> Pushed:
    root = tmp_path_factory.mktemp("push")
    layout = write_oci_dir(root / "single", {"v1": SPEC})
    amd = ImageSpec(layers=[[File("/amd64.txt")]], architecture="amd64")
    arm = ImageSpec(layers=[[File("/arm64.txt")]], architecture="arm64", variant="v8")
    arm7 = ImageSpec(layers=[[File("/arm7.txt")]], architecture="arm", variant="v7")
    arm6 = ImageSpec(layers=[[File("/arm6.txt")]], architecture="arm", variant="v6")
    multi = write_multiplatform_oci_dir(
        root / "multi", {"a": amd, "b": arm, "c": arm7, "d": arm6}, tag="latest"
    )
    return Pushed(
        layout=layout,
        single=registry.push(f"oci:{layout}:v1", "team/app:v1"),
        multi=registry.push(f"oci:{multi}:latest", "team/multi:latest", all_platforms=True),
    )


# ------------------------------------------------------------------ pure parts


def test_bearer_challenge_is_parsed() -> None:
    header = (
        'Bearer realm="https://auth.docker.io/token",service="registry.docker.io",'
        'scope="repository:library/ubuntu:pull",error="insufficient_scope"'
    )
    challenge = parse_challenge(header)
    assert challenge is not None
    assert challenge.scheme == "bearer"
    assert challenge.params["realm"] == "https://auth.docker.io/token"
    assert challenge.params["scope"] == "repository:library/ubuntu:pull"
    assert parse_challenge('Basic realm="x \\"y\\""') == parse_challenge('basic realm="x \\"y\\""')
    basic = parse_challenge('Basic realm="x \\"y\\""')
    assert basic is not None and basic.params == {"realm": 'x "y"'}
    assert parse_challenge("") is None
    assert pull_scope("team/app") == "repository:team/app:pull"


# ------------------------------------------------------------------ docker-registry


@pytest.mark.registry
def test_single_image_config_layers_and_digest(pushed: Pushed) -> None:
    image = RegistrySource().open(pushed.single, PLAIN)
    try:
        assert image.kind is SourceKind.REGISTRY
        assert image.reference == pushed.single
        assert image.config.env == ("PATH=/usr/bin", "LD_LIBRARY_PATH=/opt/lib")
        assert image.config.entrypoint == ("/usr/bin/tool",)
        assert image.config.cmd == ("--help",)
        assert (image.config.user, image.config.working_dir) == ("1000", "/work")
        assert len(image.layers) == 2
        assert [layer.diff_id for layer in image.layers] == list(image.config.diff_ids)
        assert image.manifest_digest == _skopeo_digest(pushed.single)
        assert read_all_layers(image) == [
            ["etc/base.txt"],
            ["usr/bin/tool"],
        ]
    finally:
        image.close()


@pytest.mark.registry
def test_digest_pinned_reference(pushed: Pushed) -> None:
    digest = _skopeo_digest(pushed.single)
    repo = pushed.single.rsplit(":", 1)[0]
    image = RegistrySource().open(f"{repo}@{digest}", PLAIN)
    try:
        assert image.manifest_digest == digest
        assert image.config.entrypoint == ("/usr/bin/tool",)
    finally:
        image.close()


@pytest.mark.registry
def test_layers_open_in_any_order(pushed: Pushed) -> None:
    image = RegistrySource().open(pushed.single, PLAIN)
    try:
        assert image.access is not None and image.access.random_access
        assert member_names(image.access.open_layer(1))[-1] == "usr/bin/tool"
        assert member_names(image.access.open_layer(0))[-1] == "etc/base.txt"
    finally:
        image.close()


@pytest.mark.registry
@pytest.mark.parametrize(
    ("platform", "marker"),
    [
        (None, "amd64.txt"),  # the host here is linux/amd64
        (Platform("linux", "arm64"), "arm64.txt"),
        (Platform("linux", "arm64", "v8"), "arm64.txt"),
        (Platform("linux", "arm", "v6"), "arm6.txt"),
    ],
)
def test_multi_platform_index_choice(
    pushed: Pushed, platform: Platform | None, marker: str
) -> None:
    if platform is None and host_platform() != Platform("linux", "amd64"):
        pytest.skip("the default-platform case assumes an amd64 host")
    image = RegistrySource().open(pushed.multi, SourceOptions(plain_http=True, platform=platform))
    try:
        assert read_all_layers(image) == [[marker]]
        assert image.manifest_digest is not None
        assert image.manifest_digest != _skopeo_digest(
            pushed.multi
        )  # the platform's, not the index's
    finally:
        image.close()


@pytest.mark.registry
def test_platform_missing_lists_choices(pushed: Pushed) -> None:
    options = SourceOptions(plain_http=True, platform=Platform("linux", "s390x"))
    with pytest.raises(PlatformError) as info:
        RegistrySource().open(pushed.multi, options)
    assert info.value.message == (
        f"{pushed.multi} has no image for platform linux/s390x; available: "
        "linux/amd64, linux/arm/v6, linux/arm/v7, linux/arm64/v8 (choose one with --platform)"
    )


@pytest.mark.registry
def test_single_image_of_another_platform_is_refused(pushed: Pushed) -> None:
    options = SourceOptions(plain_http=True, platform=Platform("linux", "arm64"))
    with pytest.raises(PlatformError, match="is an image for linux/amd64, not for the requested"):
        RegistrySource().open(pushed.single, options)


@pytest.mark.registry
def test_unknown_tag_and_repository(registry: RegistryService, pushed: Pushed) -> None:
    missing_tag = pushed.single.rsplit(":", 1)[0] + ":nope"
    with pytest.raises(RegistryError) as info:
        RegistrySource().open(missing_tag, PLAIN)
    assert info.value.message == (
        f"manifest unknown: {missing_tag} not found in registry {registry.host}"
    )
    # docker-registry says MANIFEST_UNKNOWN for an unknown repository too.
    with pytest.raises(RegistryError, match=r"manifest unknown: \S+/no/such:v1 not found"):
        RegistrySource().open(f"{registry.host}/no/such:v1", PLAIN)


@pytest.mark.registry
def test_https_to_a_plain_http_registry_hints_plain_http(pushed: Pushed) -> None:
    with pytest.raises(RegistryError) as info:
        RegistrySource().open(pushed.single, SourceOptions())
    assert "TLS handshake failed (use --plain-http" in info.value.message
    assert pushed.single in info.value.message


@pytest.mark.registry
def test_corrupt_blob_in_storage_fails_the_digest_check(
    registry: RegistryService, tmp_path: Path
) -> None:
    layout = write_oci_dir(tmp_path / "img", {"v1": ImageSpec(layers=[[File("/x", b"1" * 999)]])})
    ref = registry.push(f"oci:{layout}:v1", "team/corrupt:v1")
    image = RegistrySource().open(ref, PLAIN)
    try:
        digest = image.layers[0].digest
        hexdigest = digest.partition(":")[2]
        stored = registry.root / "data/docker/registry/v2/blobs/sha256" / hexdigest[:2] / hexdigest
        data = bytearray((stored / "data").read_bytes())
        data[-1] ^= 0xFF  # same size, different bytes
        (stored / "data").write_bytes(bytes(data))
        assert image.access is not None
        stream = image.access.open_layer(0)
        with pytest.raises(ImageReadError, match="digest mismatch"):
            stream.read()
    finally:
        image.close()


@pytest.mark.registry
def test_bad_reference_is_a_reference_error() -> None:
    with pytest.raises(ReferenceError_):
        RegistrySource().open("127.0.0.1:5000/Team/App", PLAIN)


# ------------------------------------------------------------------ htpasswd registry


def _docker_config(tmp_path: Path, host: str, user: str, password: str) -> str:
    auth = base64.b64encode(f"{user}:{password}".encode()).decode()
    path = tmp_path / "docker-config"
    path.mkdir()
    (path / "config.json").write_text(json.dumps({"auths": {host: {"auth": auth}}}))
    return str(path)


@pytest.fixture(scope="module")
def private_ref(auth_registry: RegistryService, pushed: Pushed) -> str:
    return auth_registry.push(f"oci:{pushed.layout}:v1", "private/app:v1")


@pytest.mark.registry
def test_basic_auth_with_config_credentials(
    auth_registry: RegistryService, private_ref: str, tmp_path: Path
) -> None:
    assert auth_registry.credentials is not None
    config = _docker_config(tmp_path, auth_registry.host, *auth_registry.credentials)
    image = RegistrySource().open(private_ref, SourceOptions(plain_http=True, docker_config=config))
    try:
        assert len(read_all_layers(image)) == 2
    finally:
        image.close()


@pytest.mark.registry
def test_basic_auth_without_credentials(
    auth_registry: RegistryService, private_ref: str, tmp_path: Path
) -> None:
    options = SourceOptions(plain_http=True, docker_config=str(tmp_path / "none"))
    with pytest.raises(RegistryError) as info:
        RegistrySource().open(private_ref, options)
    message = info.value.message
    assert message.startswith(
        f"authentication required for repository private/app ({private_ref}) "
        f"by registry {auth_registry.host}: no credentials for {auth_registry.host}"
    )
    assert "docker login" in message


@pytest.mark.registry
def test_basic_auth_wrong_password(
    auth_registry: RegistryService, private_ref: str, tmp_path: Path
) -> None:
    config = _docker_config(tmp_path, auth_registry.host, "scanner", "wrong-password")
    options = SourceOptions(plain_http=True, docker_config=config)
    with pytest.raises(RegistryError) as info:
        RegistrySource().open(private_ref, options)
    assert info.value.message.startswith(
        f"registry {auth_registry.host} refused the credentials for repository private/app "
        f"({private_ref}); they came from {config}/config.json"
    )
    assert "wrong-password" not in info.value.message


# ------------------------------------------------------------------ tiny server


@pytest.fixture(scope="module")
def layout(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_oci_dir(tmp_path_factory.mktemp("tiny") / "layout", {"v1": SPEC})


@pytest.fixture
def tiny_token(layout: Path) -> Iterator[TinyRegistry]:
    with TinyRegistry(layout, "token", credentials=("robot", "pw")) as tiny:
        yield tiny


def test_bearer_token_flow_with_basic_credentials(tiny_token: TinyRegistry, tmp_path: Path) -> None:
    config = _docker_config(tmp_path, tiny_token.host, "robot", "pw")
    options = SourceOptions(plain_http=True, docker_config=config)
    image = RegistrySource().open(f"{tiny_token.host}/team/app:v1", options)
    try:
        assert read_all_layers(image)[1][-1] == "usr/bin/tool"
    finally:
        image.close()
    token_requests = [r for r in tiny_token.requests if r.startswith("GET /token")]
    assert len(token_requests) == 1
    assert "scope=repository%3Ateam%2Fapp%3Apull" in token_requests[0]
    assert "service=tiny" in token_requests[0]


def test_bearer_token_from_an_identity_token(tiny_token: TinyRegistry, tmp_path: Path) -> None:
    path = tmp_path / "cfg"
    path.mkdir()
    entry = {"identitytoken": tiny_token.identity_token}
    (path / "config.json").write_text(json.dumps({"auths": {tiny_token.host: entry}}))
    options = SourceOptions(plain_http=True, docker_config=str(path))
    image = RegistrySource().open(f"{tiny_token.host}/team/app:v1", options)
    image.close()
    assert image.config.entrypoint == ("/usr/bin/tool",)
    posts = [r for r in tiny_token.requests if r.startswith("POST /token")]
    assert posts == ["POST /token ['client_id', 'grant_type', 'refresh_token', 'scope', 'service']"]


def test_bearer_token_anonymous_refused(tiny_token: TinyRegistry, tmp_path: Path) -> None:
    options = SourceOptions(plain_http=True, docker_config=str(tmp_path))
    with pytest.raises(RegistryError) as info:
        RegistrySource().open(f"{tiny_token.host}/team/app:v1", options)
    assert info.value.message.startswith(
        f"authentication required for repository team/app ({tiny_token.host}/team/app:v1) "
        f"by registry {tiny_token.host}: no credentials"
    )


def test_bearer_token_refused(tiny_token: TinyRegistry, tmp_path: Path) -> None:
    config = _docker_config(tmp_path, tiny_token.host, "robot", "bad")
    options = SourceOptions(plain_http=True, docker_config=config)
    with pytest.raises(RegistryError) as info:
        RegistrySource().open(f"{tiny_token.host}/team/app:v1", options)
    assert info.value.message.startswith(
        f"registry {tiny_token.host} refused the credentials for repository team/app "
        f"({tiny_token.host}/team/app:v1); they came from {config}/config.json"
    )


def test_http_500_is_named(layout: Path) -> None:
    with TinyRegistry(layout, "status:500") as tiny:
        ref = f"{tiny.host}/team/app:v1"
        with pytest.raises(RegistryError) as info:
            RegistrySource().open(ref, PLAIN)
    assert info.value.message == (
        f"registry {tiny.host} failed with HTTP 500 Internal Server Error fetching /v2/ of {ref} "
        "(UNKNOWN)"
    )


def test_rate_limiting_is_named(layout: Path) -> None:
    with TinyRegistry(layout, "status:429") as tiny:
        ref = f"{tiny.host}/team/app:v1"
        with pytest.raises(RegistryError) as info:
            RegistrySource().open(ref, PLAIN)
    assert info.value.message == f"registry {tiny.host} is rate limiting us (HTTP 429) for {ref}"


def test_blob_redirect_to_storage_gets_no_registry_token(
    layout: Path, tiny_token: TinyRegistry, tmp_path: Path
) -> None:
    config = _docker_config(tmp_path, tiny_token.host, "robot", "pw")
    with TinyRegistry(layout) as storage:
        tiny_token.blob_redirect = f"http://{storage.host}"
        options = SourceOptions(plain_http=True, docker_config=config)
        image = RegistrySource().open(f"{tiny_token.host}/team/app:v1", options)
        try:
            assert read_all_layers(image) == [["etc/base.txt"], ["usr/bin/tool"]]
        finally:
            image.close()
    # config + 2 layers came from storage, and the Bearer token never went there.
    assert len(storage.requests) == 3
    assert storage.authorizations == [None, None, None]


def test_connection_closed_without_answer(layout: Path) -> None:
    with TinyRegistry(layout, "close") as tiny:
        ref = f"{tiny.host}/team/app:v1"
        with pytest.raises(RegistryError) as info:
            RegistrySource().open(ref, PLAIN)
    assert info.value.message == (
        f"cannot read {ref} from registry {tiny.host}: the registry closed the connection "
        "(fetching /v2/)"
    )


def test_connection_closed_inside_a_layer(layout: Path) -> None:
    with TinyRegistry(layout, "truncate-blobs") as tiny:
        ref = f"{tiny.host}/team/app:v1"
        with pytest.raises(RegistryError) as info:
            RegistrySource().open(ref, PLAIN)  # the config blob is cut short
    assert "the connection closed before the end of the data" in info.value.message
    assert ref in info.value.message


def test_connection_refused() -> None:
    host = f"127.0.0.1:{free_port()}"
    with pytest.raises(RegistryError) as info:
        RegistrySource().open(f"{host}/team/app:v1", PLAIN)
    assert info.value.message == (
        f"cannot read {host}/team/app:v1 from registry {host}: connection refused (fetching /v2/)"
    )


def test_non_distributable_layer_missing_from_registry(layout: Path) -> None:
    index = json.loads((layout / "index.json").read_text())
    manifest = json.loads(
        (layout / "blobs/sha256" / index["manifests"][0]["digest"][7:]).read_bytes()
    )
    manifest["layers"][0] = {
        "mediaType": "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip",
        "digest": "sha256:" + "f" * 64,
        "size": 100,
        "urls": ["https://mcr.example/base.tar.gz"],
    }
    body = json.dumps(manifest).encode()
    override = {"foreign": ("application/vnd.oci.image.manifest.v1+json", body)}
    with TinyRegistry(layout, manifest_overrides=override) as tiny:
        ref = f"{tiny.host}/team/app:foreign"
        with pytest.raises(RegistryError) as info:
            RegistrySource().open(ref, PLAIN)
    assert info.value.message == (
        f"layer 0 of {ref} is non-distributable and not in registry {tiny.host} "
        "(it lives at https://mcr.example/base.tar.gz); "
        "imagescan reads blobs only from the registry"
    )


def test_manifest_digest_mismatch_for_a_pinned_reference(layout: Path) -> None:
    wrong = "sha256:" + "0" * 64
    index = json.loads((layout / "index.json").read_text())
    body = (layout / "blobs/sha256" / index["manifests"][0]["digest"][7:]).read_bytes()
    override = {wrong: ("application/vnd.oci.image.manifest.v1+json", body)}
    with (
        TinyRegistry(layout, manifest_overrides=override) as tiny,
        pytest.raises(ImageReadError, match="digest mismatch"),
    ):
        RegistrySource().open(f"{tiny.host}/team/app@{wrong}", PLAIN)


def test_schema1_manifest_is_refused_clearly(layout: Path) -> None:
    body = json.dumps({"schemaVersion": 1, "name": "team/app", "fsLayers": []}).encode()
    override = {"old": ("application/vnd.docker.distribution.manifest.v1+prettyjws", body)}
    with (
        TinyRegistry(layout, manifest_overrides=override) as tiny,
        pytest.raises(ImageReadError, match="schema 1 manifest"),
    ):
        RegistrySource().open(f"{tiny.host}/team/app:old", PLAIN)


# ------------------------------------------------------------------ token-auth docker-registry


@pytest.mark.registry
def test_bearer_flow_against_docker_registry_token_auth(
    token_registry: TokenRegistryService, pushed: Pushed, tmp_path: Path
) -> None:
    ref = token_registry.push(f"oci:{pushed.layout}:v1", "private/tokened:v1")
    assert token_registry.credentials is not None
    config = _docker_config(tmp_path, token_registry.host, *token_registry.credentials)
    token_registry.issuer_requests.clear()
    image = RegistrySource().open(ref, SourceOptions(plain_http=True, docker_config=config))
    try:
        assert read_all_layers(image) == [["etc/base.txt"], ["usr/bin/tool"]]
    finally:
        image.close()
    assert token_registry.issuer_requests == [
        "GET [('scope', ['repository:private/tokened:pull']), ('service', ['imagescan-registry'])]"
    ]


@pytest.mark.registry
def test_docker_registry_token_auth_without_credentials(
    token_registry: TokenRegistryService, pushed: Pushed, tmp_path: Path
) -> None:
    ref = token_registry.push(f"oci:{pushed.layout}:v1", "private/tokened:v1")
    options = SourceOptions(plain_http=True, docker_config=str(tmp_path))
    with pytest.raises(
        RegistryError, match="authentication required for repository private/tokened"
    ):
        RegistrySource().open(ref, options)


# ------------------------------------------------------------------ HTTPS registry


@pytest.fixture(scope="module")
def tls_ref(tls_registry: RegistryService, pushed: Pushed) -> str:
    return tls_registry.push(f"oci:{pushed.layout}:v1", "secure/app:v1")


@pytest.mark.registry
def test_https_with_an_untrusted_certificate(tls_ref: str, tls_registry: RegistryService) -> None:
    with pytest.raises(RegistryError) as info:
        RegistrySource().open(tls_ref, SourceOptions())
    assert info.value.message == (
        f"cannot read {tls_ref} from registry {tls_registry.host}: its TLS certificate is not "
        "trusted (--insecure-skip-tls-verify skips the check) (fetching /v2/)"
    )


@pytest.mark.registry
def test_https_insecure_skip_tls_verify(tls_ref: str, recwarn: pytest.WarningsRecorder) -> None:
    image = RegistrySource().open(tls_ref, SourceOptions(insecure_skip_tls_verify=True))
    try:
        assert read_all_layers(image) == [["etc/base.txt"], ["usr/bin/tool"]]
    finally:
        image.close()
    assert not [w for w in recwarn if "Unverified HTTPS" in str(w.message)]


@pytest.mark.registry
def test_https_trusting_a_private_ca_through_requests_ca_bundle(
    tls_ref: str, tls_registry: RegistryService, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert tls_registry.ca_cert is not None
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(tls_registry.ca_cert))
    image = RegistrySource().open(tls_ref, SourceOptions())
    image.close()
    assert image.config.entrypoint == ("/usr/bin/tool",)


# ------------------------------------------------------------------ with the layer reader


@pytest.mark.registry
def test_the_rootfs_reader_sees_the_same_image_as_from_the_layout(pushed: Pushed) -> None:
    from imagescan.image.ocilayout import OciDirSource
    from imagescan.rootfs.reader import read_rootfs

    local = OciDirSource().open(f"{pushed.layout}:v1", SourceOptions())
    remote = RegistrySource().open(pushed.single, PLAIN)
    try:
        expected, got = read_rootfs(local), read_rootfs(remote)
    finally:
        local.close()
        remote.close()
    assert "/usr/bin/tool" in got.entries
    assert got.entries == expected.entries
    assert got.layer_ids == expected.layer_ids


@pytest.mark.registry
@pytest.mark.parametrize("compression", ["zstd", "none"])
def test_zstd_and_uncompressed_layers(
    registry: RegistryService, tmp_path: Path, compression: str
) -> None:
    spec = ImageSpec(layers=[[File("/z/data", b"z" * 10000)]], compression=compression)
    layout = write_oci_dir(tmp_path / "img", {"v1": spec})
    ref = registry.push(f"oci:{layout}:v1", f"team/{compression}:v1")
    image = RegistrySource().open(ref, PLAIN)
    try:
        assert compression in image.layers[0].media_type or compression == "none"
        assert read_all_layers(image) == [["z/data"]]
    finally:
        image.close()
