"""`registry:REF`: an image read straight from a registry (distribution API v2 / OCI distribution).

The client follows the docker daemon's pull (distribution/registry/client): GET /v2/ answers
401 with a WWW-Authenticate challenge; "Bearer" sends us to a token service (realm, service,
scope "repository:NAME:pull"), anonymously, with basic credentials, or with an identity
(refresh) token as an OAuth2 POST; "Basic" takes the credentials directly. Manifests are asked
for with Accept for OCI and Docker v2 manifests and indexes; a multi-platform index is resolved
by platform. Layer blobs are streamed (never spooled) through a digest-verifying reader.
`requests` and urllib3 types stay inside this module.
"""

from __future__ import annotations

import email.utils
import hashlib
import io
import json
import re
import time
import warnings
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, BinaryIO, NoReturn

import requests
import urllib3

from imagescan.errors import ImageReadError, RegistryError
from imagescan.image.auth import CredentialLookup, Credentials, lookup_credentials
from imagescan.image.compression import DigestVerifyingReader, parse_digest
from imagescan.image.configjson import (
    INDEX_MEDIA_TYPES,
    MANIFEST_MEDIA_TYPES,
    MT_DOCKER_LIST,
    MT_DOCKER_MANIFEST,
    MT_OCI_INDEX,
    MT_OCI_MANIFEST,
    Descriptor,
    is_index_document,
    layer_descriptors,
    parse_image_config,
    parse_index,
    parse_manifest,
)
from imagescan.image.dockerref import DockerReference, parse_reference
from imagescan.image.model import (
    ImageConfig,
    LayerDescriptor,
    OpenedImage,
    Platform,
    RandomAccessLayers,
    SourceKind,
    SourceOptions,
)
from imagescan.image.ocilayout import check_platform
from imagescan.image.platform import Candidate, choose, host_platform

ACCEPT = ", ".join([MT_OCI_MANIFEST, MT_DOCKER_MANIFEST, MT_OCI_INDEX, MT_DOCKER_LIST])
CONNECT_TIMEOUT = 10.0
READ_TIMEOUT = 60.0
# One request may take this long, plus its declared size at MIN_RATE; the whole image
# takes at most SourceOptions.timeout (--timeout). A registry sending one byte per second
# once held a scan for ever: READ_TIMEOUT is per read (issue 15).
REQUEST_TIME = 60.0
MIN_RATE = 64 << 10  # bytes per second
# 429, 503 and broken connections: this many attempts, waiting BACKOFF * 2^n seconds or the
# Retry-After the registry asks for, at most MAX_WAIT (as the distribution clients do).
ATTEMPTS = 4
BACKOFF = 0.5
MAX_WAIT = 30.0
RETRY_STATUSES = frozenset({429, 503})
# containerd caps manifests at 4 MiB (remotes/docker: MaxManifestSize); configs are small too.
MANIFEST_LIMIT = 4 << 20
CONFIG_LIMIT = 8 << 20
TOKEN_LIMIT = 1 << 20
MAX_INDEX_DEPTH = 4
CLIENT_ID = "imagescan"
_CHALLENGE_PARAM = re.compile(r'(\w+)\s*=\s*(?:"((?:[^"\\]|\\.)*)"|([^,\s]*))')


@dataclass(frozen=True)
class Challenge:
    """One WWW-Authenticate challenge: `scheme` in lower case, its auth-params."""

    scheme: str
    params: Mapping[str, str] = field(default_factory=dict)


def parse_challenge(header: str) -> Challenge | None:
    """The challenge of a WWW-Authenticate header (RFC 7235), or None if there is none."""
    scheme, _, rest = header.strip().partition(" ")
    if not scheme:
        return None
    params = {
        match.group(1).lower(): (
            re.sub(r"\\(.)", r"\1", match.group(2))
            if match.group(2) is not None
            else match.group(3)
        )
        for match in _CHALLENGE_PARAM.finditer(rest)
    }
    return Challenge(scheme.lower(), params)


def pull_scope(repository: str) -> str:
    """The token scope a pull needs (distribution token spec: resource-type:name:actions)."""
    return f"repository:{repository}:pull"


class _ResponseRaw(io.RawIOBase):
    """The body of a streamed response; transport failures become one RegistryError.

    Past `deadline` (time.monotonic) the read stops with `stalled`. With `resume`, a body
    cut short is asked for again from the byte reached (`resume(offset)` sends the Range
    request), a bounded number of times."""

    def __init__(
        self,
        response: requests.Response,
        failure: str,
        deadline: _Deadline | None = None,
        resume: Callable[[int], requests.Response] | None = None,
    ) -> None:
        super().__init__()
        self._response = response
        self._failure = failure
        self._deadline = deadline
        self._resume = resume
        self._received = 0
        self._resumed = 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: memoryview | bytearray) -> int:  # type: ignore[override]
        while True:
            if self._deadline is not None:
                self._deadline.check()
            try:
                # read1: what has arrived, so a slow body still meets the deadline checks.
                data = self._response.raw.read1(len(buffer), decode_content=False)
            except (urllib3.exceptions.HTTPError, requests.RequestException, OSError) as exc:
                if self._deadline is not None:
                    self._deadline.check()
                if self._resume is None or self._resumed + 1 >= ATTEMPTS:
                    raise RegistryError(f"{self._failure}: {_transport_reason(exc)}") from exc
                self._resumed += 1
                self._response.close()
                self._response = self._resume(self._received)
                continue
            buffer[: len(data)] = data
            self._received += len(data)
            return len(data)


class _Deadline:
    """When one request, or the whole image, must be done (time.monotonic seconds)."""

    def __init__(self, at: float, what: str, limit: float) -> None:
        self.at, self.what, self.limit = at, what, limit

    def remaining(self) -> float:
        return self.at - time.monotonic()

    def check(self) -> None:
        if self.remaining() <= 0:
            raise RegistryError(
                f"{self.what} stalled: not complete within {self.limit:.0f}s (see --timeout)"
            )


def _transport_reason(exc: BaseException) -> str:
    text = str(exc)
    if isinstance(exc, requests.exceptions.SSLError):
        return "TLS handshake failed"
    if isinstance(
        exc, (requests.exceptions.ConnectTimeout, urllib3.exceptions.ConnectTimeoutError)
    ):
        return f"no connection within {CONNECT_TIMEOUT:.0f}s"
    if isinstance(exc, (requests.exceptions.ReadTimeout, urllib3.exceptions.ReadTimeoutError)):
        return f"no answer within {READ_TIMEOUT:.0f}s"
    if "Connection refused" in text:
        return "connection refused"
    if "IncompleteRead" in text or "Connection broken" in text:
        return "the connection closed before the end of the data"
    if "RemoteDisconnected" in text or "Connection aborted" in text or "reset by peer" in text:
        return "the registry closed the connection"
    if "Name or service not known" in text or "Failed to resolve" in text:
        return "unknown host"
    return type(exc).__name__


def _tls_hint(exc: BaseException, plain_http: bool) -> str:
    if "CERTIFICATE_VERIFY_FAILED" in str(exc):
        return "its TLS certificate is not trusted (--insecure-skip-tls-verify skips the check)"
    hint = "" if plain_http else " (use --plain-http for a registry that speaks plain HTTP)"
    return f"TLS handshake failed{hint}"


def _timeouts(deadline: _Deadline) -> tuple[float, float]:
    """(connect, read) socket timeouts that never outlast `deadline`."""
    left = max(0.05, deadline.remaining())
    return min(CONNECT_TIMEOUT, left), min(READ_TIMEOUT, left)


def _retryable(exc: BaseException) -> bool:
    """A connection reset or closed early is worth another try; refused, TLS, DNS are not."""
    if isinstance(exc, requests.exceptions.SSLError | requests.exceptions.ConnectTimeout):
        return False
    reason = _transport_reason(exc)
    return reason in (
        "the registry closed the connection",
        "the connection closed before the end of the data",
    ) or isinstance(exc, requests.exceptions.ChunkedEncodingError)


def _backoff(attempt: int) -> float:
    return min(MAX_WAIT, BACKOFF * float(2 ** (attempt - 1)))


def _retry_after(response: requests.Response, attempt: int) -> float:
    """Retry-After in seconds (RFC 9110: delay-seconds or an HTTP-date), else the backoff."""
    value = response.headers.get("Retry-After", "").strip()
    if value.isascii() and value.isdigit():
        return min(MAX_WAIT, float(value))
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return _backoff(attempt)
    delay = when.timestamp() - time.time()
    return min(MAX_WAIT, max(0.0, delay))


def _pause(seconds: float, deadline: _Deadline) -> None:
    """Wait before a retry, but never past the deadline (then stop with its message)."""
    if seconds >= deadline.remaining():
        time.sleep(max(0.0, deadline.remaining()))
        deadline.check()
    time.sleep(seconds)


class _RegistryClient:
    """HTTP to one repository of one registry, with the auth dance and one-line errors."""

    def __init__(self, ref: DockerReference, options: SourceOptions, image: str) -> None:
        self._ref, self._image, self._options = ref, image, options
        self._scheme = "http" if options.plain_http else "https"
        self._session = requests.Session()
        self._verify = not options.insecure_skip_tls_verify
        self._authorization: str | None = None
        self._lookup: CredentialLookup | None = None
        self._image_deadline = time.monotonic() + options.timeout

    @property
    def host(self) -> str:
        return self._ref.api_host

    def close(self) -> None:
        self._session.close()

    def deadline(self, what: str, size: int = 0) -> _Deadline:
        """When fetching `what` (of `size` bytes) must be done: its own time at MIN_RATE,
        and never later than the image's --timeout."""
        message = f"cannot read {self._image} from registry {self.host}: {what}"
        limit = REQUEST_TIME + size / MIN_RATE
        at = time.monotonic() + limit
        if at >= self._image_deadline:
            return _Deadline(self._image_deadline, message, self._options.timeout)
        return _Deadline(at, message, limit)

    def ping(self) -> None:
        """GET /v2/: checks that this is a registry and learns how it wants us to log in."""
        response = self._send("GET", "/v2/", "/v2/", {})
        if response.status_code == 401:
            response.close()
            self._authenticate(response)
            response = self._send("GET", "/v2/", "/v2/", {})
        if response.status_code < 300 or response.status_code == 401:
            response.close()
        elif response.status_code == 404:
            response.close()
            raise RegistryError(
                f"{self.host} does not serve the registry API v2 (/v2/ answered 404), "
                f"so it cannot provide {self._image}"
            )
        else:
            # Some registries guard only repositories (401 here is fine); others are fatal.
            self._raise_for_status(response, "/v2/", blob=False)

    def get(
        self,
        path: str,
        what: str,
        accept: str | None = None,
        blob: bool = False,
        deadline: _Deadline | None = None,
        offset: int = 0,
    ) -> requests.Response:
        """A streamed GET of `path` under /v2/REPO/; re-authenticates once on a new challenge.
        With `offset`, asks for the bytes from there on (Range); the answer may be 206 or 200."""
        url_path = f"/v2/{self._ref.repository}/{path}"
        headers = {"Accept": accept} if accept else {}
        if offset:
            headers["Range"] = f"bytes={offset}-"
        response = self._send("GET", url_path, what, headers, deadline)
        if response.status_code == 401:
            response.close()
            self._authenticate(response)
            response = self._send("GET", url_path, what, headers, deadline)
        if response.status_code >= 300:
            self._raise_for_status(response, what, blob=blob)
        return response

    def blob(self, digest: str, what: str, size: int) -> _ResponseRaw:
        """A blob's body, within its deadline, resumed (Range) when the connection breaks."""
        path = f"blobs/{digest}"
        deadline = self.deadline(what, size)
        response = self.get(path, what, blob=True, deadline=deadline)

        def resume(offset: int) -> requests.Response:
            again = self.get(path, what, blob=True, deadline=deadline, offset=offset)
            return _resumed(again, offset)

        failure = f"reading {what} of {self._image} from registry {self.host} broke"
        return _ResponseRaw(response, failure, deadline, resume)

    def head(self, path: str, what: str) -> int:
        """The status of a HEAD on `path` under /v2/REPO/ (after authentication)."""
        url_path = f"/v2/{self._ref.repository}/{path}"
        response = self._send("HEAD", url_path, what, {})
        response.close()
        return response.status_code

    def _send(
        self,
        method: str,
        path: str,
        what: str,
        headers: dict[str, str],
        deadline: _Deadline | None = None,
    ) -> requests.Response:
        """One streamed request (the caller reads or closes it), retried on 429, 503 and
        broken connections (ATTEMPTS, backoff or Retry-After); other transport trouble and
        the last failure are fatal."""
        if self._authorization:
            headers = {**headers, "Authorization": self._authorization}
        url = f"{self._scheme}://{self.host}{path}"
        limit = deadline or self.deadline(what)
        for attempt in range(1, ATTEMPTS + 1):
            limit.check()
            try:
                response = self._http(method, url, headers=headers, deadline=limit)
            except requests.RequestException as exc:
                limit.check()
                if attempt == ATTEMPTS or not _retryable(exc):
                    raise RegistryError(self._transport_message(exc, what)) from exc
                _pause(_backoff(attempt), limit)
                continue
            if response.status_code not in RETRY_STATUSES or attempt == ATTEMPTS:
                return response
            response.close()
            _pause(_retry_after(response, attempt), limit)
        raise AssertionError("unreachable")  # pragma: no cover

    def _http(
        self, method: str, url: str, deadline: _Deadline | None = None, **kwargs: Any
    ) -> requests.Response:
        """A streamed request with our timeouts; quiet about TLS the user chose to skip."""
        with warnings.catch_warnings():
            if not self._verify:
                # The user asked for it; urllib3 would warn on every single request.
                warnings.simplefilter("ignore", urllib3.exceptions.InsecureRequestWarning)
            # verify per request: a Session-level False loses to REQUESTS_CA_BUNDLE (psf/requests
            # #3829), while a per-request False wins over the environment.
            return self._session.request(
                method,
                url,
                stream=True,
                verify=self._verify,
                timeout=_timeouts(deadline or self.deadline(url)),
                **kwargs,
            )

    def _transport_message(self, exc: BaseException, what: str) -> str:
        reason = _transport_reason(exc)
        if isinstance(exc, requests.exceptions.SSLError):
            reason = _tls_hint(exc, self._options.plain_http)
        return f"cannot read {self._image} from registry {self.host}: {reason} (fetching {what})"

    def credentials(self) -> CredentialLookup:
        if self._lookup is None:
            self._lookup = lookup_credentials(self._ref.registry, self._options.docker_config)
        return self._lookup

    def _authenticate(self, response: requests.Response) -> None:
        challenge = parse_challenge(response.headers.get("WWW-Authenticate", ""))
        creds = self.credentials().credentials
        if challenge is None and self._authorization is None:
            # Nothing was sent, so nothing was refused: say what the registry did (issue 15).
            raise RegistryError(
                f"registry {self.host} answered 401 (unauthorized) for repository "
                f"{self._ref.repository} ({self._image}) without a WWW-Authenticate "
                "challenge, so it does not say how to log in; imagescan sent no credentials"
            )
        if challenge is None or challenge.scheme not in ("bearer", "basic"):
            self._raise_auth(denied=False)
        if challenge.scheme == "basic":
            self._authorization = self._basic_authorization(creds)
        elif creds is not None and creds.registry_token:
            self._authorization = f"Bearer {creds.registry_token}"
        else:
            self._authorization = f"Bearer {self._fetch_token(challenge, creds)}"

    def _basic_authorization(self, creds: Credentials | None) -> str:
        if creds is None or creds.username is None or creds.password is None:
            self._raise_auth(denied=False)
        prepared = requests.Request(
            auth=(creds.username, creds.password), url="http://x/"
        ).prepare()
        return str(prepared.headers["Authorization"])

    def _fetch_token(self, challenge: Challenge, creds: Credentials | None) -> str:
        realm = challenge.params.get("realm", "")
        if not realm.startswith(("https://", "http://")):
            raise RegistryError(
                f"registry {self.host} asked for a token from an unusable realm {realm[:100]!r}"
            )
        scopes = [pull_scope(self._ref.repository)]
        if challenge.params.get("scope") and challenge.params["scope"] not in scopes:
            scopes.append(challenge.params["scope"])
        service = challenge.params.get("service", "")
        response = self._token_request(realm, service, scopes, creds)
        return self._token_from(response)

    def _token_request(
        self, realm: str, service: str, scopes: list[str], creds: Credentials | None
    ) -> requests.Response:
        try:
            if creds is not None and creds.identity_token:
                # docker's OAuth2 refresh-token grant (distribution token spec, "oauth").
                form = {
                    "grant_type": "refresh_token",
                    "refresh_token": creds.identity_token,
                    "service": service,
                    "scope": " ".join(scopes),
                    "client_id": CLIENT_ID,
                }
                return self._http("POST", realm, data=form)
            params: dict[str, str | list[str]] = {"service": service, "scope": scopes}
            auth = (
                (creds.username, creds.password)
                if creds and creds.username and creds.password
                else None
            )
            return self._http("GET", realm, params=params, auth=auth)
        except requests.RequestException as exc:
            raise RegistryError(
                f"cannot get a token for {self._image} from {realm.split('?')[0]}: "
                f"{_transport_reason(exc)}"
            ) from exc

    def _token_from(self, response: requests.Response) -> str:
        if response.status_code in (401, 403):
            response.close()
            self._raise_auth(denied=response.status_code == 403)
        if response.status_code >= 300:
            response.close()
            raise RegistryError(
                f"the token service of registry {self.host} failed with HTTP "
                f"{response.status_code} for {self._image}"
            )
        try:
            answer = json.loads(_read_limited(response, TOKEN_LIMIT, "the token answer"))
            token = answer.get("token") or answer.get("access_token")
        except (ValueError, AttributeError):
            token = None
        if not isinstance(token, str) or not token:
            raise RegistryError(f"the token service of registry {self.host} sent no token")
        return token

    def _raise_auth(self, denied: bool) -> NoReturn:
        lookup = self.credentials()
        repository = f"repository {self._ref.repository} ({self._image})"
        if lookup.credentials is None:
            detail = lookup.problem or f"no credentials for {self._ref.registry} ({lookup.origin})"
            raise RegistryError(
                f"authentication required for {repository} by registry {self.host}: {detail}; "
                "log in with `docker login`, or the repository does not exist"
            )
        if denied:
            raise RegistryError(
                f"registry {self.host} denied access to {repository} "
                f"with the credentials from {lookup.origin}"
            )
        raise RegistryError(
            f"registry {self.host} refused the credentials for {repository}; "
            f"they came from {lookup.origin}"
        )

    def _raise_for_status(self, response: requests.Response, what: str, blob: bool) -> None:
        status = response.status_code
        code = _error_code(response)
        response.close()
        if status == 401:
            # A token that still gets 401 lacks the scope; refused basic credentials get 401.
            self._raise_auth(denied=(self._authorization or "").startswith("Bearer "))
        if status == 403:
            self._raise_auth(denied=True)
        suffix = f" ({code})" if code else ""
        if status == 404 and blob:
            raise RegistryError(
                f"{what} of {self._image} is missing from registry {self.host}{suffix}"
            )
        if status == 404 and code == "NAME_UNKNOWN":
            raise RegistryError(
                f"repository {self._ref.repository} not found in registry {self.host} "
                f"({self._image})"
            )
        if status == 404:
            raise RegistryError(
                f"manifest unknown: {self._image} not found in registry {self.host}"
            )
        if status == 429:
            raise RegistryError(
                f"registry {self.host} is rate limiting us (HTTP 429) for {self._image}"
            )
        raise RegistryError(
            f"registry {self.host} failed with HTTP {status} {response.reason or ''} "
            f"fetching {what} of {self._image}{suffix}"
        )


def _error_code(response: requests.Response) -> str | None:
    # distribution errors: {"errors": [{"code": "MANIFEST_UNKNOWN", "message": ...}]}
    try:
        body = json.loads(response.raw.read(64 << 10, decode_content=True) or b"{}")
        code = body["errors"][0]["code"]
    except (ValueError, KeyError, IndexError, TypeError, urllib3.exceptions.HTTPError, OSError):
        return None
    return code if isinstance(code, str) else None


def _read_limited(
    response: requests.Response, limit: int, what: str, deadline: _Deadline | None = None
) -> bytes:
    return _read_limited_raw(_ResponseRaw(response, f"reading {what} broke", deadline), limit, what)


def _read_limited_raw(stream: _ResponseRaw, limit: int, what: str) -> bytes:
    with io.BufferedReader(stream) as reader:
        data = reader.read(limit + 1)
    if len(data) > limit:
        raise ImageReadError(f"{what} is larger than {limit} bytes: refusing it")
    return data


def _verify_digest(data: bytes, digest: str, what: str) -> None:
    algorithm, expected = parse_digest(digest, what)
    actual = hashlib.new(algorithm, data).hexdigest()
    if actual != expected:
        raise ImageReadError(
            f"{what}: digest mismatch, content is {algorithm}:{actual}, expected {digest}"
        )


def _json_object(data: bytes, what: str) -> dict[str, Any]:
    try:
        parsed = json.loads(data)
    except (ValueError, UnicodeDecodeError) as exc:
        raise ImageReadError(f"{what} is not valid JSON") from exc
    if not isinstance(parsed, dict):
        raise ImageReadError(f"{what} is not a JSON object")
    return parsed


@dataclass(frozen=True)
class _Document:
    """A manifest or index as fetched: its digest, media type and parsed JSON."""

    digest: str
    media_type: str
    body: dict[str, Any]
    chosen_by_platform: bool = False

    @property
    def is_index(self) -> bool:
        return self.media_type in INDEX_MEDIA_TYPES or (
            self.media_type not in MANIFEST_MEDIA_TYPES and is_index_document(self.body)
        )


class RegistryLayers(RandomAccessLayers):
    """Layer blobs fetched on demand, each streamed through a digest (and size) check."""

    def __init__(self, client: _RegistryClient, layers: tuple[LayerDescriptor, ...], image: str):
        self._client, self._layers, self._image = client, layers, image

    def layer_count(self) -> int:
        return len(self._layers)

    def open_layer(self, index: int) -> BinaryIO:
        layer = self._layers[index]
        what = f"layer {index} ({layer.digest})"
        raw = self._client.blob(layer.digest, what, layer.size or 0)
        reader = io.BufferedReader(raw, buffer_size=1 << 20)
        return DigestVerifyingReader(reader, layer.digest, f"{what} of {self._image}", layer.size)

    def close(self) -> None:
        self._client.close()


def _resumed(response: requests.Response, offset: int) -> requests.Response:
    """The answer to a Range request from `offset`: a 206 from there goes on as it is; a
    registry that ignores Range (200) sends the blob again, whose first bytes are dropped."""
    content_range = response.headers.get("Content-Range", "")
    if response.status_code == 206 and content_range.startswith(f"bytes {offset}-"):
        return response
    left = offset
    while left > 0:
        chunk = response.raw.read(min(left, 1 << 20), decode_content=False)
        if not chunk:
            break
        left -= len(chunk)
    return response


class RegistrySource:
    """Reads `registry:REF` (REF as docker spells it) over the distribution API v2."""

    kind = SourceKind.REGISTRY

    def open(self, reference: str, options: SourceOptions) -> OpenedImage:
        ref = parse_reference(reference)
        client = _RegistryClient(ref, options, reference)
        try:
            return _open_with(client, ref, reference, options)
        except BaseException:
            client.close()
            raise


def _open_with(
    client: _RegistryClient, ref: DockerReference, image: str, options: SourceOptions
) -> OpenedImage:
    client.ping()
    document = _resolve_manifest(client, ref, image, options.platform or host_platform())
    manifest = parse_manifest(document.body, f"the manifest of {image}")
    config = _fetch_config(client, manifest.config, image)
    if options.platform is not None and not document.chosen_by_platform:
        check_platform(config, options.platform, image)
    layers = layer_descriptors(manifest.layers, config, f"the manifest of {image}")
    _check_foreign_layers(client, manifest.layers, image)
    return OpenedImage(
        reference=image,
        kind=SourceKind.REGISTRY,
        config=config,
        layers=layers,
        access=RegistryLayers(client, layers, image),
        manifest_digest=document.digest,
    )


def _fetch_document(client: _RegistryClient, reference: str, image: str) -> _Document:
    what = f"manifest {reference}"
    deadline = client.deadline(what)
    response = client.get(f"manifests/{reference}", what, accept=ACCEPT, deadline=deadline)
    content_type = response.headers.get("Content-Type", "").split(";")[0].strip()
    data = _read_limited(response, MANIFEST_LIMIT, f"{what} of {image}", deadline)
    digest = "sha256:" + hashlib.sha256(data).hexdigest()
    if ":" in reference:
        # Pinned by digest: the registry must hand over exactly those bytes.
        _verify_digest(data, reference, f"{what} of {image}")
        digest = reference
    body = _json_object(data, f"{what} of {image}")
    media_type = body.get("mediaType")
    return _Document(digest, media_type if isinstance(media_type, str) else content_type, body)


def _resolve_manifest(
    client: _RegistryClient, ref: DockerReference, image: str, wanted: Platform
) -> _Document:
    document = _fetch_document(client, ref.manifest_reference, image)
    for _ in range(MAX_INDEX_DEPTH):
        if not document.is_index:
            return document
        entries = parse_index(document.body, f"the index of {image}")
        chosen = choose(wanted, [Candidate(entry.platform, entry) for entry in entries], image)
        document = replace(_fetch_document(client, chosen.digest, image), chosen_by_platform=True)
    raise ImageReadError(f"{image}: image indexes nested more than {MAX_INDEX_DEPTH} deep")


def _fetch_config(client: _RegistryClient, descriptor: Descriptor, image: str) -> ImageConfig:
    what = f"config blob {descriptor.digest}"
    data = _read_limited_raw(
        client.blob(descriptor.digest, what, descriptor.size or 0),
        CONFIG_LIMIT,
        f"{what} of {image}",
    )
    _verify_digest(data, descriptor.digest, f"{what} of {image}")
    return parse_image_config(_json_object(data, f"{what} of {image}"), f"the config of {image}")


def _check_foreign_layers(
    client: _RegistryClient, layers: Sequence[Descriptor], image: str
) -> None:
    # Non-distributable layers (Windows base layers) usually live at `urls`, not in the
    # registry; blobs are read only from the registry, so say so before streaming anything.
    for index, layer in enumerate(layers):
        if not (layer.non_distributable or layer.urls):
            continue
        if client.head(f"blobs/{layer.digest}", f"layer {index}") == 200:
            continue
        where = f" (it lives at {layer.urls[0][:200]})" if layer.urls else ""
        raise RegistryError(
            f"layer {index} of {image} is non-distributable and not in registry "
            f"{client.host}{where}; imagescan reads blobs only from the registry"
        )
